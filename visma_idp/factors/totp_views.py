"""Authenticator app (TOTP): enrol with a QR code, confirm, remove."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("totp", __name__)
