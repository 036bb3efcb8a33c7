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
- A body over ``MAX_CONTENT_LENGTH`` is 413 before it is read (a chunked
  one, without Content-Length, once one byte over it is read); malformed
  JSON, unknown attributes, wrong types and unsupported filters are SCIM
  errors (400 with their ``scimType``), never a 500.
- One request is one transaction: committed when it succeeds, rolled back
  when it is refused. A unique value taken by a concurrent request is 409
  ``uniqueness``.
- Rows the request writes to the audit log name the client (``via``).
- A SCIM request keeps no cookie: no ``Set-Cookie``, no ``Vary: Cookie``,
  whatever ``?lang=`` says (``browser.cookies.stateless``); the mail it
  causes is in the person's language (``preferredLanguage``), else the
  deployment's default, never the provisioning system's.
- A PUT without ``active`` keeps the stored ``active`` (Okta sends full
  PUTs; a missing attribute must not reactivate or deactivate anyone); a
  PATCH that removes it does remove it.
- What Entra and Okta send beside the RFC is read as they mean it: a
  ``remove`` whose ``value`` lists the members to remove, a ``replace`` of
  ``emails[type eq "work"].value`` that the person lacks (it is added), the
  enterprise ``manager`` as a bare id or without its ``$ref``.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

from flask import Response, current_app, request
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
    Resource,
    ResourceType,
    SCIMException,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    UnauthorizedException,
    UniquenessException,
    User,
)
from scim2_server.conditions import Conditions
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Operation
from scim2_server.service import ScimService
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..browser.cookies import stateless
from ..context import current_idp
from ..storage import db
from . import clients
from .routes import PREFIX
from .store import ClientStorage

if TYPE_CHECKING:
    from ..storage import ProvisioningClient

MAX_RESULTS = 200
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

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
        # what Microsoft Entra sends: a remove whose value lists the members to
        # remove, a replace of emails[type eq "work"].value the person lacks
        policy=ScimPolicy(remove_value_as_filter=ScimPolicy.RemoveValue.apply,
                          unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create),
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


def _body(limit: int) -> bytes:
    """The request's body; one without Content-Length (chunked) is read up to
    one byte more than ``limit``, so that a longer one is refused, not cut."""
    if request.content_length is not None:
        return request.get_data(cache=False)
    if request.environ.get("wsgi.input_terminated"):
        return bytes(request.environ["wsgi.input"].read(limit + 1))
    return b""


def _tolerant(body: bytes) -> bytes:
    """The body with the enterprise ``manager`` read as Entra and Okta mean
    it: Entra's PATCH gives the manager's id alone, and both leave out the
    ``$ref`` RFC 7643 requires; either becomes ``{"value": id, "$ref": "Users/id"}``."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return body  # scim2-server answers invalidSyntax
    if not isinstance(payload, dict):
        return body
    changed = False

    def manager(value: Any) -> Any:
        nonlocal changed
        if isinstance(value, str) and value:
            value = {"value": value}
        if isinstance(value, dict) and isinstance(value.get("value"), str) and value["value"] and "$ref" not in value:
            changed = True
            return {**value, "$ref": f"Users/{value['value']}"}
        return value

    def extension(holder: Any) -> None:
        if isinstance(holder, dict) and isinstance(holder.get(ENTERPRISE), dict) and "manager" in holder[ENTERPRISE]:
            holder[ENTERPRISE]["manager"] = manager(holder[ENTERPRISE]["manager"])

    extension(payload)
    operations = payload.get("Operations")
    for operation in operations if isinstance(operations, list) else []:
        if not isinstance(operation, dict):
            continue
        path = str(operation.get("path") or "").lower()
        if path == f"{ENTERPRISE}:manager".lower():
            operation["value"] = manager(operation.get("value"))
        elif path == ENTERPRISE.lower() and isinstance(operation.get("value"), dict):
            if "manager" in operation["value"]:
                operation["value"]["manager"] = manager(operation["value"]["manager"])
        elif not path:
            extension(operation.get("value"))
    return json.dumps(payload).encode() if changed else body


def _scim_request(path: str, body: bytes) -> ScimRequest:
    method = "GET" if request.method == "HEAD" else request.method  # Flask leaves the body out
    return ScimRequest(method=method, base_url=base_url(), path="/" + path.removesuffix(".scim"),
                       query={key: request.args[key] for key in request.args}, headers=list(request.headers.items()),
                       body=body)


def _authenticate(scim: ScimRequest) -> ProvisioningClient | None:
    """The calling client; None for the one endpoint that needs none.

    Raises:
        UnauthorizedException: no token, or not a live client's.
    """
    try:
        discovery = service().match(scim).operation is Operation.service_provider_config
    except SCIMException:  # no such endpoint, or not this method: 404 or 405, to a client only
        discovery = False
    if discovery:
        return None
    client = clients.authenticate(_bearer())
    if client is None:
        raise UnauthorizedException(detail="A valid provisioning token is required")
    return client


def handle(path: str) -> Response:
    """One SCIM request (``routes.endpoint`` calls it)."""
    stateless()  # no cookie in or out; mail it causes is in its recipient's language
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 256 * 1024
    if (request.content_length or 0) > limit:
        return _error(PayloadTooLargeException(detail=f"The body exceeds {limit} bytes"))
    body = _body(limit)
    if len(body) > limit:
        return _error(PayloadTooLargeException(detail=f"The body exceeds {limit} bytes"))
    scim = _scim_request(path, body)
    try:
        client = _authenticate(scim)
    except UnauthorizedException as exc:
        return _error(exc)
    if client is None:
        return _respond(_Handler(service(), _Nothing()).handle(scim))
    if request.method in ("POST", "PUT", "PATCH"):
        scim.body = _tolerant(body)
    audit.act_as(by=None, via=f"provisioning:{client.name}")
    _seen(client)
    scim.subject = client
    try:
        response = _Handler(service(), ClientStorage(client, service())).handle(scim)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return _error(UniquenessException(detail="A unique value is already taken"))
    except SCIMException as exc:  # the client's error; anything else is ours, and a 500
        db.session.rollback()
        return _error(exc)
    except Exception:
        db.session.rollback()
        raise
    return _respond(response)


class _Handler(ScimHandler):
    """scim2-server's handler, with a PUT that keeps the stored ``active``
    when it leaves it out, and a PUT or PATCH that changes nothing told to the
    storage (a conflict's value was seen again)."""

    def replace_resource(self, resource_type: ResourceType, current: Resource[Any], replacement: Resource[Any],
                         conditions: Conditions) -> Resource[Any]:
        if getattr(replacement, "active", None) is None and getattr(current, "active", None) is not None:
            replacement.active = current.active  # type: ignore[attr-defined]
        result = super().replace_resource(resource_type, current, replacement, conditions)
        self._unchanged(current.id)
        return result

    def patch_resource(self, resource_type: ResourceType, resource_id: str, patch_op: Any,
                       conditions: Conditions) -> Resource[Any]:
        result = super().patch_resource(resource_type, resource_id, patch_op, conditions)
        self._unchanged(resource_id)
        return result

    def _unchanged(self, resource_id: str | None) -> None:
        storage = self.storage
        if isinstance(storage, ClientStorage) and not storage.settled and resource_id is not None:
            storage.settled = True  # once per request (update() may have dealt with it)
            storage.unchanged(resource_id)


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
