"""Account activation: the Welcome link, setting the first password, resending the link.

- ``GET /activate/<token>`` shows the set-password form while the link is
  live (it does not use the link up); ``POST`` uses it: the password must
  meet the policy, then the account is active, its email verified, and the
  user is sent to the sign-in page with the address filled in. Activation
  does not sign in by itself: the first sign-in is a normal one, so every
  step a later login needs (a second factor) applies to it too.
- An expired, used or unknown link shows ``link_invalid.html`` (410 or 404)
  with a form that asks for a new link: ``POST /activate/resend`` needs the
  same human check as forgot-password (``password/challenge.py``,
  ``CAPTCHA_VERIFIER``), gives the same answer whether or not a pending
  account has that address, and is throttled per address and per IP
  (silently: over the limit nothing is sent). Before the answer it does the
  same work for every address; finding the account and sending the mail run
  once the answer has gone out (``deferred.py``), so the time of the answer
  does not tell either.

- The Welcome email and its activation link (:func:`send_welcome`: an
  account created without a password, ``admin/service.py``) and a new one
  (:func:`resend_activation`: the form above, ``visma-idp users
  resend-activation``): a new link voids the earlier ones; resending voids
  every other pending link that would change the account too
  (``sessions.py``) and is audited (``activation_resent``).

The pages shared by the other mailed links (``link_invalid_page``) and the
silent quota (:func:`within_quota`) live here too.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from .. import addresses, audit
from ..browser import signin
from ..context import current_idp
from ..errors import InvalidInput
from ..notify import messages
from ..password.challenge import human_check
from ..storage import User, db, queries
from . import tokens
from .deferred import after_answer
from .sessions import void_pending_links

bp = Blueprint("activation", __name__)

MAX_EMAIL = 320
RESEND_WINDOW = 3600  # seconds of ACTIVATION_RESEND_PER_EMAIL and _PER_IP



def within_quota(key: str, limit: int, window: int) -> bool:
    """Count one request against ``key`` (shared throttle store: memory or
    Redis); False once ``limit`` requests were counted within ``window`` seconds."""
    idp = current_idp()
    _count, wait = idp.throttle.store.take(key, idp.clock.time(), window,
                                           lambda count, _last, _now: 1 if count >= limit else 0)
    return wait == 0


def link_invalid_page(reason: str, kind: str, user_id: int | None = None):
    """The page for a mailed link that cannot be used: 404 unknown, 410
    expired/used/voided, 403 for an account that may not use it (disabled,
    pending). A refused post (someone tried to act on the link) is audited
    as ``link_refused``; merely opening it is not (mail scanners do that)."""
    status = {"unknown": 404, "disabled": 403, "pending": 403}.get(reason, 410)
    if request.method == "POST":
        db.session.rollback()
        audit.record("link_refused", outcome="failure", user_id=user_id, details={"kind": kind, "reason": reason})
        db.session.commit()
    return _resend_page(reason, kind, status=status)


def _resend_page(reason: str, kind: str, *, status: int, email: str = "", error: str | None = None,
                 check_error: str | None = None):
    """``link_invalid.html``; for an activation link it holds the "send a new
    link" form with a fresh human check."""
    shows_form = kind == "activation" and reason not in ("disabled", "pending")
    human = human_check().challenge() if shows_form else None
    return render_template("link_invalid.html", reason=reason, kind=kind, email=email, error=error,
                           check_error=check_error, human=human), status


def refused(exc: tokens.LinkInvalid, kind: str):
    """:func:`link_invalid_page` for a :class:`~.tokens.LinkInvalid`."""
    return link_invalid_page(exc.reason, kind, exc.token.user_id if exc.token is not None else None)


def open_link(token: str, kind: str):
    """Peek at a mailed link of ``kind`` for its page: ``(user, None)``, or
    ``(None, the page that refuses it)`` when the link is not live or its
    account is disabled. Nothing is used up."""
    try:
        row = tokens.peek(token, (kind,))
    except tokens.LinkInvalid as exc:
        return None, refused(exc, kind)
    if not row.user.is_active:
        return None, link_invalid_page("disabled", kind, row.user_id)
    return row.user, None


def _form_page(template: str, token: str, user, errors: list[str], mismatch: bool = False, status: int = 200):
    return render_template(template, token=token, user=user, errors=errors, mismatch=mismatch), status


