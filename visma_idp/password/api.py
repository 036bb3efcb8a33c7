"""The JSON endpoint the password fields call as the user types."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("password_api", __name__)
