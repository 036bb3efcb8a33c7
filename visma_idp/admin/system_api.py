"""The admin REST API for the system: relying apps (clients) and signing keys.

Who (``admin/bearer.py``): a system admin (a person's token with
``idp:admin``), or a service whose ``client_credentials`` token carries
``idp:admin:clients`` (the clients) or ``idp:admin:keys`` (the keys);
anyone else gets 403 ``forbidden``.

- ``GET /admin/api/clients``; ``POST /admin/api/clients`` registers one (the
  generated secret is in this answer only);
- ``GET /admin/api/clients/{client_id}``; ``PATCH`` changes its name,
  redirect URIs, post-logout redirect URIs and back-channel logout URI;
- ``POST /admin/api/clients/{client_id}/secret``: a new secret (in this
  answer only; the old one stops working);
- ``GET /admin/api/keys``: the signing keys (public parts, states);
  ``POST /admin/api/keys/rotate``: a new key per algorithm now; the old ones
  stay published until the tokens they signed have expired.

Rules:
- a client that holds an ``idp:admin:*`` service scope is the operator's:
  the API neither registers one, nor changes it, nor rotates its secret
  (403), so a service allowed to manage clients cannot make itself, or take
  over, a client with more power;
- the values are checked as ``visma-idp clients create`` checks them
  (``oidc/registration.py``): a refusal is 400 ``invalid_request`` with the
  reason in ``detail``; a taken client_id is 409;
- the changes are audited by ``oidc/``, naming the admin or service.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask_babel import gettext as _
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from ..context import current_idp
from ..errors import InvalidInput
from ..oidc import registration
from ..storage import Client, SigningKey, db
from . import bearer
from .bearer import CLIENTS, KEYS, SERVICE_SCOPES, Problem, current_actor, error, json_answer

TAG = Tag(name="system", description="Relying apps (clients) and signing keys")
bp = APIBlueprint("admin_system_api", __name__, abp_tags=[TAG], abp_security=[{"bearer": []}])
bp.before_request(bearer.require_actor)

ERRORS: dict[Any, Any] = {400: Problem, 401: Problem, 403: Problem}
Uri = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[\x21-\x7e]+$")]
Word = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
Text = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$")]


class ClientPath(BaseModel):
    client_id: str = Field(max_length=128, pattern=r"^[\x21-\x7e]+$")


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client_id: Word
    name: Text | None = Field(None, max_length=200)
    redirect_uris: list[Uri] = Field([], max_length=50)
    post_logout_redirect_uris: list[Uri] = Field([], max_length=50)
    grant_types: list[Literal["authorization_code", "refresh_token", "client_credentials"]] = Field(
        ["authorization_code", "refresh_token"], min_length=1, max_length=3)
    scope: Text = Field("openid profile email", min_length=1, max_length=1000)
    public: bool = False
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post"] | None = None
    skip_consent: bool = False
    requires_agreement: bool = False
    backchannel_logout_uri: Uri | None = None
    backchannel_logout_session_required: bool = False


class ClientPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text | None = Field(None, min_length=1, max_length=200)
    redirect_uris: list[Uri] | None = Field(None, max_length=50)
    post_logout_redirect_uris: list[Uri] | None = Field(None, max_length=50)
    backchannel_logout_uri: str | None = Field(None, max_length=2000, pattern=r"^[\x21-\x7e]*$",
                                               description='"" or null removes it')
    backchannel_logout_session_required: bool | None = None


class ClientOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    client_id: str
    client_secret: str | None = Field(None, description="Only in the answer that made it")
    redirect_uris: list[str]
    backchannel_logout_uri: str | None


class ClientList(BaseModel):
    clients: list[ClientOut]


class SecretOut(BaseModel):
    client_id: str
    client_secret: str


class KeyOut(BaseModel):
    kid: str
    alg: str
    state: Literal["active", "retired", "expired"] = Field(
        description="retired: still published for the tokens it signed; expired: no longer published")
    created_at: int
    retired_at: int | None
    public_jwk: dict


class KeyList(BaseModel):
    keys: list[KeyOut]


def _forbidden():
    return error(403, "forbidden", _("You may not manage this."))


def _operators(client: Client) -> bool:
    """A client with an admin service scope: only the operator's command line touches it."""
    return bool(set(str(client.scope or "").split()) & set(SERVICE_SCOPES))


def _refused(exc: InvalidInput):
    db.session.rollback()
    return error(400, "invalid_request", _("The app could not be saved; the detail says why."), detail=str(exc))


