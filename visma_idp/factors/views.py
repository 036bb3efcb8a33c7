"""Two-step verification on My details: the overview of a user's factors
(``/account/security``) and the password confirmation that enrolling,
removing or viewing recovery codes needs.

Rules:
- the pages need a signed-in session, or a pending sign-in that must enrol a
  factor before it can finish (``login/steps/enrolment.py``);
- enrolling or removing a factor, or showing recovery codes, needs the
  password entered within ``RECENT_PASSWORD_SECONDS`` (5 minutes): otherwise
  :func:`require_recent_password` sends the user to confirm it and back;
- wrong passwords there count against the same throttle as the sign-in.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session
from flask_babel import gettext as _
from sqlalchemy import select

from .. import audit
from ..browser import signin
from ..browser.sso import current_session
from ..context import current_idp
from ..storage import Factor, User, db
from . import must_have_factor

bp = Blueprint("factors", __name__)



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


def confirmed_factors(user) -> list[Factor]:
    return list(db.session.scalars(
        select(Factor).where(Factor.user_id == user.id, Factor.confirmed_at.is_not(None)).order_by(Factor.id)
    ))


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


def _safe_path(value: str | None) -> str:
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 500:
        return "/account/security"
    return value


@bp.route("/account/confirm-password", methods=["GET", "POST"])
def confirm_password():
    idp = current_idp()
    user, sess = actor()
    if user is None:
        return to_sign_in()
    back = _safe_path(request.values.get("next"))
    if request.method == "GET":
        return render_template("confirm_password.html", user=user, next=back, error=None)
    ip = request.remote_addr
    verdict = idp.throttle.attempt(user.email, ip)
    if not verdict.allowed:
        audit.record("password_confirm_throttled", outcome="failure", user_id=user.id)
        db.session.commit()
        error = _("Too many failed attempts. Wait %(seconds)d second(s) and try again.", seconds=verdict.wait_seconds)
        return render_template("confirm_password.html", user=user, next=back, error=error), 429
    secret = (request.form.get("password") or "")[:1024]
    if not idp.hasher.verify(user.password_hash, secret):
        idp.throttle.failed(user.email, ip)
        audit.record("password_confirm_failed", outcome="failure", user_id=user.id)
        db.session.commit()
        return render_template("confirm_password.html", user=user, next=back,
                               error=_("That is not your current password.")), 401
    idp.throttle.succeeded(user.email, ip)
    now = idp.clock.now()
    if sess is not None:
        sess.password_at = now
    else:
        signin.current().password_at = now
    audit.record("password_confirmed", user_id=user.id)
    db.session.commit()
    return redirect(idp.issuer + back)  # a path of ours, under the issuer's path (embedded under a prefix too)


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
