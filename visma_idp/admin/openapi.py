"""The admin API's OpenAPI 3.1 document, ``GET /admin/api/openapi.json``.

The document is generated from the code: each endpoint of the admin API is
declared on a flask-openapi3 ``APIBlueprint`` with pydantic models for its
path, query, body and answers (which also validate the request), and this
module puts the blueprints' paths and schemas together with the bearer
security scheme and our issuer as the server. It is public (like discovery:
it describes, it grants nothing), built once per process, and cached by
clients for an hour.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from flask import Blueprint, jsonify
from flask_openapi3 import APIBlueprint
from flask_openapi3.models import APISpec, Components, Info, SecurityScheme, Server

from ..context import current_idp

bp = Blueprint("admin_openapi", __name__)

DESCRIPTION = """The admin REST API of visma_idp: agreements and their members, invitations,
audit log and one-time codes; relying apps (clients); signing keys; upstream providers; users.

Send `Authorization: Bearer <access token>`: a person's token with the scope `idp:admin` (what
they may do comes from their rights and agreement roles), or a `client_credentials` token with
`idp:admin:agreements`, `idp:admin:clients` or `idp:admin:keys`. Errors are
`{"error", "message"}`; every answer is `Cache-Control: no-store`."""

_blueprints: list[APIBlueprint] = []
_documents: dict[str, dict[str, Any]] = {}  # server -> document


def describe(*blueprints: APIBlueprint) -> None:
    """Add the endpoints of ``blueprints`` to the document."""
    for blueprint in blueprints:
        if blueprint not in _blueprints:
            _blueprints.append(blueprint)
    _documents.clear()


def document(server: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every described blueprint (``server``: the issuer, the base of the paths)."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    tags: list[Any] = []
    for blueprint in _blueprints:
        shared = set(paths) & set(blueprint.paths)
        if shared:  # one path's operations live in one blueprint
            raise RuntimeError(f"admin API paths declared twice: {sorted(shared)}")
        paths.update(blueprint.paths)
        schemas.update(blueprint.components_schemas)
        tags += [tag for tag in blueprint.tags if tag.name not in {t.name for t in tags}]
    spec = APISpec(
        openapi="3.1.0",
        info=Info(title="visma_idp admin API", version=version("visma_idp"), description=DESCRIPTION),
        servers=[Server(url=server)] if server else None,
        paths=paths,
        tags=tags or None,
        components=Components(schemas=schemas, securitySchemes={
            "bearer": SecurityScheme(type="http", scheme="bearer", bearerFormat="JWT",
                                     description="An access token issued by this provider")}),
    )
    return spec.model_dump(mode="json", by_alias=True, exclude_none=True, warnings=False)


@bp.get("/admin/api/openapi.json")
def openapi_json():
    idp = current_idp()
    server = idp.issuer_origin + idp.issuer_path
    if server not in _documents:
        _documents[server] = document(server)
    resp = jsonify(_documents[server])
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return resp
