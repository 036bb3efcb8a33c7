"""Recovery codes: ten single-use codes, the way back in when the user's
factors are lost.

Rules:
- a code is 10 characters from an alphabet without look-alikes (no 0/o,
  1/l/i), shown as ``xxxxx-xxxxx``; about 49 bits, and guesses are throttled
  by the second step;
- only keyed digests are stored (HMAC with the server key, bound to the
  user id), of the normalised code: case, spaces and dashes do not matter;
- the raw codes exist only in the response that shows them, once: made
  after the first factor's enrolment (when the user has no unused codes)
  or on regeneration, which voids every older code;
- using one marks it used with a conditional UPDATE (two racing posts: one
  wins), emails the user (always) with the number left, and is audited
  (``recovery_code_used``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import delete, func, select, update

from .. import audit
from ..audit import client_ip
from ..context import current_idp
from ..notify import messages
from ..storage import RecoveryCode, db
from . import AMR_OTP, Method, MethodRefused, Verified, register

ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0 o 1 i l
LENGTH = 10
COUNT = 10



def normalise(code: str | None) -> str:
    """Lower case, without spaces and dashes; '' unless it can be a code."""
    value = "".join((code or "")[:64].split()).replace("-", "").lower()
    if len(value) != LENGTH or any(c not in ALPHABET for c in value):
        return ""
    return value


def shown(raw: str) -> str:
    """How a code is shown: ``xxxxx-xxxxx``."""
    half = LENGTH // 2
    return f"{raw[:half]}-{raw[half:]}"


def _digest(user_id: int, normalised: str) -> str:
    return current_idp().secrets.keyed_digest(f"recovery:{user_id}:{normalised}")


def remaining(user) -> int:
    """How many unused codes the user has."""
    return int(db.session.scalar(
        select(func.count(RecoveryCode.id)).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ) or 0)


def generate(user) -> list[str]:
    """Void every code of the user and make :data:`COUNT` new ones; returns them
    as shown to the user (the only time they exist). The caller commits."""
    now = current_idp().clock.now()
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id),
                       execution_options={"synchronize_session": False})
    codes: list[str] = []
    while len(codes) < COUNT:
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        if shown(raw) in codes:  # pragma: no cover - 1 in 10^13
            continue
        codes.append(shown(raw))
        db.session.add(RecoveryCode(user_id=user.id, digest=_digest(user.id, raw), created_at=now))
    db.session.flush()
    return codes


def first_codes(user) -> list[str] | None:
    """After a factor is confirmed: new recovery codes (raw, to show once) when
    the user has none yet, else None. The caller commits."""
    if remaining(user) > 0:
        return None
    codes = generate(user)
    audit.record("recovery_codes_created", user_id=user.id, details={"count": len(codes), "first": True})
    return codes


def use(user, code: str | None) -> int | None:
    """Spend one code: the number left afterwards, or None when ``code`` is not
    an unused code of this user. Mails and audits the use; the caller commits."""
    value = normalise(code)
    if not value:
        return None
    now = current_idp().clock.now()
    result = db.session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.digest == _digest(user.id, value),
               RecoveryCode.used_at.is_(None))
        .values(used_at=now),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    left = remaining(user)
    audit.record("recovery_code_used", user_id=user.id, subject=user.email, details={"remaining": left})
    messages.queue("recovery_code_used", to=user.email, user=user, remaining=left, ip=client_ip() or "")
    return left


# -- the sign-in method -------------------------------------------------------------------


def _available(user) -> bool:
    return db.session.scalar(
        select(RecoveryCode.id).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)).limit(1)
    ) is not None


def _prepare(user) -> dict:
    return {}


def _verify(user, form: Mapping[str, str]) -> Verified:
    if not (form.get("code") or "").strip():
        raise MethodRefused(_("Enter one of your recovery codes."), 400)
    left = use(user, form.get("code"))
    if left is None:
        raise MethodRefused(_("That is not one of your unused recovery codes."), 401)
    if left == 0:
        notice = _("You used your last recovery code. Make new ones now, so you can still sign in if you lose "
                   "your other ways.")
    else:
        notice = ngettext("You used a recovery code. You have %(num)d left.",
                          "You used a recovery code. You have %(num)d left.", left)
    return Verified(amr=(AMR_OTP,), notice=notice)


METHOD = register(Method(
    key="recovery", strength=10, label=_l("Recovery code"), template="login/_verify_recovery.html",
    available=_available, prepare=_prepare, verify=_verify, rememberable=False,
))
