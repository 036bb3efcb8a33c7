"""Step: the second factor (``/login/verify``), and step-up.

Rules:
- a user with a confirmed factor of their own passes one of their methods
  after the first factor, before any SSO session exists; the methods are
  offered strongest first, with "Try another way" (``factors/``: each
  registers its :class:`~visma_idp.factors.Method`);
- "Remember this browser" (``login/remember.py``) skips it, at the password
  level, except while an upstream identity waits to be linked
  (``steps/link_identity.py``);
- a user who lost their factors and holds an admin-issued code
  (``must_enrol_factor``) passes it with that code, then must enrol a new
  factor (the enrolment step);
- a passkey proved it already (``ways/passkey.py``);
- step-up: an app asks for more than the session has and the person can
  reach it (``oidc/prompts.py``): they pass a method again without the
  password, only a phishing-resistant one for the ``phr`` level;
- wrong answers are throttled per account (``2fa:<id>``), and repeated locks
  grow (``login/throttle.py``: at most 70 guessed codes the first day);
- the finished step adds its ``amr`` and ``mfa``; ``acr`` becomes ``mfa``,
  or ``phr`` for a security key or passkey.
"""

from __future__ import annotations

from datetime import timedelta

from flask import redirect, render_template, request
from flask_babel import format_timedelta
from flask_babel import gettext as _

from ... import audit
from ...assurance import ACR_MFA, ACR_PASSWORD, ACR_PHISHING_RESISTANT, AMR_MFA, rank
from ...browser.signin import SignIn
from ...context import current_idp
from ...factors import MethodRefused, has_second_factor, methods_for, second_step_key
from ...storage import Factor, db
from ..blueprints import second_step_bp as bp
from ..pipeline import DONE, Flow, Outcome, Show, advance, load
from ..remember import may_remember, remembered


def run(flow: Flow) -> Outcome:
    state = flow.signin
    if not flow.authenticating or state.second_done or not state.proved_first:
        return DONE
    user = flow.user
    if user is None:
        return DONE
    if state.step_up:
        return Show("second_step.verify")
    if has_second_factor(user) and not user.must_enrol_factor:
        if remembered(user) and not state.pending_link:  # linking an identity needs the second step itself
            audit.record("second_step_remembered", user_id=user.id)
            state.second_done = True  # the session stays at the level of the first factor
            return DONE
        return Show("second_step.verify")
    if user.must_enrol_factor and methods_for(user):
        return Show("second_step.verify")  # a lost factor: pass with what is left (an admin code), then enrol
    return DONE


def achievable_acr(user) -> str:
    """The highest level this user can reach with the factors they have
    (``idp.handoff.achievable_acr``: the protocol asks it before a step-up)."""
    methods = methods_for(user)
    if any(m.phishing_resistant for m in methods):
        return ACR_PHISHING_RESISTANT
    if methods and has_second_factor(user):
        return ACR_MFA
    return ACR_PASSWORD


def _methods(user, state: SignIn) -> list:
    return methods_for(user, phishing_resistant_only=rank(state.want) >= rank(ACR_PHISHING_RESISTANT))


def _choose(user, state: SignIn, key: str | None):
    """(the method asked for, or the strongest; all the user's methods), asking
    each method once per request; the method is None when there is none."""
    methods = _methods(user, state)
    if not methods:
        return None, methods
    for m in methods:
        if key and m.key == key:
            return m, methods
    return methods[0], methods


def _page(flow: Flow, method, methods, *, error: str | None = None, status: int = 200, ctx: dict | None = None):
    others = [m for m in methods if m.key != method.key]
    return render_template(
        "login_verify.html", user=flow.user, method=method, others=others, ctx=ctx or {}, error=error,
        tx=flow.tx, remember_days=current_idp().settings["REMEMBER_BROWSER_DAYS"],
        may_remember=may_remember(method, flow.signin), step_up=flow.signin.step_up,
    ), status


def _no_method_page():
    return render_template(
        "error.html", title=_("You cannot finish signing in"),
        message=_("None of your ways to confirm the sign-in can be used. Ask your administrator for a "
                  "one-time code, then sign in again."),
    ), 403


def _here(flow: Flow) -> bool:
    """Whether the sign-in is at this step now."""
    return isinstance(run(flow), Show)


@bp.get("/login/verify")
def verify():
    flow = load(request.args.get("tx"))
    if not _here(flow):
        return advance(flow, in_place=True)
    method, methods = _choose(flow.user, flow.signin, request.args.get("method"))
    if method is None:
        return _no_method_page()
    try:
        ctx = method.prepare(flow.user)
    except MethodRefused as exc:
        db.session.commit()
        return _page(flow, method, methods, error=exc.message, status=exc.status)
    db.session.commit()  # what prepare stored (an SMS code, a WebAuthn challenge)
    return _page(flow, method, methods, ctx=ctx)


@bp.post("/login/verify")
def verify_post():
    idp = current_idp()
    flow = load(request.values.get("tx"))
    if not _here(flow):
        return advance(flow, in_place=False)
    user, state = flow.user, flow.signin
    assert user is not None
    method, methods = _choose(user, state, request.form.get("method"))
    if method is None:
        return _no_method_page()
    if method.key != request.form.get("method"):
        return _page(flow, method, methods, error=_("Choose a way to confirm the sign-in."), status=400)
    key = second_step_key(user.id)
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
        resp, _status = _page(flow, method, methods, error=message, status=429)
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
        return _page(flow, method, methods, error=exc.message, status=exc.status, ctx=ctx)
    idp.throttle.succeeded(key, ip)
    audit.record("second_step_passed", user_id=user.id, details={"method": method.key, "amr": list(verified.amr)})
    if verified.factor_id is not None:
        factor = db.session.get(Factor, verified.factor_id)
        if factor is not None:
            factor.last_used_at = idp.clock.now()
    acr = ACR_PHISHING_RESISTANT if verified.phishing_resistant else ACR_MFA
    state.second_factor(amr=[*verified.amr, AMR_MFA], acr=acr)
    if verified.enrol_next:
        user.must_enrol_factor = True  # pass this once, then enrol a new factor before the sign-in ends
    else:
        state.remember = request.form.get("remember") == "on" and may_remember(method, state)
        state.notice = verified.notice
        state.notice_about = "recovery" if verified.notice else None
        state.details = {"second_step": True}
    return advance(flow, in_place=False)


@bp.post("/login/verify/cancel")
def cancel():
    load().signin.finished()
    return redirect(current_idp().url("login.email"))
