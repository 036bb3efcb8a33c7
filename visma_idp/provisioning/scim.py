"""The SCIM 2.0 endpoints (RFC 7643/7644) at ``/scim/v2/``: scim2-server's
protocol (``ScimService``: validation, PATCH, filters, ETags, errors) over
``store.ClientStorage``, behind this one module, so an upgrade of the
fast-moving scim2 packages touches only here.

Rules:
- Every request but ``/ServiceProviderConfig`` carries a provisioning
  client's bearer token (``clients.py``); none or a wrong one is 401 with
  ``WWW-Authenticate: Bearer``, the same answer either way.
- The base URL of every ``Location`` and ``meta.location`` is built from the
  configured issuer, never from the Host header.
- A body over ``MAX_CONTENT_LENGTH`` is 413 before it is read; malformed JSON,
  unknown attributes, wrong types and unsupported filters are SCIM errors
  (400 with their ``scimType``), never a 500.
- One request is one transaction: committed when it succeeds, rolled back
  when it is refused. A unique value taken by a concurrent request is 409
  ``uniqueness``.
- Rows the request writes to the audit log name the client (``via``).
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, request
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    EnterpriseUser,
    ETag,
    External,
    Filter,
    Group,
    Patch,
    PayloadTooLargeException,
    Reference,
    ResourceType,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    UnauthorizedException,
    UniquenessException,
    User,
)
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Operation
from scim2_server.service import ScimService
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..context import current_idp
from ..storage import db
from . import clients
from .store import ClientStorage

if TYPE_CHECKING:
    from ..storage import ProvisioningClient

PREFIX = "/scim/v2"
MAX_RESULTS = 200

bp = Blueprint("scim", __name__)


@cache
def service() -> ScimService:
    """The protocol, built once: Users (with the enterprise extension) and Groups."""
    config = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        authentication_schemes=[AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken, name="Bearer token", primary=True,
            description="The provisioning client's token (visma-idp provisioning create)",
            spec_uri=Reference[External]("https://www.rfc-editor.org/rfc/rfc6750"))],
    )
    provider = ScimProvider(
        models=[User, EnterpriseUser, Group],
        resource_types=[ResourceType.from_resource(User[EnterpriseUser]), ResourceType.from_resource(Group)],
        config=config,
    )
    return ScimService(provider)


def base_url() -> str:
    return current_idp().issuer.rstrip("/") + PREFIX


def _bearer() -> str | None:
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _respond(response: ScimResponse) -> Response:
    body = b"" if response.body is None else json.dumps(response.body).encode()
    headers = dict(response.headers)
    headers.setdefault("Cache-Control", "no-store")
    return Response(body, status=int(response.status), headers=headers)


def _error(exc: Exception) -> Response:
    return _respond(service().error_response(exc))


def _scim_request(path: str, body: bytes) -> ScimRequest:
    return ScimRequest(method=request.method, base_url=base_url(), path="/" + path.removesuffix(".scim"),
                       query={key: request.args[key] for key in request.args}, headers=list(request.headers.items()),
                       body=body)


def _authenticate(scim: ScimRequest) -> ProvisioningClient | None:
    """The calling client; None for the one endpoint that needs none.

    Raises:
        UnauthorizedException: no token, or not a live client's.
    """
    svc = service()
    if svc.match(scim).operation is Operation.service_provider_config:
        return None
    client = clients.authenticate(_bearer())
    if client is None:
        raise UnauthorizedException(detail="A valid provisioning token is required")
    return client


@bp.route(PREFIX, defaults={"path": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@bp.route(PREFIX + "/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def endpoint(path: str) -> Response:
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 256 * 1024
    if (request.content_length or 0) > limit:
        return _error(PayloadTooLargeException(detail=f"The body exceeds {limit} bytes"))
    body = request.get_data(cache=False)
    scim = _scim_request(path, body)
    try:
        client = _authenticate(scim)
    except UnauthorizedException as exc:
        return _error(exc)
    if client is None:
        return _respond(ScimHandler(service(), _Nothing()).handle(scim))
    audit.act_as(by=None, via=f"provisioning:{client.name}")
    _seen(client)
    scim.subject = client
    try:
        response = ScimHandler(service(), ClientStorage(client, service())).handle(scim)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return _error(UniquenessException(detail="A unique value is already taken"))
    except Exception as exc:  # a SCIM error is the client's; anything else is ours, and a 500
        db.session.rollback()
        from scim2_models import SCIMException

        if isinstance(exc, SCIMException):
            return _error(exc)
        raise
    return _respond(response)


def _seen(client: ProvisioningClient) -> None:
    """Note when the client last called, at most once a day (a nightly push
    that changes nothing then writes only this)."""
    now = current_idp().clock.now()
    if client.last_used_at is None or now - client.last_used_at >= 86400:
        client.last_used_at = now


class _Nothing(ClientStorage):
    """The storage of the unauthenticated discovery request: it holds nothing."""

    def __init__(self) -> None:  # noqa: D107 -- no client
        pass

    def get(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover -- never routed here
        raise UnauthorizedException
