"""Self-service account: My details, email change, notification settings,
sessions and security activity; the single-use links sent by email, and the
pages that use them: activation, forgot password and reset (``recovery.py``),
and the live password check (``password_check.py``). The password itself
(policy, hashing, the human check) is ``password/``'s, a layer below."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .. import IdentityProvider


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """Register the account's pages, in this order (their routes' order): activation
    (``activation.py``), My details (``views.py``), forgot password and reset
    (``recovery.py``, blueprint ``password``) and the live password check
    (``password_check.py``, blueprint ``password_api``)."""
    from .activation import bp as activation_bp
    from .password_check import bp as password_api_bp
    from .recovery import bp as password_bp
    from .views import bp as account_bp

    idp.register_blueprints(app, activation_bp, account_bp, password_bp, password_api_bp)
