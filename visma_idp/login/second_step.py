"""The second step of a sign-in, and step-up.

Rules:
- a user with a confirmed second factor passes one of their methods after the
  first factor, before any SSO session exists; until then the sign-in is
  *pending*: who, what they proved (amr), the pending authorization (tx),
  kept in the signed session cookie for at most ``PENDING_LIFETIME``;
- the methods are offered strongest first, with "Try another way";
- wrong answers are throttled per account like passwords (``2fa:<id>``);
- a user who must have a factor (``MFA_REQUIRED``, ``User.mfa_required``,
  or ``must_enrol_factor`` after an admin-issued code) and has none goes to
  enrolment with the pending sign-in, which ends when a factor is confirmed;
- "Remember this browser" (``REMEMBER_BROWSER_DAYS``): a signed cookie bound
  to the user, their password change time and their factor change time;
  any of those changing voids it; a remembered browser skips the second
  step but the session stays at the password level (``acr`` pwd), so an app
  that asks for more still gets a step-up; offered, and honoured when
  posted, only for a method that is a factor (not a recovery or an
  admin-issued code) and never during a step-up (:func:`may_remember`);
- step-up: an app asks (``acr_values`` or an essential ``acr`` claim) for more
  than the session has; a user who has a method that reaches it passes it
  again without re-entering the password (only phishing-resistant methods
  for the ``phr`` level);
- the finished sign-in carries ``amr`` of both steps plus ``mfa``, and
  ``acr`` ``mfa`` or ``phr``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, g, redirect, render_template, request, session
from flask_babel import format_timedelta
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer

from .. import audit
from ..context import current_idp
from ..crypto import derive_key
from ..factors import AMR_MFA, MethodRefused, Verified, has_second_factor, methods_for
from ..oidc.checks.acr import ACR_MFA, ACR_PASSWORD, ACR_PHISHING_RESISTANT, rank
from ..storage import Factor, User, db
from .session import current_session, get_transaction, start_session

bp = Blueprint("second_step", __name__)

PENDING_KEY = "pending_signin"
PENDING_LIFETIME = 600  # seconds between the first factor and the end of the second step
REMEMBER_COOKIE = "visma_idp_rb"  # "__Host-" in front on an https issuer


def _remember_cookie_name() -> str:
    return ("__Host-" if current_idp().secure_cookies else "") + REMEMBER_COOKIE



# -- the pending sign-in ----------------------------------------------------------


def pending() -> dict[str, Any] | None:
    """The pending sign-in of this browser, if it is still fresh."""
    state = session.get(PENDING_KEY)
    if not isinstance(state, dict):
        return None
    if current_idp().clock.now() - state.get("at", 0) > PENDING_LIFETIME:
        session.pop(PENDING_KEY, None)
        return None
    return state


def pending_user() -> User | None:
    state = pending()
    if state is None:
        return None
    user = db.session.get(User, state["uid"])
    if user is None or user.status != "active":
        session.pop(PENDING_KEY, None)
        return None
    return user


def _hold(user, *, amr: list[str], tx_id: str | None, password_at: int | None, stage: str,
          step_up: str | None = None, next_url: str | None = None) -> None:
    session[PENDING_KEY] = {
        "uid": user.id, "amr": list(amr), "tx": tx_id, "pwd_at": password_at, "stage": stage,
        "at": current_idp().clock.now(), "want": step_up, "next": next_url,
    }


def must_have_factor(user) -> bool:
    return bool(current_idp().settings["MFA_REQUIRED"] or user.mfa_required or user.must_enrol_factor)


def begin(user, *, amr: list[str], tx_id: str | None, password_at: int | None):
    """After the first factor: the response that carries on with the second
    step or with enrolment, or None when the sign-in may finish now."""
    if has_second_factor(user) and not user.must_enrol_factor:
        if remembered(user):
            audit.record("second_step_remembered", user_id=user.id)
            return None
        _hold(user, amr=amr, tx_id=tx_id, password_at=password_at, stage="verify")
        return redirect(current_idp().url("second_step.verify", tx=tx_id))
    if user.must_enrol_factor and methods_for(user):
        # a lost factor: pass the second step with what is left (an admin-issued code), then enrol
        _hold(user, amr=amr, tx_id=tx_id, password_at=password_at, stage="verify")
        return redirect(current_idp().url("second_step.verify", tx=tx_id))
    if must_have_factor(user):
        _hold(user, amr=amr, tx_id=tx_id, password_at=password_at, stage="enrol")
        audit.record("factor_enrolment_required", user_id=user.id)
        return redirect(current_idp().url("factors.overview"))
    return None


def begin_step_up(user, sess, *, tx_id: str, wanted: str):
    """An app asked for ``wanted``; the signed-in user passes a method again."""
    _hold(user, amr=list(sess.amr or []), tx_id=tx_id, password_at=sess.password_at, stage="verify",
          step_up=wanted)
    audit.record("step_up_started", user_id=user.id, details={"acr": wanted})
    return redirect(current_idp().url("second_step.verify", tx=tx_id))


def achievable_acr(user) -> str:
    """The highest level this user can reach with the factors they have."""
    methods = methods_for(user)
    if any(m.phishing_resistant for m in methods):
        return ACR_PHISHING_RESISTANT
    if methods and has_second_factor(user):
        return ACR_MFA
    return ACR_PASSWORD


def _methods(user, state) -> list:
    wanted = state.get("want")
    return methods_for(user, phishing_resistant_only=rank(wanted) >= rank(ACR_PHISHING_RESISTANT))


def finish(user, *, amr: list[str], acr: str, tx_id: str | None, password_at: int | None,
           next_url: str | None = None, details: dict | None = None, notice: str | None = None):
    """Start the SSO session and carry on: the pending authorization, the page
    that asked (``next_url``, a path of ours), or the home page. A ``notice``
    is shown first on a page of its own, whose button carries on (the
    authorization resumes from there, so no code waits while the user reads)."""
    from ..oidc.views import resume_authorization

    session.pop(PENDING_KEY, None)
    sess = start_session(user, amr=amr, acr=acr)
    sess.password_at = password_at
    audit.record("login_succeeded", user_id=user.id, subject=user.email, details={"amr": amr, **(details or {})})
    pending = bool(tx_id and get_transaction(tx_id) is not None)
    if notice:
        db.session.commit()
        idp = current_idp()
        onward = (idp.url("oidc.authorize_continue", tx=tx_id) if pending
                  else _safe_next(next_url) or idp.url("login.home"))
        return render_template("login/notice.html", message=notice, onward=onward)
    if pending:
        resp = resume_authorization(tx_id, after_login=True)
        db.session.commit()
        return resp
    db.session.commit()
    return redirect(_safe_next(next_url) or current_idp().url("login.home"))


def _safe_next(next_url: str | None) -> str | None:
    """Only a path on this server (no scheme, no host, no //)."""
    if not next_url or not next_url.startswith("/") or next_url.startswith("//") or "\\" in next_url:
        return None
    parts = urlsplit(next_url)
    if parts.scheme or parts.netloc:
        return None
    return current_idp().issuer_origin + next_url


def complete(user, state: dict[str, Any], verified: Verified, *, remember: bool = False):
    """The second step passed (or a factor was enrolled during a pending sign-in)."""
    now = current_idp().clock.now()
    amr = list(dict.fromkeys([*state.get("amr", []), *verified.amr, AMR_MFA]))
    acr = ACR_PHISHING_RESISTANT if verified.phishing_resistant else ACR_MFA
    if verified.factor_id is not None:
        factor = db.session.get(Factor, verified.factor_id)
        if factor is not None:
            factor.last_used_at = now
    if verified.enrol_next:
        # pass this once, then enrol a new factor before the sign-in ends
        state = {**state, "stage": "enrol", "amr": amr, "at": now}
        session[PENDING_KEY] = state
        user.must_enrol_factor = True
        db.session.commit()
        return redirect(current_idp().url("factors.overview"))
    if remember and current_idp().settings["REMEMBER_BROWSER_DAYS"] > 0:
        g.remember_browser = _remember_value(user)
    return finish(user, amr=amr, acr=acr, tx_id=state.get("tx"), password_at=state.get("pwd_at"),
                  next_url=state.get("next"), details={"second_step": True}, notice=verified.notice)


def enrolling_done(state: dict[str, Any], verified: Verified) -> None:
    """A pending sign-in's required factor is now enrolled: it may finish
    (:func:`finish_enrolled`) once the user has seen their recovery codes."""
    amr = list(dict.fromkeys([*state.get("amr", []), *verified.amr, AMR_MFA]))
    session[PENDING_KEY] = {**state, "stage": "enrolled", "amr": amr,
                            "phr": verified.phishing_resistant, "at": current_idp().clock.now()}


def finish_enrolled(user, state: dict[str, Any]):
    acr = ACR_PHISHING_RESISTANT if state.get("phr") else ACR_MFA
    return finish(user, amr=list(state.get("amr", [])), acr=acr, tx_id=state.get("tx"),
                  password_at=state.get("pwd_at"), next_url=state.get("next"), details={"enrolled": True})


# -- remember this browser -----------------------------------------------------------


def _serializer() -> URLSafeSerializer:
    key = derive_key(current_idp().settings["SECRET_KEY"], "remember-browser").hex()
    return URLSafeSerializer(key, salt="visma_idp.remember")


def _stamp(user) -> str:
    raw = f"{user.id}:{user.password_changed_at}:{user.factors_changed_at}:{user.password_hash}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _remember_value(user) -> str:
    idp = current_idp()
    expires = idp.clock.now() + idp.settings["REMEMBER_BROWSER_DAYS"] * 86400  # the app clock, not the library's
    return _serializer().dumps({"u": user.id, "s": _stamp(user), "e": expires})


def remembered(user) -> bool:
    raw = request.cookies.get(_remember_cookie_name())
    days = current_idp().settings["REMEMBER_BROWSER_DAYS"]
    if not raw or days <= 0 or len(raw) > 300:
        return False
    try:
        data = _serializer().loads(raw)
    except BadSignature:
        return False
    if not isinstance(data, dict) or not isinstance(data.get("e"), int) or data["e"] <= current_idp().clock.now():
        return False
    return data.get("u") == user.id and hmac.compare_digest(str(data.get("s")), _stamp(user))


def set_remember_cookie(response):
    """after_request: write the remember-this-browser cookie chosen in this request."""
    value = g.get("remember_browser")
    if value:
        idp = current_idp()
        response.set_cookie(_remember_cookie_name(), value, max_age=idp.settings["REMEMBER_BROWSER_DAYS"] * 86400,
                            path="/", secure=idp.secure_cookies, httponly=True, samesite="Lax")
    return response


# -- the page ---------------------------------------------------------------------------


def may_remember(method, state) -> bool:
    """Whether passing ``method`` in this pending sign-in may remember the browser."""
    return current_idp().settings["REMEMBER_BROWSER_DAYS"] > 0 and method.rememberable and not state.get("want")


def _page(user, state, method, methods, *, error: str | None = None, status: int = 200, ctx: dict | None = None):
    others = [m for m in methods if m.key != method.key]
    return render_template(
        "login_verify.html", user=user, method=method, others=others, ctx=ctx or {}, error=error,
        tx=state.get("tx"), remember_days=current_idp().settings["REMEMBER_BROWSER_DAYS"],
        may_remember=may_remember(method, state), step_up=bool(state.get("want")),
    ), status


def _choose(user, state, key: str | None):
    """(the method asked for, or the strongest; all the user's methods), asking
    each method once per request; the method is None when there is none."""
    methods = _methods(user, state)
    if not methods:
        return None, methods
    for m in methods:
        if key and m.key == key:
            return m, methods
    return methods[0], methods


def _no_method_page():
    return render_template(
        "error.html", title=_("You cannot finish signing in"),
        message=_("None of your ways to confirm the sign-in can be used. Ask your administrator for a "
                  "one-time code, then sign in again."),
    ), 403


def _expired():
    return redirect(current_idp().url("login.email"))


@bp.get("/login/verify")
def verify():
    state = pending()
    user = pending_user()
    if state is None or user is None or state.get("stage") != "verify":
        return _expired()
    method, methods = _choose(user, state, request.args.get("method"))
    if method is None:
        return _no_method_page()
    try:
        ctx = method.prepare(user)
    except MethodRefused as exc:
        db.session.commit()
        return _page(user, state, method, methods, error=exc.message, status=exc.status)
    db.session.commit()  # what prepare stored (an SMS code, a WebAuthn challenge)
    return _page(user, state, method, methods, ctx=ctx)


@bp.post("/login/verify")
def verify_post():
    idp = current_idp()
    state = pending()
    user = pending_user()
    if state is None or user is None or state.get("stage") != "verify":
        return _expired()
    method, methods = _choose(user, state, request.form.get("method"))
    if method is None:
        return _no_method_page()
    if method.key != request.form.get("method"):
        return _page(user, state, method, methods, error=_("Choose a way to confirm the sign-in."), status=400)
    key = f"2fa:{user.id}"
    ip = request.remote_addr
    verdict = idp.throttle.attempt(key, ip, growing=True)
    if not verdict.allowed:
        audit.record("second_step_throttled", outcome="failure", user_id=user.id,
                     details={"method": method.key, "wait_seconds": verdict.wait_seconds})
        db.session.commit()
        if verdict.locked:
            message = _("Too many wrong codes. Confirming the sign-in is paused for %(duration)s. Try again later.",
                        duration=format_timedelta(timedelta(seconds=verdict.wait_seconds), threshold=1.1))
        else:
            message = _("Too many wrong codes. Wait %(seconds)d second(s) and try again.", seconds=verdict.wait_seconds)
        resp, _status = _page(user, state, method, methods, error=message, status=429)
        return resp, 429, {"Retry-After": str(verdict.wait_seconds)}
    try:
        verified = method.verify(user, request.form)
    except MethodRefused as exc:
        after = idp.throttle.failed(key, ip, growing=True)
        audit.record("second_step_failed", outcome="failure", user_id=user.id, details={"method": method.key})
        if after.locked:
            audit.record("second_step_locked", outcome="failure", user_id=user.id,
                         details={"seconds": after.wait_seconds})
        db.session.commit()
        ctx = {}
        try:
            ctx = method.prepare(user) if method.own_submit else {}
        except MethodRefused:
            pass
        db.session.commit()
        return _page(user, state, method, methods, error=exc.message, status=exc.status, ctx=ctx)
    idp.throttle.succeeded(key, ip)
    audit.record("second_step_passed", user_id=user.id, details={"method": method.key, "amr": list(verified.amr)})
    remember = request.form.get("remember") == "on" and may_remember(method, state)
    return complete(user, state, verified, remember=remember)


@bp.post("/login/verify/cancel")
def cancel():
    session.pop(PENDING_KEY, None)
    return redirect(current_idp().url("login.email"))


def current_user_or_pending():
    """(user, SsoSession or None): the signed-in user, or the user of a pending
    sign-in in the enrolment stage (who may only enrol a factor)."""
    sess = current_session()
    if sess is not None:
        return sess.user, sess
    state = pending()
    if state is not None and state.get("stage") == "enrol":
        user = pending_user()
        if user is not None:
            return user, None
    return None, None


__all__ = ["begin", "begin_step_up", "complete", "enrolling_done", "finish", "finish_enrolled", "pending"]
