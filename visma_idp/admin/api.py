"""The admin REST API (one-time codes)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin_api", __name__)
