"""Self-service account: My details, email change, notification settings,
sessions and security activity; the single-use links sent by email."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .. import IdentityProvider


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """Register the account's pages: activation (``activation.py``) and My details (``views.py``)."""
    from .activation import bp as activation_bp
    from .views import bp as account_bp

    idp.register_blueprints(app, activation_bp, account_bp)
