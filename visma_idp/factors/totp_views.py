"""Authenticator app (TOTP): enrol with a QR code, confirm, remove.

Rules:
- every page needs the signed-in user (or a pending sign-in that must enrol)
  and a password entered within ``RECENT_PASSWORD_SECONDS``;
- ``GET /account/security/totp`` shows the QR code and the key of the user's
  unconfirmed authenticator (made here, kept server-side only);
  ``POST`` confirms it with a current code and a name: wrong codes are
  throttled per user (``totp-enrol:<id>``);
- ``/account/security/totp/<id>/remove``: GET asks, POST removes (refused
  while the user must have a factor and this is their only one).
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from .. import audit
from ..account import activity
from ..context import current_idp
from ..storage import Factor, db
from . import AMR_OTP, Verified, totp
from .enrolment import after_enrolment, after_removal
from .removal import RemovalRefused, ensure_removable
from .views import gate

bp = Blueprint("totp", __name__)

NAME_MAX = 60
DEFAULT_NAME = _l("Authenticator app")
ENROL_PATH = "/account/security/totp"



@bp.app_template_global("factor_when")
def factor_when(ts: int | None, user) -> str:
    """A factor's time stamp (added, last used) for the overview, in the user's zone."""
    return activity.format_time(ts, activity.user_zone(user))


def _enrol_page(user, sess, factor: Factor, *, name: str | None = None, error: str | None = None,
                name_error: str | None = None, status: int = 200):
    secret = totp.unseal(factor)
    uri = totp.provisioning_uri(secret, user.email)
    return render_template(
        "totp_enrol.html", user=user, enrol_mode=sess is None, factor_id=factor.id,
        qr=totp.qr_svg(uri, _("QR code with the key for your authenticator app")),
        key_text=totp.grouped(secret), uri=uri, issuer=current_idp().settings["TOTP_ISSUER"],
        name=str(DEFAULT_NAME) if name is None else name, name_max=NAME_MAX, error=error, name_error=name_error,
    ), status


@bp.get(ENROL_PATH)
def enrol():
    user, sess, back = gate(ENROL_PATH)
    if back is not None:
        return back
    factor = totp.pending_enrolment(user)
    db.session.commit()
    return _enrol_page(user, sess, factor)


def _already_confirmed(user, factor_id) -> bool:
    try:
        row = db.session.get(Factor, int(factor_id))
    except (TypeError, ValueError):
        return False
    return row is not None and row.user_id == user.id and row.kind == totp.KIND and row.confirmed_at is not None


def _clean_name(raw: str | None) -> str:
    return " ".join((raw or "").split())


@bp.post(ENROL_PATH)
def confirm():
    idp = current_idp()
    user, sess, back = gate(ENROL_PATH)
    if back is not None:
        return back
    factor = totp.find_pending(user, request.form.get("factor"))
    name = _clean_name(request.form.get("name"))
    if factor is None and _already_confirmed(user, request.form.get("factor")):
        return redirect(idp.url("factors.overview"))  # the form posted twice: the first post did it
    if factor is None:
        factor = totp.pending_enrolment(user)
        db.session.commit()
        return _enrol_page(user, sess, factor, name=name, status=410,
                           error=_("Setting up took too long, so we made a new key. Add it to your app again, "
                                   "then enter the code it shows."))
    if len(name) > NAME_MAX:
        return _enrol_page(user, sess, factor, name=name, status=400,
                           name_error=_("Use at most %(num)d characters.", num=NAME_MAX))
    key = f"totp-enrol:{user.id}"
    ip = request.remote_addr
    verdict = idp.throttle.attempt(key, ip)
    if not verdict.allowed:
        audit.record("totp_enrol_throttled", outcome="failure", user_id=user.id,
                     details={"wait_seconds": verdict.wait_seconds})
        db.session.commit()
        resp, _status = _enrol_page(
            user, sess, factor, name=name, status=429,
            error=_("Too many wrong codes. Wait %(seconds)d second(s) and try again.", seconds=verdict.wait_seconds))
        return resp, 429, {"Retry-After": str(verdict.wait_seconds)}
    code = totp.normalise(request.form.get("code"))
    step = totp.matching_step(totp.unseal(factor), code) if code else None
    if step is None:
        idp.throttle.failed(key, ip)
        audit.record("totp_enrol_failed", outcome="failure", user_id=user.id, details={"factor_id": factor.id})
        db.session.commit()
        message = (_("That code is not right. Check the time on your phone, then enter the code the app shows now.")
                   if code else _("Enter the 6-digit code from your authenticator app."))
        return _enrol_page(user, sess, factor, name=name, error=message, status=400 if not code else 401)
    if not totp.confirm(factor, name=name or str(DEFAULT_NAME), step=step):
        # a second post of the same form, after the first one confirmed it
        idp.throttle.succeeded(key, ip)
        db.session.rollback()
        return redirect(idp.url("factors.overview"))
    idp.throttle.succeeded(key, ip)
    return after_enrolment(user, factor, Verified(amr=(AMR_OTP,), factor_id=factor.id))


# -- removal ---------------------------------------------------------------------------


def _own_factor(user, factor_id: int) -> Factor | None:
    row = db.session.get(Factor, factor_id)
    if row is None or row.user_id != user.id or row.kind != totp.KIND or row.confirmed_at is None:
        return None
    return row


def _not_found():
    return render_template("error.html", title=_("Not found"),
                           message=_("This authenticator app is not one of yours, or it was removed already.")), 404


def _remove_page(user, sess, factor: Factor, *, error: str | None = None, status: int = 200):
    return render_template("totp_remove.html", user=user, factor=factor, enrol_mode=sess is None,
                           error=error), status


@bp.get(ENROL_PATH + "/<int:factor_id>/remove")
def remove_confirm(factor_id: int):
    user, sess, back = gate(f"{ENROL_PATH}/{factor_id}/remove")
    if back is not None:
        return back
    factor = _own_factor(user, factor_id)
    if factor is None:
        return _not_found()
    return _remove_page(user, sess, factor)


@bp.post(ENROL_PATH + "/<int:factor_id>/remove")
def remove(factor_id: int):
    user, sess, back = gate(f"{ENROL_PATH}/{factor_id}/remove")
    if back is not None:
        return back
    factor = _own_factor(user, factor_id)
    if factor is None:
        return _not_found()
    try:
        ensure_removable(user=user, factor=factor)
    except RemovalRefused as exc:
        return _remove_page(user, sess, factor, status=exc.status, error=exc.message)
    after_removal(user, factor)
    db.session.delete(factor)
    db.session.commit()
    return redirect(current_idp().url("factors.overview"))