def _client(path: ClientPath):
    """The client of the URL, when the caller may manage it; else (None, the refusal)."""
    if not current_actor().system(CLIENTS):
        return None, _forbidden()
    client = registration.find_client(path.client_id)
    if client is None:
        return None, error(404, "not_found", _("There is no app with the id %(client)s.", client=path.client_id))
    if _operators(client):
        return None, error(403, "forbidden", _("This app has admin rights: only the operator changes it, "
                                               "with the command line."))
    return client, None


@bp.get("/admin/api/clients", summary="The registered apps (never their secrets)",
        responses={200: ClientList, **ERRORS})
def list_clients():
    if not current_actor().system(CLIENTS):
        return _forbidden()
    return json_answer(200, {"clients": [registration.client_as_dict(c) for c in registration.list_clients()]})


@bp.post("/admin/api/clients", summary="Register an app (a generated secret is in this answer only)",
         responses={201: ClientOut, 409: Problem, **ERRORS})
def create_client(body: ClientIn):
    if not current_actor().system(CLIENTS):
        return _forbidden()
    if set(body.scope.split()) & set(SERVICE_SCOPES):
        return error(403, "forbidden", _("Only the operator registers apps with admin rights, with the command "
                                         "line."), field="scope")
    if registration.find_client(body.client_id) is not None:
        return error(409, "conflict", _("An app with this id exists already."), field="client_id")
    try:
        created = registration.create_client(
            body.client_id, name=body.name, redirect_uris=body.redirect_uris,
            post_logout_redirect_uris=body.post_logout_redirect_uris, grant_types=[str(g) for g in body.grant_types],
            scope=body.scope, public=body.public, token_endpoint_auth_method=body.token_endpoint_auth_method,
            skip_consent=body.skip_consent, requires_agreement=body.requires_agreement,
            backchannel_logout_uri=body.backchannel_logout_uri,
            backchannel_logout_session_required=body.backchannel_logout_session_required)
    except InvalidInput as exc:
        return _refused(exc)
    db.session.commit()
    return json_answer(201, registration.client_as_dict(created.client, created.secret))


@bp.get("/admin/api/clients/<client_id>", summary="One app", responses={200: ClientOut, 404: Problem, **ERRORS})
def get_client(path: ClientPath):
    client, refused = _client(path)
    if refused is not None:
        return refused
    return json_answer(200, registration.client_as_dict(client))


@bp.patch("/admin/api/clients/<client_id>", summary="Change an app's name and URIs",
          responses={200: ClientOut, 404: Problem, **ERRORS})
def update_client(path: ClientPath, body: ClientPatch):
    client, refused = _client(path)
    if refused is not None:
        return refused
    try:
        registration.update_client(
            client, name=body.name, redirect_uris=body.redirect_uris,
            post_logout_redirect_uris=body.post_logout_redirect_uris,
            backchannel_logout_uri=((body.backchannel_logout_uri or None)
                                    if "backchannel_logout_uri" in body.model_fields_set else registration.UNSET),
            backchannel_logout_session_required=body.backchannel_logout_session_required)
    except InvalidInput as exc:
        return _refused(exc)
    db.session.commit()
    return json_answer(200, registration.client_as_dict(client))


@bp.post("/admin/api/clients/<client_id>/secret", summary="A new secret (in this answer only; the old one stops)",
         responses={200: SecretOut, 404: Problem, **ERRORS})
def rotate_secret(path: ClientPath):
    client, refused = _client(path)
    if refused is not None:
        return refused
    try:
        secret = registration.rotate_secret(client)
    except InvalidInput as exc:
        return _refused(exc)
    db.session.commit()
    return json_answer(200, {"client_id": client.client_id, "client_secret": secret})


def _key_out(row: SigningKey, now: int, window: int) -> dict:
    state = "active" if row.retired_at is None else "retired" if row.retired_at + window > now else "expired"
    return {"kid": row.kid, "alg": row.alg, "state": state, "created_at": row.created_at,
            "retired_at": row.retired_at, "public_jwk": row.public_jwk}


@bp.get("/admin/api/keys", summary="The signing keys (public parts)", responses={200: KeyList, **ERRORS})
def list_keys():
    if not current_actor().system(KEYS):
        return _forbidden()
    idp = current_idp()
    now, window = idp.clock.now(), idp.keys.publish_window()
    return json_answer(200, {"keys": [_key_out(row, now, window) for row in idp.keys.list_all()]})


@bp.post("/admin/api/keys/rotate", summary="A new signing key per algorithm, now", responses={201: KeyList, **ERRORS})
def rotate_keys():
    if not current_actor().system(KEYS):
        return _forbidden()
    idp = current_idp()
    fresh = idp.keys.rotate_audited()
    now, window = idp.clock.now(), idp.keys.publish_window()
    return json_answer(201, {"keys": [_key_out(row, now, window) for row in fresh]})
