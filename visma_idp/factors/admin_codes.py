"""Admin-issued one-time codes: a way back in for a user who lost their second factor.

An admin gives the user a code (issuing, and who may: ``admin/one_time_codes.py``).
The user then signs in with their password and the code, and must set up a
new factor before the sign-in ends. This module is the code itself and that
way through the second step.

Rules:
- the code is 10 characters from an alphabet without look-alikes (no 0/O,
  1/I/L), shown as two groups of five (about 49 bits); only its keyed digest
  (:func:`digest`) is stored; it is shown once to whoever issued it and never
  mailed;
- it lives ``ONE_TIME_CODE_LIFETIME`` seconds (10 minutes), works once (an
  atomic conditional UPDATE marks it used), and a new code voids the user's
  older live ones (:func:`create`);
- the second step offers it while the user has a live code; passing it sets
  ``must_enrol_factor``: the pending sign-in goes to enrolment
  (``Verified.enrol_next``) and ends only when a new factor is confirmed;
- a wrong code is 400, a used or expired one 410, each with its message;
- every use (``one_time_code_used``) is audited and emailed to the user.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from .. import audit
from ..context import current_idp
from ..notify import messages
from ..storage import OneTimeCode, User, db
from . import AMR_OTP, Method, MethodRefused, Verified, register

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # 31 symbols, no 0/O, 1/I/L
LENGTH = 10
GROUP = 5
KEY = "admin_code"
_DIGEST_PREFIX = "admin-one-time-code:"


def digest(normalised: str) -> str:
    """The keyed digest of a code (without separators), as stored."""
    return current_idp().secrets.keyed_digest(_DIGEST_PREFIX + normalised)


def new_code() -> str:
    """A fresh raw code, without separators."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def grouped(code: str) -> str:
    return "-".join(code[i:i + GROUP] for i in range(0, len(code), GROUP))


def normalise(value: str | None) -> str | None:
    """What the user typed -> the code without spaces or dashes, upper-case; None if it cannot be a code."""
    if not value or len(value) > 64:
        return None
    cleaned = "".join(ch for ch in value.upper() if ch not in " -\t\u00a0")
    if len(cleaned) != LENGTH or any(ch not in ALPHABET for ch in cleaned):
        return None
    return cleaned


def create(user: User, *, issued_by: User | None) -> tuple[str, OneTimeCode]:
    """A new code for ``user``: their older live codes are voided, the new one's
    digest is stored (flushed, not committed). Who may have one is the
    caller's question (``admin/one_time_codes.py``).

    Returns:
        The code, grouped for reading out (shown once, never stored), and its row.
    """
    idp = current_idp()
    now = idp.clock.now()
    # a new code voids the older live ones
    db.session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.used_at.is_(None), OneTimeCode.expires_at > now)
        .values(expires_at=now),
        execution_options={"synchronize_session": False},
    )
    raw = new_code()
    row = OneTimeCode(user_id=user.id, issued_by=issued_by.id if issued_by else None, digest=digest(raw),
                      created_at=now, expires_at=now + idp.settings["ONE_TIME_CODE_LIFETIME"])
    db.session.add(row)
    db.session.flush()
    return grouped(raw), row


def live_code(user) -> OneTimeCode | None:
    """The user's unused, unexpired code, if any."""
    now = current_idp().clock.now()
    return db.session.scalar(
        select(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.used_at.is_(None), OneTimeCode.expires_at > now)
        .order_by(OneTimeCode.id.desc()).limit(1)
    )


# -- the second step ------------------------------------------------------------


def _available(user) -> bool:
    return live_code(user) is not None


def _prepare(user) -> dict:
    return {}


def _verify(user, form: Mapping[str, str]) -> Verified:
    code = normalise(form.get("code"))
    if code is None:
        raise MethodRefused(_("Enter the 10-character one-time code your administrator gave you."), 400)
    idp = current_idp()
    now = idp.clock.now()
    row = db.session.scalar(select(OneTimeCode).where(OneTimeCode.digest == digest(code),
                                                      OneTimeCode.user_id == user.id))
    if row is None:
        raise MethodRefused(_("That one-time code is not right. Check it and try again."), 400)
    claimed = db.session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.id == row.id, OneTimeCode.used_at.is_(None), OneTimeCode.expires_at > now)
        .values(used_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount  # type: ignore[attr-defined]
    if claimed != 1:
        db.session.refresh(row)
        if row.used_at is not None:
            message = _("That one-time code was already used. Ask your administrator for a new one.")
        else:
            message = _("That one-time code has expired. Ask your administrator for a new one.")
        raise MethodRefused(message, 410)
    admin = db.session.get(User, row.issued_by) if row.issued_by is not None else None
    audit.record("one_time_code_used", user_id=user.id, subject=user.email,
                 details={"code_id": row.id, "issued_by": row.issued_by})
    messages.queue("one_time_code_used", to=user.email, user=user, admin=admin, ip=audit.client_ip())
    return Verified(amr=(AMR_OTP,), enrol_next=True)


METHOD = register(Method(
    key=KEY,
    strength=5,
    label=_l("One-time code from your administrator"),
    template="login/_verify_admin_code.html",
    available=_available,
    prepare=_prepare,
    verify=_verify,
    rememberable=False,
))
