"""Authenticator app (TOTP, RFC 6238): secrets, codes and the sign-in method.

Rules:
- a secret is 160 random bits (32 base32 characters), made on the server and
  stored only encrypted (``Factor.secret_enc``); until the user confirms it
  with a current code the factor row has ``confirmed_at`` NULL and does not
  count (the raw secret never goes into a cookie);
- codes are 6 digits, 30-second steps, SHA-1 (what every app understands);
  one step either side is accepted for clock drift;
- a code is accepted at most once: the accepted step is stored in
  ``Factor.last_step`` with a conditional UPDATE (only when it is newer than
  the stored one), so a replayed code and two racing posts of the same code
  both fail except for one;
- wrong codes at sign-in are throttled by ``login/steps/second_factor.py``, at
  enrolment by the views (``totp-enrol:<user id>``).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import pyotp
import segno
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from sqlalchemy import or_, select, update

from ..context import current_idp
from ..storage import Factor, db
from . import AMR_OTP, Method, MethodRefused, Verified, register

KIND = "totp"
STEP_SECONDS = 30
DIGITS = 6
VALID_WINDOW = 1  # steps accepted either side of now
SECRET_CHARS = 32  # base32: 5 bits each, 160 bits
ENROL_LIFETIME = 900  # seconds an unconfirmed secret stays usable



# -- secrets ----------------------------------------------------------------------------


def new_secret() -> str:
    """A new random key (base32, 160 bits)."""
    return pyotp.random_base32(SECRET_CHARS)


def seal(secret: str) -> str:
    return current_idp().secrets.encrypt(secret.encode("ascii"))


def unseal(factor: Factor) -> str:
    if not factor.secret_enc:
        return ""
    return current_idp().secrets.decrypt(factor.secret_enc).decode("ascii")


def grouped(secret: str) -> str:
    """The key for typing in by hand: groups of four characters."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def provisioning_uri(secret: str, account: str) -> str:
    """The ``otpauth://`` URI an app reads from the QR code."""
    issuer = current_idp().settings["TOTP_ISSUER"]
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer)


def qr_svg(uri: str, title: str) -> Markup:
    """The QR code of ``uri`` as inline SVG: presentation attributes only, no
    ``style`` (the CSP allows no inline styles)."""
    svg = segno.make(uri, error="m").svg_inline(
        scale=5, border=4, dark="#000", light="#fff", svgclass="qr", lineclass=None, omitsize=True, title=title,
    )
    # an image with a name for screen readers; the title is escaped by segno, the label by us
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(title)}" ', 1)
    return Markup(svg)


# -- codes ------------------------------------------------------------------------------


def normalise(code: str | None) -> str:
    """What the user typed, without spaces and dashes; '' unless it looks like a code."""
    value = "".join((code or "")[:32].split()).replace("-", "")
    if len(value) != DIGITS or not value.isascii() or not value.isdigit():
        return ""
    return value


def current_step(at: float | None = None) -> int:
    return int((current_idp().clock.time() if at is None else at) // STEP_SECONDS)


def matching_step(secret: str, code: str, *, at: float | None = None) -> int | None:
    """The time step (now ±1) whose code is ``code``, or None. Every step of
    the window is compared, in constant time."""
    value = normalise(code)
    if not value or not secret:
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now = current_step(at)
    found = None
    for step in range(now - VALID_WINDOW, now + VALID_WINDOW + 1):
        same = hmac.compare_digest(totp.generate_otp(step).encode(), value.encode())
        if same:
            found = step  # the latest, should two steps share a code
    return found


def claim_step(factor_id: int, step: int) -> bool:
    """Record ``step`` as the factor's last accepted one, if it is newer than
    the stored one (atomically). False means the code was already used."""
    result = db.session.execute(
        update(Factor)
        .where(Factor.id == factor_id, or_(Factor.last_step.is_(None), Factor.last_step < step))
        .values(last_step=step),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def confirmed(user) -> list[Factor]:
    return list(db.session.scalars(
        select(Factor).where(Factor.user_id == user.id, Factor.kind == KIND, Factor.confirmed_at.is_not(None))
        .order_by(Factor.id)
    ))


# -- enrolment --------------------------------------------------------------------------


def pending_enrolment(user) -> Factor:
    """The user's unconfirmed authenticator (made within ``ENROL_LIFETIME``),
    or a new one with a fresh secret; older unconfirmed ones are removed.
    The caller commits."""
    now = current_idp().clock.now()
    rows = list(db.session.scalars(
        select(Factor).where(Factor.user_id == user.id, Factor.kind == KIND, Factor.confirmed_at.is_(None))
        .order_by(Factor.id.desc())
    ))
    keep = None
    for row in rows:
        if keep is None and now - row.created_at <= ENROL_LIFETIME:
            keep = row
        else:
            db.session.delete(row)
    if keep is None:
        keep = Factor(user_id=user.id, kind=KIND, name="", created_at=now, secret_enc=seal(new_secret()))
        db.session.add(keep)
        db.session.flush()
    return keep


def find_pending(user, factor_id) -> Factor | None:
    """The unconfirmed authenticator ``factor_id`` of this user, if still usable."""
    try:
        fid = int(factor_id)
    except (TypeError, ValueError):
        return None
    row = db.session.get(Factor, fid)
    if row is None or row.user_id != user.id or row.kind != KIND or row.confirmed_at is not None:
        return None
    if current_idp().clock.now() - row.created_at > ENROL_LIFETIME:
        return None
    return row


def confirm(factor: Factor, *, name: str, step: int) -> bool:
    """Make the pending factor count, once (two racing posts: one wins)."""
    result = db.session.execute(
        update(Factor)
        .where(Factor.id == factor.id, Factor.confirmed_at.is_(None))
        .values(confirmed_at=current_idp().clock.now(), last_step=step, name=name),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    db.session.refresh(factor)
    return True


# -- the sign-in method -------------------------------------------------------------------


def _available(user) -> bool:
    return db.session.scalar(
        select(Factor.id).where(Factor.user_id == user.id, Factor.kind == KIND, Factor.confirmed_at.is_not(None))
        .limit(1)
    ) is not None


def _prepare(user) -> dict:
    return {}


def _verify(user, form: Mapping[str, str]) -> Verified:
    code = normalise(form.get("code"))
    if not code:
        raise MethodRefused(_("Enter the 6-digit code from your authenticator app."), 400)
    replayed = False
    for factor in confirmed(user):
        step = matching_step(unseal(factor), code)
        if step is None:
            continue
        if claim_step(factor.id, step):
            return Verified(amr=(AMR_OTP,), factor_id=factor.id)
        replayed = True
    if replayed:
        raise MethodRefused(_("That code was used already. Wait for the next code in your app and enter it."), 401)
    raise MethodRefused(_("That code is not right. Check the time on your phone and try again."), 401)


METHOD = register(Method(
    key=KIND, strength=50, label=_l("Authenticator app"), template="login/_verify_totp.html",
    available=_available, prepare=_prepare, verify=_verify,
))
