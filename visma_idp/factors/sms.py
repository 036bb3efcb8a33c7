"""SMS as a second factor: phone numbers, codes, throttles and the sign-in method.

Rules:
- a phone number is E.164 (``+`` then 7 to 15 digits) after spaces, hyphens,
  dots and parentheses are removed (``account.profile.normalize_phone``); a
  number counts as a factor only after the user typed back a code sent to it
  (``Factor(kind="sms", phone, confirmed_at)``); at most :data:`MAX_PHONES`
  numbers per user;
- a code is 6 digits from :func:`secrets.randbelow`, valid
  :data:`CODE_LIFETIME` seconds, stored only as a keyed digest bound to the
  user and the purpose (``SmsCode.digest``); only the newest code of a user
  and purpose counts (sending one voids the older ones); each try is counted
  with a conditional UPDATE before the code is compared (constant time), so
  parallel guesses cannot get more than :data:`MAX_TRIES` tries; after that
  the code is dead; a right code is used up with a conditional UPDATE too, so
  it passes once;
- sending is throttled against toll fraud: at most ``SMS_PER_NUMBER`` codes
  per number (across accounts) in :data:`NUMBER_WINDOW` seconds and
  ``SMS_PER_ACCOUNT_DAY`` per account a day, in the
  shared throttle store (memory or Redis); over a limit nothing is sent, the
  user gets 429 and ``sms_throttled`` is audited;
- at sign-in, showing the page (``prepare``) sends a code unless a live one
  went to the same number less than :data:`QUIET_SECONDS` ago, so reloading
  the page does not send another;
- numbers are shown masked (``+47 ••• •• 567``, ``notify/sms.py:mask``)
  everywhere except on the enrolment page, where the user typed it;
- the code is written to the caller's transaction for the outbox backend;
  for the HTTP backend the code row is committed first, so no database
  transaction stays open while the provider answers; a failed hand-over
  voids the code and tells the user (503).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import has_request_context, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import delete, select, update

from .. import audit
from ..context import current_idp
from ..notify.sms import SmsNotSent, mask, sender_for
from ..storage import Factor, SmsCode, db
from . import AMR_SMS, Method, MethodRefused, Verified, register

KIND = "sms"
PURPOSE_ENROL = "enrol"
PURPOSE_SIGNIN = "signin"
CODE_DIGITS = 6
CODE_LIFETIME = 300  # seconds
MAX_TRIES = 5
QUIET_SECONDS = 60  # showing the sign-in page again within this sends nothing new
NUMBER_WINDOW = 600  # seconds of SMS_PER_NUMBER
ACCOUNT_WINDOW = 86400  # seconds of SMS_PER_ACCOUNT_DAY
MAX_PHONES = 5
MAX_INPUT = 40

_CODE_RE = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")
_BLANKS = re.compile(r"[\s\-]")



class SmsThrottled(MethodRefused):
    """A sending limit was reached (429); ``wait_seconds`` until it frees up."""

    def __init__(self, message: str, wait_seconds: int):
        super().__init__(message, 429)
        self.wait_seconds = wait_seconds


# -- numbers ---------------------------------------------------------------------------


def normalise(raw: str | None) -> str | None:
    """``+47 912 34 567`` → ``+4791234567``; None when it is not an E.164 number."""
    from ..account.profile import normalize_phone

    value = (raw or "").strip()
    if not value or len(value) > MAX_INPUT:
        return None
    return normalize_phone(value)


def remove(factor: Factor) -> None:
    """Delete a phone factor and the codes sent to it; the caller commits."""
    db.session.execute(delete(SmsCode).where(SmsCode.factor_id == factor.id),
                       execution_options={"synchronize_session": False})
    db.session.delete(factor)


def sms_factors(user) -> list[Factor]:
    """The user's confirmed SMS factors, oldest first."""
    return list(db.session.scalars(
        select(Factor).where(Factor.user_id == user.id, Factor.kind == KIND, Factor.confirmed_at.is_not(None))
        .order_by(Factor.id)
    ))


# -- codes ------------------------------------------------------------------------------


def _material(user_id: int, purpose: str, code: str) -> str:
    return f"sms-code:{user_id}:{purpose}:{code}"


def newest_code(user, purpose: str) -> SmsCode | None:
    return db.session.scalar(
        select(SmsCode).where(SmsCode.user_id == user.id, SmsCode.purpose == purpose)
        .order_by(SmsCode.id.desc()).limit(1)
    )


def is_live(code: SmsCode | None, now: int) -> bool:
    return code is not None and code.used_at is None and code.attempts < MAX_TRIES and code.expires_at > now