@bp.route("/activate/<token>", methods=["GET", "POST"])
def activate(token: str):
    user, not_live = open_link(token, tokens.ACTIVATION)
    if not_live is not None:
        return not_live
    if user.status != "pending":  # activated some other way meanwhile (a password reset)
        return link_invalid_page("used", "activation", user.id)
    if request.method == "GET":
        return _form_page("activate.html", token, user, [])

    from ..password.service import set_new_password

    wrong = set_new_password(user, request.form.get("password") or "", request.form.get("password2") or "")
    if wrong is not None:
        return _form_page("activate.html", token, user, wrong.messages, wrong.mismatch, 400)
    try:
        tokens.redeem(token, (tokens.ACTIVATION,))
    except tokens.LinkInvalid as exc:  # used meanwhile by another click (refused() rolls the password back)
        return refused(exc, "activation")
    now = current_idp().clock.now()
    user.activated_at = now
    user.email_verified = True
    user.updated_at = now
    tokens.void(user.id, (tokens.ACTIVATION,), now=now)
    audit.record("account_activated", user_id=user.id, subject=user.email)
    db.session.commit()
    state = signin.current()  # the sign-in page starts with the address filled in
    state.email, state.identified = user.email, True
    return redirect(current_idp().url("activation.done"))


@bp.get("/activate/done")
def done():
    return render_template("activate_done.html", state="activated",
                           signin_url=_signin_url(signin.current().email if signin.current().identified else None))


@bp.post("/activate/resend")
def resend():
    try:
        email = addresses.parse(request.form.get("email")).email
    except addresses.AddressError as exc:
        return _resend_page("resend", "activation", status=400, email=(request.form.get("email") or "")[:MAX_EMAIL],
                            error=addresses.explain(exc, _("Enter your email address, like name@example.com.")))
    if not human_check().verify(request.form):
        return _resend_page("resend", "activation", status=400, email=email,
                            check_error=_("We could not confirm that you are a person. Wait until the check "
                                          "on this page has finished, then send the form again."))
    # the same work for every address before the answer: the quotas count, the
    # used challenge is committed (it cannot be posted again) ...
    settings = current_idp().settings
    allowed = within_quota("activation-resend:email:" + email, settings["ACTIVATION_RESEND_PER_EMAIL"], RESEND_WINDOW)
    allowed = within_quota("activation-resend:ip:" + (request.remote_addr or "-"),
                           settings["ACTIVATION_RESEND_PER_IP"], RESEND_WINDOW) and allowed
    db.session.commit()
    # ... and what depends on the address runs once the answer has gone (deferred.py)
    after_answer(lambda: _resend(email, allowed), name="a request for a new activation link")
    return redirect(current_idp().url("activation.sent"))


def _resend(email: str, allowed: bool) -> None:
    """After the answer: a new Welcome email when the address has a pending
    account and the quotas allowed it; commits."""
    user = queries.user_by_email(email)
    if allowed and user is not None and user.status == "pending":
        resend_activation(user)
    else:
        audit.record("activation_resend_refused", outcome="failure", subject=email,
                     details={"reason": "throttled" if not allowed else "not_pending"})
    db.session.commit()


@bp.get("/activate/sent")
def sent():
    return render_template("activate_done.html", state="resent", signin_url=_signin_url(None))


def _signin_url(email: str | None) -> str:
    idp = current_idp()
    return idp.url("login.password") if email else idp.url("login.email")


@bp.errorhandler(CSRFError)
def csrf_error(_error):
    return render_template("error.html", title=_("This page has expired"),
                           message=_("Reload the page and try again.")), 400


# -- the Welcome email ------------------------------------------------------------------


def send_welcome(user: User, *, again: bool = False) -> None:
    """Queue the "Welcome" email with a new activation link for a pending user
    (``admin/service.py``: create, invite); earlier activation links stop
    working. The caller commits."""
    idp = current_idp()
    lifetime = idp.settings["ACTIVATION_LIFETIME"]
    link = tokens.issue(user, tokens.ACTIVATION, lifetime=lifetime, void_kinds=(tokens.ACTIVATION,))
    messages.queue("welcome", to=user.email, user=user, again=again,
                   activate_url=idp.url("activation.activate", token=link.raw),
                   days=max(1, lifetime // 86400))


def resend_activation(user: User) -> None:
    """Queue a new "Welcome" email for a pending user; earlier activation links stop working,
    and so does every other pending link that would change the account
    (``account/sessions.py:void_pending_links``). The caller commits.

    Raises:
        InvalidInput: the account is not pending (already activated, or disabled).
    """
    if user.status != "pending":
        raise InvalidInput(f"the account {user.email} is {user.status}, not waiting for activation")
    # an action on the account: every earlier link that would change it dies (the activation link too)
    void_pending_links(user.id, reason="activation_resent")
    send_welcome(user, again=True)
    audit.record("activation_resent", user_id=user.id, subject=user.email)
