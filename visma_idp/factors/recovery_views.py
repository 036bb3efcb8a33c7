"""Recovery codes: shown once, download, regenerate."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("recovery", __name__)
