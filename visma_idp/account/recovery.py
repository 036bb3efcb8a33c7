"""Forgot password: the request form with its human check, the reset and one-time login links.

The blueprint keeps the name ``password`` (endpoints ``password.forgot``,
``password.reset``, ``password.reset_done``); the password itself (policy,
hashing, the human check) is ``password/``'s, which imports nothing of
``account/``.

- ``/password/forgot``: an email address plus the human check
  (``password/challenge.py``). A valid post always gets the same page, whether or
  not the address has an account, whether or not the request was over its
  quota (per address and per IP, silent), after the same work: what depends
  on the address (the account, the links, the mail, the audit row) runs once
  the answer has gone out (``deferred.py``). For an account that may use it,
  the "password_reset" email offers a reset link and (for an active,
  unlocked account) a one-time login link; both work once, for
  ``RESET_LIFETIME``; a newer request voids both, and using one voids the other.
- ``/password/reset/<token>``: the new password twice. Success revokes every
  session and token of the user, voids every pending link that would change
  the account (a pending email change too: ``sessions.py``), lifts a
  lock, completes a pending activation, sends the "password_changed" notice
  (which, like the next page, names an email change it cancelled) and sends
  the user to the sign-in page. A reset never signs in by itself, so it never skips a second
  factor: the next sign-in is an ordinary one.
- ``/login/link/<token>``, the sign-in's page for the one-time login link
  (``login/ways/link.py``, not here): a page with a button (mail scanners
  that fetch links do not use it up); the post replaces the password step
  only, so everything after the password still applies.

A pending authorization (``tx``) started at an application rides along in
the link's stored data; it resumes when the link is opened in the browser
that holds that transaction, and is ignored elsewhere.
"""

from __future__ import annotations

from types import SimpleNamespace

from flask import Blueprint, redirect, render_template, request, session
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from .. import addresses, audit
from ..browser import interaction, signin
from ..browser.sso import current_session, end_current_session
from ..context import current_idp
from ..notify import messages
from ..password.challenge import human_check
from ..password.service import set_new_password
from ..storage import db, queries
from . import tokens
from .activation import (
    MAX_EMAIL,
    open_link,
    refused,
    within_quota,
)
from .deferred import after_answer
from .sessions import revoke_everything

bp = Blueprint("password", __name__)

FORGOT_WINDOW = 3600  # seconds of FORGOT_PER_EMAIL and FORGOT_PER_IP
LINK_KINDS = (tokens.RESET, tokens.LOGIN_LINK)
CANCELLED_KEY = "email_change_cancelled"  # for the next page: a pending email change the reset cancelled



