"""The admin pages (one-time codes for locked-out users)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin", __name__)
