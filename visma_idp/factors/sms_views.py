"""SMS: verify a phone number at enrolment, remove.

Rules:
- every page needs the signed-in user (or a pending sign-in that must enrol)
  and a password entered within ``RECENT_PASSWORD_SECONDS``;
- ``GET /account/security/sms`` asks for the number and says plainly that
  text messages are the weaker choice; ``POST`` sends a code to it
  (throttled, see ``factors/sms.py``) and goes on to
  ``/account/security/sms/verify``, where the code is typed back; the
  number becomes a factor only then; ``POST /account/security/sms/resend``
  sends a new code to the same number (the same limits);
- ``POST /account/security/sms/<id>/remove`` removes a number (refused while
  the user must have a factor and this is their only one);
- a verified number equal to the profile's phone number also marks that one
  verified.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from flask_babel import gettext as _

from .. import audit
from ..context import current_idp
from ..storage import Factor, SmsCode, db
from . import AMR_SMS, MethodRefused, Verified, sms
from .enrolment import after_enrolment, after_removal
from .removal import RemovalRefused, ensure_removable
from .views import gate

bp = Blueprint("sms", __name__)

ENROL_PATH = "/account/security/sms"
VERIFY_PATH = ENROL_PATH + "/verify"
RESEND_WINDOW = 3600  # a number waiting for its code can get a new one for this long



@bp.app_template_global("sms_mask")
def sms_mask(phone: str | None) -> str:
    """A phone number for the pages: ``+47 ••• •• 567``."""
    return sms.mask(phone)


def _enrol_page(user, sess, *, phone: str = "", error: str | None = None, status: int = 200):
    return render_template("sms_enrol.html", user=user, enrol_mode=sess is None, phone=phone, error=error,
                           max_phones=sms.MAX_PHONES), status


def _verify_page(user, sess, code: SmsCode, *, error: str | None = None, notice: str | None = None,
                 status: int = 200):
    now = current_idp().clock.now()
    return render_template(
        "sms_verify_phone.html", user=user, enrol_mode=sess is None, phone=code.phone,
        minutes=sms.CODE_LIFETIME // 60, live=sms.is_live(code, now), error=error, notice=notice,
    ), status


def _with_retry_after(resp, status: int, exc: MethodRefused):
    if isinstance(exc, sms.SmsThrottled):
        return resp, status, {"Retry-After": str(exc.wait_seconds)}
    return resp, status


def _waiting(user) -> SmsCode | None:
    """The newest enrolment code, if the number it went to may still be confirmed or get a new code."""
    code = sms.newest_code(user, sms.PURPOSE_ENROL)
    if code is None or code.used_at is not None or current_idp().clock.now() - code.created_at > RESEND_WINDOW:
        return None
    return code


def _initial_phone(user) -> str:
    """The profile's number as a suggestion, unless it is already a factor."""
    phone = sms.normalise(user.phone_number) if user.phone_number else None
    if phone is None or any(f.phone == phone for f in sms.sms_factors(user)):
        return ""
    return user.phone_number or ""


@bp.get(ENROL_PATH)
def enrol():
    user, sess, back = gate(ENROL_PATH)
    if back is not None:
        return back
    return _enrol_page(user, sess, phone=_initial_phone(user))


@bp.post(ENROL_PATH)
def send():
    user, sess, back = gate(ENROL_PATH)
    if back is not None:
        return back
    raw = (request.form.get("phone") or "")[: sms.MAX_INPUT * 2]
    phone = sms.normalise(raw)
    if phone is None:
        return _enrol_page(user, sess, phone=raw, status=400,
                           error=_("Enter a mobile number with its country code, like +47 912 34 567."))
    numbers = [f.phone for f in sms.sms_factors(user)]
    if phone in numbers:
        return _enrol_page(user, sess, phone=raw, status=409,
                           error=_("This number is already set up for text messages."))
    if len(numbers) >= sms.MAX_PHONES:
        return _enrol_page(user, sess, phone=raw, status=409,
                           error=_("You can have at most %(num)d phone numbers. Remove one first.",
                                   num=sms.MAX_PHONES))
    try:
        sms.send_code(user, phone, purpose=sms.PURPOSE_ENROL)
    except MethodRefused as exc:
        resp, status = _enrol_page(user, sess, phone=raw, status=exc.status, error=exc.message)
        return _with_retry_after(resp, status, exc)
    return redirect(current_idp().url("sms.verify_phone"), code=303)


@bp.get(VERIFY_PATH)
def verify_phone():
    user, sess, back = gate(VERIFY_PATH)
    if back is not None:
        return back
    code = _waiting(user)
    if code is None:
        return redirect(current_idp().url("sms.enrol"))
    notice = _("We sent a new code.") if request.args.get("sent") == "1" else None
    return _verify_page(user, sess, code, notice=notice)


@bp.post(VERIFY_PATH)
def confirm():
    idp = current_idp()
    user, sess, back = gate(VERIFY_PATH)
    if back is not None:
        return back
    waiting = _waiting(user)
    if waiting is None:
        return redirect(idp.url("sms.enrol"))
    try:
        code = sms.check_code(user, request.form.get("code"), purpose=sms.PURPOSE_ENROL)
    except MethodRefused as exc:
        audit.record("sms_enrol_code_failed", outcome="failure", user_id=user.id,
                     details={"phone": sms.mask(waiting.phone), "status": exc.status})
        db.session.commit()
        return _verify_page(user, sess, waiting, error=exc.message, status=exc.status)
    phone = code.phone
    if any(f.phone == phone for f in sms.sms_factors(user)):
        db.session.commit()  # a second post of the same form: the number is set up already
        return redirect(idp.url("factors.overview"))
    now = idp.clock.now()
    factor = Factor(user_id=user.id, kind=sms.KIND, name=sms.mask(phone), phone=phone, created_at=now,
                    confirmed_at=now)
    db.session.add(factor)
    db.session.flush()
    code.factor_id = factor.id
    if user.phone_number and sms.normalise(user.phone_number) == phone:
        user.phone_number_verified = True
    return after_enrolment(user, factor, Verified(amr=(AMR_SMS,), factor_id=factor.id))


@bp.post(ENROL_PATH + "/resend")
def resend():
    user, sess, back = gate(VERIFY_PATH)
    if back is not None:
        return back
    waiting = _waiting(user)
    if waiting is None:
        return redirect(current_idp().url("sms.enrol"))
    try:
        sms.send_code(user, waiting.phone, purpose=sms.PURPOSE_ENROL)
    except MethodRefused as exc:
        resp, status = _verify_page(user, sess, waiting, error=exc.message, status=exc.status)
        return _with_retry_after(resp, status, exc)
    return redirect(current_idp().url("sms.verify_phone", sent="1"), code=303)


# -- removal ---------------------------------------------------------------------------


@bp.post(ENROL_PATH + "/<int:factor_id>/remove")
def remove(factor_id: int):
    user, sess, back = gate("/account/security")
    if back is not None:
        return back
    factor = db.session.get(Factor, factor_id)
    if factor is None or factor.user_id != user.id or factor.kind != sms.KIND or factor.confirmed_at is None:
        return render_template("error.html", title=_("Not found"),
                               message=_("This phone number is not one of yours, or it was removed already.")), 404
    try:
        ensure_removable(user=user, factor=factor)
    except RemovalRefused as exc:
        return render_template("error.html", title=_("You cannot remove this phone number"),
                               message=exc.message), exc.status
    after_removal(user, factor)
    sms.remove(factor)
    db.session.commit()
    return redirect(current_idp().url("factors.overview"), code=303)
