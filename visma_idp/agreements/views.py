"""The invitation link's pages (blueprint ``agreements``; the rules are
``invitations.py``'s).

``GET /invitations/<token>``: an unknown link is 404, a used, revoked or
expired one 410 (ask the inviter for a new one). A live one says who invited
whom to what, and then, by who opens it:

- signed in as the invited address: an "Accept" button (``POST`` to the
  same address);
- signed in as another account: whose invitation it is, and a way to sign
  out; it is never attached to the signed-in account;
- not signed in, the address has an activated account: "Sign in to accept"
  (``/invitations/<token>/sign-in`` sends to the sign-in page, which comes
  back here when no app waits: ``SignIn.next``);
- not signed in, no account (or one never activated): a form for a name and
  a password (the policy's ``_password_fields.html``); posting it makes the
  account, makes it a member and sends to sign in ("Your account is ready").

Every form carries the CSRF token; a refused post re-renders its page with
a translated message (400, 403 for another account).
"""

from __future__ import annotations

import unicodedata

from flask import Blueprint, redirect, render_template, request, session
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError

from ..account.profile import MAX_NAME
from ..browser import signin
from ..browser.sso import current_session
from ..context import current_idp
from ..password.service import NewPasswordRefused
from ..storage import AgreementInvitation, User, db, queries
from . import invitations

bp = Blueprint("agreements", __name__)

DONE_KEY = "invitation_done"  # the "done" page's message, for the next view


def _gone(reason: str, row: AgreementInvitation | None = None):
    """The page of a link that does not work: 404 unknown, 403 disabled account, else 410."""
    status = {"unknown": 404, "disabled": 403}.get(reason, 410)
    if request.method == "POST":
        db.session.rollback()  # nothing of a refused post stays
    return render_template("agreements/invitation_gone.html", reason=reason, row=row,
                           inviter=invitations.inviter_label(invitations.inviter(row)) if row else None), status


def _page(view: str, token: str, row: AgreementInvitation, *, status: int = 200, user: User | None = None,
          name: str = "", error: str | None = None, password_errors: list[str] | None = None, mismatch: bool = False):
    """The invitation's page; ``view`` is what the person can do: ``accept``,
    ``wrong_account``, ``sign_in`` or ``create``."""
    return render_template(
        "agreements/invitation.html", view=view, token=token, row=row, user=user, name=name, error=error,
        password_errors=password_errors or [], mismatch=mismatch, agreement=row.agreement.name,
        inviter=invitations.inviter_label(invitations.inviter(row)), roles=invitations.role_labels(row.roles or []),
    ), status


def _done(key: str, row: AgreementInvitation):
    session[DONE_KEY] = {"key": key, "agreement": row.agreement.name}
    return redirect(current_idp().url("agreements.done"), 303)


def _raced(token: str, row: AgreementInvitation):
    """Another click, or another change, won the race: what the link is now
    (a dead link's page, or the invitation's page again)."""
    db.session.rollback()
    reason = invitations.state(row)  # read again: the rollback expired the row
    if reason == invitations.LIVE:
        return redirect(current_idp().url("agreements.invitation", token=token), 303)
    return _gone(reason, row)


def _live(token: str):
    """``(row, None)`` for a live link, else ``(None, the page that refuses it)``."""
    row = invitations.find(token)
    if row is None:
        return None, _gone("unknown")
    reason = invitations.state(row)
    if reason != invitations.LIVE:
        return None, _gone(reason, row)
    return row, None


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def invitation(token: str):
    row, refused = _live(token)
    if row is None:
        return refused
    sess = current_session()
    if sess is not None:
        if sess.user.email != row.email:
            return _page("wrong_account", token, row, user=sess.user, status=403 if request.method == "POST" else 200)
        if request.method == "GET":
            return _page("accept", token, row, user=sess.user)
        try:
            invitations.accept(row, sess.user)
            db.session.commit()
        except (invitations.InvitationRefused, IntegrityError):  # used meanwhile by another click
            return _raced(token, row)
        return _done("accepted", row)

    account = queries.user_by_email(row.email)
    if account is not None and not account.is_active:
        return _gone("disabled", row)
    if account is not None and account.status != "pending":
        error = _("Sign in as %(email)s first.", email=row.email) if request.method == "POST" else None
        return _page("sign_in", token, row, error=error, status=400 if error else 200)
    if request.method == "GET":
        return _page("create", token, row, name=account.name if account is not None else "")
    return _create(token, row)


def _create(token: str, row: AgreementInvitation):
    """The create-account form was posted."""
    name = unicodedata.normalize("NFC", " ".join((request.form.get("name") or "").split()))
    error = None
    if not name:
        error = _("Enter your name.")
    elif len(name) > MAX_NAME:
        error = _("Your display name can have at most %(count)d characters.", count=MAX_NAME)
    elif not all(ch.isprintable() and ch not in "<>" for ch in name):
        error = _("The display name cannot contain the characters < and > or control characters.")
    if error is not None:
        return _page("create", token, row, name=name[:MAX_NAME], error=error, status=400)
    try:
        made = invitations.create_account(row, name, request.form.get("password") or "",
                                          request.form.get("password2") or "")
        if isinstance(made, NewPasswordRefused):
            db.session.rollback()
            return _page("create", token, row, name=name, password_errors=made.messages, mismatch=made.mismatch,
                         status=400)
        db.session.commit()
    except (invitations.InvitationRefused, IntegrityError):  # another click made the account, or used the link
        return _raced(token, row)
    state = signin.current()  # the sign-in page starts with the address filled in
    state.email, state.identified = made.email, True
    return _done("created", row)


@bp.get("/invitations/<token>/sign-in")
def sign_in(token: str):
    """Sign in to accept: the sign-in comes back to the invitation (when no app waits)."""
    row, refused = _live(token)
    if row is None:
        return refused
    idp = current_idp()
    here = idp.url("agreements.invitation", token=token)
    if current_session() is not None:  # signed in meanwhile: the invitation's page says what now
        return redirect(here)
    state = signin.current()
    state.next = here.removeprefix(idp.issuer_origin + idp.issuer_path)  # a path of ours: urls.safe_next
    state.email = row.email  # the sign-in page starts with the invited address filled in
    return redirect(idp.url("login.email"))


@bp.get("/invitations/done")
def done():
    kept = session.pop(DONE_KEY, None)
    if not isinstance(kept, dict) or kept.get("key") not in ("accepted", "created"):
        return redirect(current_idp().url("login.home"))
    signin_url = current_idp().url("login.password" if signin.current().identified else "login.email")
    return render_template("agreements/invitation_done.html", key=kept["key"], agreement=str(kept.get("agreement")),
                           signin_url=signin_url)


@bp.errorhandler(CSRFError)
def csrf_error(_error):
    return render_template("error.html", title=_("This page has expired"),
                           message=_("Reload the page and try again.")), 400
