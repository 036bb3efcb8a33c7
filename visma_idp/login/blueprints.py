"""The sign-in's blueprints: ``login`` (the email and password pages, the ways
in, the sign-in's own address ``/authorize/continue``, sign-out, home) and
``second_step`` (``/login/verify``). The step and way modules add their
routes to them."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("login", __name__)
second_step_bp = Blueprint("second_step", __name__)
