"""Security keys and passkeys: register, name, remove; passwordless sign-in with a passkey."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("webauthn", __name__)
