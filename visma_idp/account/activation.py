"""Account activation: the Welcome link, setting the first password, resending the link."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("activation", __name__)
