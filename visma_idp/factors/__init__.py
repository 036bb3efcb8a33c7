"""Second factors: authenticator app (TOTP), SMS, security keys and passkeys
(WebAuthn), recovery codes and admin-issued one-time codes.

Each factor module is pure logic plus a views module, and registers the
ways it can pass the second step of a sign-in as :class:`Method` objects.
The sign-in's second step (``login/steps/second_factor.py``) offers the
user's available methods strongest first, with "Try another way" for the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# RFC 8176 values (assurance.py holds them for the protocol and the sign-in alike)
from ..assurance import (  # noqa: E402, F401 - the factor modules take them from here
    AMR_HARDWARE_KEY,
    AMR_MFA,
    AMR_OTP,
    AMR_PASSWORD,
    AMR_PIN,
    AMR_SMS,
    AMR_SOFTWARE_KEY,
    AMR_USER_PRESENCE,
)
from ..context import current_idp

if TYPE_CHECKING:
    from flask import Flask

    from .. import IdentityProvider


@dataclass(frozen=True)
class Verified:
    """A method accepted the user's answer.

    Args:
        amr: what the user proved (RFC 8176 values).
        phishing_resistant: a security key or passkey (the ``phr`` level).
        factor_id: the Factor row used, if any (for ``last_used_at``).
        enrol_next: the user must enrol a new factor before the sign-in ends
            (an admin-issued one-time code).
        notice: a message the user must see once signed in (a recovery code
            was used: how many are left); a page of its own shows it before
            the user goes on to the application.
    """

    amr: tuple[str, ...]
    phishing_resistant: bool = False
    factor_id: int | None = None
    enrol_next: bool = False
    notice: str | None = None


class MethodRefused(Exception):
    """The answer was wrong or cannot be checked now; ``message`` is shown to
    the user (translated), ``status`` is the HTTP status of the page."""

    def __init__(self, message: str, status: int = 400):
        self.message = message
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Method:
    """One way to pass the second step.

    Args:
        key: short name used in URLs (``totp``, ``sms``, ``webauthn``, ``recovery``, ``admin_code``).
        strength: higher is offered first.
        label: what "Try another way" shows (a lazy translated string).
        template: partial rendered inside the second-step form; it gets
            ``user``, ``method`` and ``ctx`` (what ``prepare`` returned).
        available: whether the user can use it now.
        prepare: runs when the method's page is shown (send an SMS, make
            WebAuthn options); returns the template context.
        verify: checks the posted form; returns :class:`Verified` or raises
            :class:`MethodRefused`.
        phishing_resistant: can reach the ``phr`` level.
        own_submit: the partial posts the form itself (WebAuthn's script).
        rememberable: passing it may "remember this browser" (not a way back
            in such as a recovery or admin-issued code).
    """

    key: str
    strength: int
    label: Any
    template: str
    available: Callable[[Any], bool]
    prepare: Callable[[Any], dict[str, Any]]
    verify: Callable[[Any, Mapping[str, str]], Verified]
    phishing_resistant: bool = False
    own_submit: bool = False
    rememberable: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    METHODS[method.key] = method
    return method


def methods_for(user, *, phishing_resistant_only: bool = False) -> list[Method]:
    """The methods this user can use now, strongest first."""
    load_all()
    found = [m for m in METHODS.values() if m.available(user)]
    if phishing_resistant_only:
        found = [m for m in found if m.phishing_resistant]
    return sorted(found, key=lambda m: -m.strength)


def confirmed_factors(user) -> list:
    """The user's confirmed factors (their own: recovery and admin codes are not factors), oldest first."""
    from sqlalchemy import select

    from ..storage import Factor, db

    return list(db.session.scalars(
        select(Factor).where(Factor.user_id == user.id, Factor.confirmed_at.is_not(None)).order_by(Factor.id)
    ))


def second_step_key(user_id: int) -> str:
    """The throttle key of a user's answers at the second step: wrong codes
    count here whichever method they were for, and its locks grow
    (``login/throttle.py``); an admin's one-time code lifts them
    (``admin/one_time_codes.py``)."""
    return f"2fa:{user_id}"


def has_second_factor(user) -> bool:
    """Whether the user has a confirmed factor of their own (recovery codes and
    admin-issued codes are ways back in, not factors)."""
    from sqlalchemy import select

    from ..storage import Factor, db

    return db.session.scalar(
        select(Factor.id).where(Factor.user_id == user.id, Factor.confirmed_at.is_not(None)).limit(1)
    ) is not None


_LOADED = False
MODULES = ("totp", "sms", "webauthn", "recovery_codes", "admin_codes")


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """Load every factor module (each registers its sign-in methods) and
    register the factor pages: the overview and password confirmation, then
    each factor's enrolment."""
    from .recovery_views import bp as recovery_bp
    from .sms_views import bp as sms_bp
    from .totp_views import bp as totp_bp
    from .views import bp as factors_bp
    from .webauthn_views import bp as webauthn_bp

    load_all()
    idp.register_blueprints(app, factors_bp, totp_bp, sms_bp, webauthn_bp, recovery_bp)


def load_all() -> None:
    """Import every factor module once, so each registers its methods."""
    global _LOADED
    if _LOADED:
        return
    import importlib

    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
    _LOADED = True


def must_have_factor(user) -> bool:
    """Whether ``user`` must have a second factor: everyone must
    (``MFA_REQUIRED``), this user must (``User.mfa_required``), or they signed
    in with an admin-issued code and must set up a new one."""
    return bool(current_idp().settings["MFA_REQUIRED"] or user.mfa_required or user.must_enrol_factor)


def factor_touched(user) -> None:
    """A factor was added, removed or changed: note the time (it voids
    "remember this browser") and clear a pending must-enrol flag when the
    user now has one. The caller commits."""
    user.factors_changed_at = current_idp().clock.now()
    if user.must_enrol_factor and has_second_factor(user):
        user.must_enrol_factor = False
