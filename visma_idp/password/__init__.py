"""Passwords: hashing (Argon2id), the policy, the live check, the human
check, and the forgot-password, reset and one-time login link pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .. import IdentityProvider


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """Register the password pages (``views.py``) and the live check (``api.py``)."""
    from .api import bp as password_api_bp
    from .views import bp as password_bp

    idp.register_blueprints(app, password_bp, password_api_bp)
