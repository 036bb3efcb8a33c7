"""The dev outbox page (demo mode only)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dev_outbox", __name__)