def _minutes(seconds: int) -> int:
    return max(1, (seconds + 59) // 60)


def _limit_wait(limit: int, window: int):
    def wait(count: int, last: float, now: float) -> int:
        return max(1, int(last + window - now + 0.999)) if count >= limit else 0

    return wait


def _throttle_keys(user, phone: str) -> list[tuple[str, str, int, int]]:
    idp = current_idp()
    number_key = idp.secrets.keyed_digest("sms-number:" + phone)[:32]
    return [
        ("number", f"sms:num:{number_key}", idp.settings["SMS_PER_NUMBER"], NUMBER_WINDOW),
        ("account", f"sms:acct:{user.id}", idp.settings["SMS_PER_ACCOUNT_DAY"], ACCOUNT_WINDOW),
    ]


def _take_quota(user, phone: str) -> tuple[str, int] | None:
    """Count one text message against the number and the account; on a
    limit, (which limit, seconds to wait) and nothing counted for it."""
    idp = current_idp()
    store, now = idp.throttle.store, idp.clock.time()
    keys = _throttle_keys(user, phone)
    for scope, key, limit, window in keys:  # look first, so a refusal counts nowhere
        seconds = _limit_wait(limit, window)(*store.get(key, now, window), now)
        if seconds > 0:
            return scope, seconds
    for scope, key, limit, window in keys:
        _count, seconds = store.take(key, now, window, _limit_wait(limit, window))
        if seconds > 0:
            return scope, seconds
    return None


def _text(purpose: str, code: str) -> str:
    minutes = CODE_LIFETIME // 60
    if purpose == PURPOSE_ENROL:
        line = _("%(code)s is your code to add this phone number to your Visma IdP account. "
                 "It is valid for %(minutes)d minutes. Never give it to anyone.", code=code, minutes=minutes)
    else:
        line = _("%(code)s is your Visma IdP sign-in code. It is valid for %(minutes)d minutes. "
                 "Never give it to anyone.", code=code, minutes=minutes)
    host = urlsplit(current_idp().issuer).hostname or ""
    # the last line lets phones offer the code to this site only (origin-bound one-time codes)
    return f"{line}\n\n@{host} #{code}"


def send_code(user, phone: str, *, purpose: str, factor_id: int | None = None) -> SmsCode:
    """Make a new code for ``phone`` and send it. Commits.

    Raises:
        MethodRefused: 429 over a sending limit (nothing sent), 503 when the
            SMS provider did not take the message (the code is void).
    """
    idp = current_idp()
    now = idp.clock.now()
    refused = _take_quota(user, phone)
    if refused is not None:
        scope, seconds = refused
        audit.record("sms_throttled", outcome="failure", user_id=user.id,
                     details={"purpose": purpose, "limit": scope, "phone": mask(phone), "wait_seconds": seconds})
        db.session.commit()
        if scope == "number":
            message = _("We have sent too many codes to this number. Try again in %(minutes)d minute(s).",
                        minutes=_minutes(seconds))
        else:
            message = _("We have sent too many codes for your account. Try again in %(minutes)d minute(s), "
                        "or use another way to confirm it is you.", minutes=_minutes(seconds))
        raise SmsThrottled(message, seconds)
    # only the newest code counts
    db.session.execute(
        update(SmsCode).where(SmsCode.user_id == user.id, SmsCode.purpose == purpose, SmsCode.used_at.is_(None),
                              SmsCode.expires_at > now)
        .values(expires_at=now).execution_options(synchronize_session=False)
    )
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    row = SmsCode(user_id=user.id, factor_id=factor_id, phone=phone, purpose=purpose,
                  digest=idp.secrets.keyed_digest(_material(user.id, purpose, code)),
                  created_at=now, expires_at=now + CODE_LIFETIME, attempts=0)
    db.session.add(row)
    db.session.commit()  # the code exists before it leaves; no transaction open while a provider answers
    try:
        sender_for(idp).send(to=phone, text=_text(purpose, code))
    except SmsNotSent as exc:
        db.session.rollback()
        db.session.execute(update(SmsCode).where(SmsCode.id == row.id).values(expires_at=now)
                           .execution_options(synchronize_session=False))
        audit.record("sms_not_sent", outcome="failure", user_id=user.id,
                     details={"purpose": purpose, "phone": mask(phone), "reason": exc.message})
        db.session.commit()
        raise MethodRefused(_("We could not send the text message just now. Try again in a few minutes, "
                              "or use another way to confirm it is you."), 503) from None
    audit.record("sms_code_sent", user_id=user.id, details={"purpose": purpose, "phone": mask(phone)})
    db.session.commit()
    return row


def _dead() -> MethodRefused:
    return MethodRefused(_("This code can no longer be used: it was entered wrong too many times. "
                           "Send a new code."), 410)


def check_code(user, entered: str | None, *, purpose: str) -> SmsCode:
    """Check ``entered`` against the user's newest code for ``purpose`` and use
    it up. The caller commits (also after a refusal: the try is counted).

    Raises:
        MethodRefused: 400 malformed or wrong (with the tries left), 410 no
            live code (expired, used, dead after :data:`MAX_TRIES`).
    """
    idp = current_idp()
    now = idp.clock.now()
    digits = _BLANKS.sub("", (entered or "")[:MAX_INPUT])
    if not _CODE_RE.fullmatch(digits):
        raise MethodRefused(_("Enter the 6-digit code from the text message."), 400)
    row = newest_code(user, purpose)
    if row is None or row.used_at is not None:
        raise MethodRefused(_("There is no code waiting for you. Send a new code."), 410)
    if row.expires_at <= now:
        raise MethodRefused(_("The code has expired. Send a new code."), 410)
    if row.attempts >= MAX_TRIES:
        raise _dead()
    counted = db.session.execute(
        update(SmsCode).where(SmsCode.id == row.id, SmsCode.used_at.is_(None), SmsCode.attempts < MAX_TRIES,
                              SmsCode.expires_at > now)
        .values(attempts=SmsCode.attempts + 1).execution_options(synchronize_session=False)
    )
    if counted.rowcount != 1:  # type: ignore[attr-defined]
        db.session.expire(row)
        raise _dead()
    if not idp.secrets.check_keyed_digest(_material(user.id, purpose, digits), row.digest):
        db.session.expire(row)
        left = MAX_TRIES - int(db.session.scalar(select(SmsCode.attempts).where(SmsCode.id == row.id)) or 0)
        if left <= 0:
            raise MethodRefused(_("That code is not right, and it can no longer be used. Send a new code."), 410)
        raise MethodRefused(ngettext("That code is not right. You can try %(num)d more time.",
                                     "That code is not right. You can try %(num)d more times.", left), 400)
    used = db.session.execute(
        update(SmsCode).where(SmsCode.id == row.id, SmsCode.used_at.is_(None)).values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.expire(row)
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise MethodRefused(_("This code was already used. Send a new code."), 410)
    return row


# -- the sign-in method --------------------------------------------------------------------


def _available(user) -> bool:
    return db.session.scalar(
        select(Factor.id).where(Factor.user_id == user.id, Factor.kind == KIND, Factor.confirmed_at.is_not(None))
        .limit(1)
    ) is not None


def _chosen(user, factors: list[Factor]) -> Factor:
    wanted = request.values.get("factor") if has_request_context() else None
    if wanted:
        for f in factors:
            if str(f.id) == wanted:
                return f
    latest = newest_code(user, PURPOSE_SIGNIN)
    if latest is not None and is_live(latest, current_idp().clock.now()):
        for f in factors:
            if f.id == latest.factor_id:
                return f
    return factors[0]


def signin_context(user, factor: Factor | None = None, **extra: Any) -> dict[str, Any]:
    """What the sign-in partial shows, without sending anything."""
    factors = sms_factors(user)
    if not factors:
        return {"masked": "", "factor_id": None, "others": [], "minutes": CODE_LIFETIME // 60, "live": False,
                **extra}
    if factor is None:
        factor = _chosen(user, factors)
    latest = newest_code(user, PURPOSE_SIGNIN)
    live = is_live(latest, current_idp().clock.now()) and latest is not None and latest.factor_id == factor.id
    return {
        "masked": mask(factor.phone), "factor_id": factor.id, "minutes": CODE_LIFETIME // 60, "live": live,
        "others": [{"id": f.id, "masked": mask(f.phone)} for f in factors if f.id != factor.id],
        **extra,
    }


def _prepare(user) -> dict[str, Any]:
    factors = sms_factors(user)
    if not factors:
        raise MethodRefused(_("You have no phone number for text messages."), 409)
    factor = _chosen(user, factors)
    now = current_idp().clock.now()
    latest = newest_code(user, PURPOSE_SIGNIN)
    if (is_live(latest, now) and latest is not None and latest.factor_id == factor.id
            and now - latest.created_at < QUIET_SECONDS):
        return signin_context(user, factor, sent_now=False, wait=QUIET_SECONDS - (now - latest.created_at))
    assert factor.phone
    send_code(user, factor.phone, purpose=PURPOSE_SIGNIN, factor_id=factor.id)
    return signin_context(user, factor, sent_now=True, wait=QUIET_SECONDS)


def _verify(user, form: Mapping[str, str]) -> Verified:
    row = check_code(user, form.get("code"), purpose=PURPOSE_SIGNIN)
    factor_id = row.factor_id
    if factor_id is None or not any(f.id == factor_id for f in sms_factors(user)):
        # the number was removed after the code went out
        raise MethodRefused(_("This phone number is no longer set up. Sign in another way."), 410)
    return Verified(amr=(AMR_SMS,), factor_id=factor_id)


METHOD = register(Method(
    key=KIND,
    strength=30,
    label=_l("Text message (SMS)"),
    template="login/_verify_sms.html",
    available=_available,
    prepare=_prepare,
    verify=_verify,
    extra={"context": signin_context},
))
