"""Forgot password: the request form with its human check, the reset and one-time login links."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("password", __name__)


@bp.get("/password/forgot")
def forgot():
    return "Forgot password"
