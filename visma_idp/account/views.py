"""My details, profile, security settings, sessions and activity."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("account", __name__)


@bp.get("/account")
def details():
    return "My details"
