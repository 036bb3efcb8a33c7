"""The SCIM endpoints' routes, without the protocol behind them.

scim2-server and scim2-models (pydantic models) cost about 11 MB per process
and a second of start-up: they are loaded by the first SCIM request
(``scim.handle``), so a worker that only signs people in and issues tokens
never holds them.
"""

from __future__ import annotations

from flask import Blueprint, Response

PREFIX = "/scim/v2"

bp = Blueprint("scim", __name__)


@bp.route(PREFIX + "/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], strict_slashes=False)
@bp.route(PREFIX + "/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def endpoint(path: str) -> Response:
    from .scim import handle

    return handle(path)
