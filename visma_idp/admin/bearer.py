"""Who calls the admin REST API: the bearer token, its scopes, and the JSON
answers every admin endpoint shares.

Two kinds of caller (:class:`Actor`):

- a *person*: an access token this provider issued to a user (an RFC 9068
  JWT with its row; not a refresh token), not expired or revoked, whose user
  is active, with the scope ``idp:admin``. The scope only lets the token be
  used here: what the person may do comes from their rights
  (``admin/rights.py``: a system admin, or domain rights) and their
  agreement roles (``admin`` of an agreement);
- a *service*: a ``client_credentials`` token (no user). It may do only what
  its scopes say, system-wide: ``idp:admin:agreements`` (agreements, their
  members, invitations and audit log), ``idp:admin:clients`` (relying
  apps) and ``idp:admin:keys`` (signing keys). Only the operator can give a
  client these scopes (``visma-idp clients create --grant-type
  client_credentials --scope "idp:admin:agreements"``), and the client must
  still exist when the token is used.

Rules:
- 401 with ``WWW-Authenticate: Bearer`` for a missing or unusable token;
  403 ``insufficient_scope`` (naming the scope) for a token without an admin
  scope;
- errors are ``{"error", "message"}`` (``message`` translated by
  Accept-Language), some with ``field``; every answer is
  ``Cache-Control: no-store``;
- a body or query that does not match the OpenAPI schema is 400
  ``invalid_request`` naming the ``field`` (:func:`validation_error`, the
  ``validation_error_callback`` flask-openapi3 calls);
- the endpoints take no cookies into account: a bearer token is never sent
  by the browser on its own, so they are exempt from CSRF and the Origin check.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from flask import g, jsonify, request
from flask_babel import gettext as _
from pydantic import BaseModel, ValidationError

from .. import audit
from ..context import current_idp
from ..oidc.server import find_token
from ..storage import User, queries

SCOPE = "idp:admin"
AGREEMENTS = "idp:admin:agreements"
CLIENTS = "idp:admin:clients"
KEYS = "idp:admin:keys"
SERVICE_SCOPES = (AGREEMENTS, CLIENTS, KEYS)
REALM = "visma_idp admin"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class Problem(BaseModel):
    """An error answer."""

    error: str
    message: str
    field: str | None = None
    detail: str | None = None


def json_answer(status: int, body: dict, headers: dict[str, str] | None = None):
    resp = jsonify(body)
    resp.status_code = status
    resp.headers.update(NO_STORE)
    if headers:
        resp.headers.update(headers)
    return resp


def error(status: int, code: str, message: str, **extra: Any):
    return json_answer(status, {"error": code, "message": message, **{k: v for k, v in extra.items() if v}})


def bearer_error(status: int, code: str | None, message: str, *, scope: str | None = None):
    value = f'Bearer realm="{REALM}"'
    if code:
        value += f', error="{code}"'
    if scope:
        value += f', scope="{scope}"'
    return json_answer(status, {"error": code or "unauthorized", "message": message}, {"WWW-Authenticate": value})


@dataclass(frozen=True)
class Actor:
    """The caller: a person (``user``) or a service (``user`` None), the
    client its token was issued to and the token's scopes."""

    user: User | None
    client_id: str
    scopes: frozenset[str]
    acr: str | None = None  # a person's token: the level its sign-in reached

    @cached_property
    def _system_admin(self) -> bool:
        from . import rights

        return self.user is not None and rights.is_system_admin(self.user)

    def system(self, scope: str) -> bool:
        """Whether the caller may act on every agreement / client / key
        (``scope`` one of :data:`SERVICE_SCOPES`): a system admin (their right
        read once per request), or a service whose token carries ``scope``."""
        if self.user is not None:
            return self._system_admin
        return scope in self.scopes


def _token() -> tuple[dict | None, Any]:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer " or not header[7:].strip():
        return None, bearer_error(401, None, _("Send an access token: Authorization: Bearer <token>."))
    info = find_token(current_idp(), header[7:].strip(), "access_token")
    if info is None or info.get("token_type") != "Bearer":
        return None, bearer_error(401, "invalid_token", _("The access token is invalid or expired."))
    return info, None


def _invalid():
    return bearer_error(401, "invalid_token", _("The access token is invalid or expired."))


def _person(info: dict):
    """(user, None) for a person's usable admin token ``info``, else (None, the error answer)."""
    row = info.get("_row")
    if (row is None or row.kind != "access" or row.user is None or row.user.status != "active"
            or row.user.sub != info.get("sub")):
        return None, _invalid()
    if SCOPE not in str(info.get("scope") or "").split():
        return None, bearer_error(403, "insufficient_scope",
                                  _("The access token lacks the scope %(scope)s.", scope=SCOPE), scope=SCOPE)
    return row.user, None


def token_user():
    """(user, None) for a person's usable admin token, else (None, the error answer)."""
    info, refused = _token()
    if refused is not None:
        return None, refused
    return _person(info)


def actor():
    """(actor, None) for a person's admin token or a service's token with an
    admin scope, else (None, the error answer)."""
    info, refused = _token()
    if refused is not None:
        return None, refused
    scopes = frozenset(str(info.get("scope") or "").split())
    row = info.get("_row")
    if row is None:  # client_credentials: no row, sub is the client
        if info.get("sub") != info.get("client_id") or queries.client_by_id(str(info.get("client_id"))) is None:
            return None, _invalid()
        if not scopes & set(SERVICE_SCOPES):
            return None, bearer_error(403, "insufficient_scope", _("The access token lacks the scope %(scope)s.",
                                                                   scope=" or ".join(SERVICE_SCOPES)),
                                      scope=" ".join(SERVICE_SCOPES))
        return Actor(None, str(info["client_id"]), scopes), None
    user, refused = _person(info)
    if refused is not None:
        return None, refused
    return Actor(user, str(info.get("client_id")), scopes, info.get("acr")), None


def require_actor():
    """A ``before_request`` of the admin API's blueprints: the caller in
    ``g.admin_actor``, or the refusal (which ends the request)."""
    found, refused = actor()
    if refused is not None:
        return refused
    for key in request.args:  # each query parameter is one value: a repeated one is not guessed at
        if len(request.args.getlist(key)) > 1:
            return error(400, "invalid_request", _("The field %(field)s is missing or not valid.", field=key[:64]),
                         field=key[:64], detail="given more than once")
    g.admin_actor = found
    audit.act_as(by=found.user.id if found.user is not None else None, via_client=found.client_id)
    return None


def current_actor() -> Actor:
    return g.admin_actor


def validation_error(exc: ValidationError):
    """A body, query or path that does not match the schema: 400 naming the first wrong field."""
    errors = exc.errors()
    first: dict[str, Any] = dict(errors[0]) if errors else {}
    field = ".".join(str(part) for part in first.get("loc", ())) or None
    return error(400, "invalid_request", _("The field %(field)s is missing or not valid.", field=field or "?"),
                 field=field, detail=str(first.get("msg") or "")[:200] or None)
