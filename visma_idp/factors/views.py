"""Two-step verification on My details: the overview of a user's factors
(``/account/security``) and the password confirmation that enrolling,
removing or viewing recovery codes needs.

Rules:
- the pages need a signed-in session, or a pending sign-in that must enrol a
  factor before it can finish (``login/steps/enrolment.py``);
- enrolling or removing a factor, or showing recovery codes, needs the
  password entered within ``RECENT_PASSWORD_SECONDS`` (5 minutes): otherwise
  :func:`require_recent_password` sends the user to confirm it and back;
- wrong passwords there count against the same throttle as the sign-in
  (``password/confirm.py``: 429 with ``Retry-After`` while throttled);
- the confirmation goes back only to a safe path of ours (``urls.py``),
  else to the overview.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session
from flask_babel import gettext as _

from .. import audit
from ..browser import signin
from ..browser.sso import current_session
from ..context import current_idp
from ..password.confirm import Events, check_current_password, wait_message
from ..storage import Factor, User, db
from ..urls import safe_next, safe_path
from . import confirmed_factors, must_have_factor

bp = Blueprint("factors", __name__)

OVERVIEW_PATH = "/account/security"  # where the password confirmation goes back to without a safe next
CONFIRM_EVENTS = Events(throttled="password_confirm_throttled", failed="password_confirm_failed")



def actor():
    """(user, SsoSession or None) allowed on these pages, or (None, None): the
    signed-in user, or the user of a pending sign-in who must set up a factor
    before it can end (who may only enrol one)."""
    sess = current_session()
    if sess is not None:
        return sess.user, sess
    user_id = signin.acting_user_id()
    if user_id is not None:
        user = db.session.get(User, user_id)
        if user is not None and user.status == "active":
            return user, None
    return None, None


def password_is_recent(sess) -> bool:
    idp = current_idp()
    at = sess.password_at if sess is not None else signin.current().password_at
    return at is not None and idp.clock.now() - at <= idp.settings["RECENT_PASSWORD_SECONDS"]


def require_recent_password(sess, back_to: str):
    """None when the password was entered recently; else the redirect to confirm it.

    Args:
        sess: the SsoSession, or None during a pending sign-in.
        back_to: the path of ours to return to afterwards, as our routes
            declare it (``/account/security``): the issuer's path goes before it.
    """
    if password_is_recent(sess):
        return None
    return redirect(current_idp().url("factors.confirm_password", next=back_to))


def to_sign_in():
    return redirect(current_idp().url("login.email"))


def gate(back_to: str):
    """(user, SsoSession or None, None) when someone may change factors now;
    else (user or None, session, the redirect to sign in or to confirm the
    password, which comes back to ``back_to``)."""
    user, sess = actor()
    if user is None:
        return None, None, to_sign_in()
    return user, sess, require_recent_password(sess, back_to)


@bp.get("/account/security")
def overview():
    user, sess = actor()
    if user is None:
        return to_sign_in()
    factors = confirmed_factors(user)
    by_kind: dict[str, list[Factor]] = {}
    for f in factors:
        by_kind.setdefault(f.kind, []).append(f)
    enrol_mode = sess is None
    return render_template(
        "factors.html", user=user, factors=factors, by_kind=by_kind, enrol_mode=enrol_mode,
        recent=password_is_recent(sess), required=must_have_factor(user),
        done=session.pop(DONE_KEY, None),
    )


DONE_KEY = "factors_done"


def say_done(message: str) -> None:
    """A confirmation the overview shows once (kept in the signed session, never
    taken from the URL, so no link can put its own words on the page)."""
    session[DONE_KEY] = str(message)[:300]


@bp.route("/account/confirm-password", methods=["GET", "POST"])
def confirm_password():
    idp = current_idp()
    user, sess = actor()
    if user is None:
        return to_sign_in()
    back = safe_path(request.values.get("next")) or OVERVIEW_PATH
    if request.method == "GET":
        return render_template("confirm_password.html", user=user, next=back, error=None)
    check = check_current_password(user=user, email=user.email, password=request.form.get("password") or "",
                                   ip=request.remote_addr, events=CONFIRM_EVENTS)
    if check.locked:
        return render_template("login_locked.html", email=user.email), 403
    if check.throttled:
        page = render_template("confirm_password.html", user=user, next=back, error=wait_message(check))
        return page, 429, check.headers
    if not check.ok:
        return render_template("confirm_password.html", user=user, next=back,
                               error=_("That is not your current password.")), 401
    now = idp.clock.now()
    if sess is not None:
        sess.password_at = now
    else:
        signin.current().password_at = now
    audit.record("password_confirmed", user_id=user.id)
    db.session.commit()
    # a path of ours, under the issuer's path (embedded under a prefix too)
    return redirect(safe_next(back) or idp.url("factors.overview"))


@bp.route("/account/security/continue", methods=["GET", "POST"])
def continue_after_enrolment():
    """After the recovery codes of a first factor: finish a pending sign-in, or the overview."""
    from .enrolment import continue_after_enrolment_response

    user, _sess = actor()
    if user is None:
        state = signin.current()
        user = db.session.get(User, state.user_id) if state.enrolled and state.user_id else None
        if user is None:
            return to_sign_in()
    return continue_after_enrolment_response(user)