def _live_tx(value) -> str | None:
    """A pending authorization of this browser, or None."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    return value if interaction.get(value) is not None else None


def _tx_of(row) -> str | None:
    return _live_tx((row.data or {}).get("tx"))


def _forgot_page(template: str, *, tx_id, email="", error=None, check_error=None, status=200):
    minutes = max(1, current_idp().settings["RESET_LIFETIME"] // 60)
    return render_template(template, tx=tx_id, email=email, error=error, check_error=check_error,
                           human=human_check().challenge(), minutes=minutes,
                           sent=template == "forgot_sent.html"), status


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot():
    tx_id = _live_tx(request.values.get("tx"))
    if request.method == "GET":
        return _forgot_page("forgot.html", tx_id=tx_id, email=signin.current().email or "")

    try:
        email = addresses.parse(request.form.get("email")).email
    except addresses.AddressError as exc:
        return _forgot_page("forgot.html", tx_id=tx_id, email=(request.form.get("email") or "")[:MAX_EMAIL],
                            error=addresses.explain(exc, _("Enter your email address, like name@example.com.")),
                            status=400)
    if not human_check().verify(request.form):
        return _forgot_page("forgot.html", tx_id=tx_id, email=email, status=400,
                            check_error=_("We could not confirm that you are a person. Wait until the check "
                                          "on this page has finished, then send the form again."))
    # the same work for every address before the answer: the quotas count, the
    # used challenge is committed (it cannot be posted again) ...
    settings = current_idp().settings
    allowed = within_quota("forgot:email:" + email, settings["FORGOT_PER_EMAIL"], FORGOT_WINDOW)
    allowed = within_quota("forgot:ip:" + (request.remote_addr or "-"), settings["FORGOT_PER_IP"],
                           FORGOT_WINDOW) and allowed
    db.session.commit()
    # ... and what depends on the address runs once the answer has gone (deferred.py)
    after_answer(lambda: _request_links(email, tx_id, allowed), name="a password reset request")
    return _forgot_page("forgot_sent.html", tx_id=tx_id)


def _request_links(email: str, tx_id: str | None, allowed: bool) -> None:
    """After the answer: issue and mail the two links when the account may
    have them and the quotas allowed it; commits. For nobody it does the same
    shape of work (less to tell apart on the server afterwards)."""
    idp = current_idp()
    user = queries.user_by_email(email)
    lifetime = idp.settings["RESET_LIFETIME"]
    data = {"tx": tx_id} if tx_id else None
    if allowed and user is not None and user.is_active:
        reset = tokens.issue(user, tokens.RESET, lifetime=lifetime, data=data, void_kinds=LINK_KINDS)
        login_url = None
        if user.status == "active":  # a pending or locked account must set a password first
            link = tokens.issue(user, tokens.LOGIN_LINK, lifetime=lifetime, data=data)
            login_url = idp.url("login.link", token=link.raw)
        messages.queue("password_reset", to=user.email, user=user, minutes=max(1, lifetime // 60),
                       reset_url=idp.url("password.reset", token=reset.raw), login_url=login_url)
        audit.record("password_reset_requested", user_id=user.id, subject=email)
        db.session.commit()
        return
    # the same shape of work for no account: the void statement (it matches
    # nothing) and the rendering of a message nobody receives
    tokens.void(0, LINK_KINDS)
    nobody = SimpleNamespace(id=None, name="", email=email, locale=None, status="active")
    messages.render("password_reset", locale=messages.mail_locale(None), user=nobody,
                    minutes=max(1, lifetime // 60), reset_url=idp.url("password.reset", token="x" * 43),
                    login_url=idp.url("login.link", token="x" * 43))
    reason = "throttled" if not allowed else ("unknown" if user is None else "disabled")
    audit.record("password_reset_requested", outcome="failure", user_id=user.id if user else None,
                 subject=email, details={"reason": reason})
    db.session.commit()


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    user, not_live = open_link(token, tokens.RESET)
    if not_live is not None:
        return not_live
    if request.method == "GET":
        return render_template("reset.html", token=token, user=user, errors=[], done=False)

    wrong = set_new_password(user, request.form.get("password") or "", request.form.get("password2") or "")
    if wrong is not None:
        return render_template("reset.html", token=token, user=user, errors=wrong.messages, mismatch=wrong.mismatch,
                               done=False), 400
    try:
        row = tokens.redeem(token, (tokens.RESET,))
    except tokens.LinkInvalid as exc:  # used meanwhile by another click (refused() rolls the password back)
        return refused(exc, "reset")

    idp = current_idp()
    now = idp.clock.now()
    tx_id = _tx_of(row)
    was_locked = user.locked_at is not None
    # every session and token ends; every pending link dies (the login link of
    # the same email, an email change someone else asked for: sessions.py)
    revoked = revoke_everything(user.id, reason="password_reset")
    user.locked_at = None
    if user.activated_at is None:  # the link proved the address: a pending account is now active
        user.activated_at = now
    user.email_verified = True
    user.updated_at = now
    messages.queue("password_changed", to=user.email, user=user, via="reset",
                   email_change_cancelled=revoked.email_change)
    audit.record("password_reset", user_id=user.id, subject=user.email, details={"unlocked": was_locked})
    mine = current_session()
    if mine is not None and mine.user_id == user.id:
        end_current_session()
    db.session.commit()
    idp.throttle.succeeded(user.email)  # the new password may be tried at once
    state = signin.current()  # the sign-in link of the next page goes straight to the password
    state.finished()
    state.email, state.identified, state.tx = user.email, True, tx_id
    if revoked.email_change:
        session[CANCELLED_KEY] = revoked.email_change
    return redirect(idp.url("password.reset_done", tx=tx_id))


@bp.get("/password/reset/done")
def reset_done():
    idp = current_idp()
    tx_id = _live_tx(request.args.get("tx"))
    endpoint = "login.password" if signin.current().identified else "login.email"
    signin_url = idp.url(endpoint, tx=tx_id)
    return render_template("reset.html", token=None, user=None, errors=[], done=True, signin_url=signin_url,
                           email_change_cancelled=session.pop(CANCELLED_KEY, None))


@bp.errorhandler(CSRFError)
def csrf_error(_error):
    return render_template("error.html", title=_("This page has expired"),
                           message=_("Reload the page and try again.")), 400
