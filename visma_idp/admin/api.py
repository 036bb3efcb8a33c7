"""The admin REST API: one-time codes, invitations and upstream providers.

``POST /admin/api/users`` with ``{"email", "name", "given_name"?, "family_name"?,
"locale"?}`` invites a user (a pending account and the Welcome email with its
activation link; the token's user needs ``invite_users`` for the new
address's domain) and answers ``201 {"sub", "email", "status": "pending"}``;
409 when the address already has an account.

``POST /admin/api/one-time-codes`` with ``{"email": "kari@example.no"}`` and
``Authorization: Bearer <access token>`` answers ``201 {"code", "expires_at",
"email"}`` (``expires_at`` in seconds since the epoch; the code is shown
this once).

Rules:
- the token is an access token this provider issued to a *user* (an RFC 9068
  JWT with its row; not a refresh token, not a client_credentials token), not
  expired or revoked, whose user is active; it must carry the scope
  ``idp:admin``. Only a client registered with that scope (``visma-idp
  clients create --scope "openid idp:admin" ...``) can get such a token, and
  the scope alone grants nothing: the token's user must hold
  ``issue_one_time_codes`` for the target's domain (``admin/rights.py``);
- 401 with ``WWW-Authenticate: Bearer`` for a missing or unusable token,
  403 ``insufficient_scope`` without the scope, 400 for a body that is not a
  JSON object with an ``email`` string, 400 ``bad_email`` for a string that
  is not exactly one address (``addresses.py``: no display names,
  lists, quotes, comments or control characters; the right is compared with
  the parsed domain), and the refusals of
  ``one_time_codes.py`` (403 no right / outside the domains / own
  account, 404 no such user in the admin's domain, 409 account cannot sign
  in), each audited;
- errors are ``{"error", "message"}`` (``message`` translated by
  Accept-Language); every answer is ``Cache-Control: no-store``;
- the endpoints take no cookies into account, so they are exempt from the CSRF
  token (``admin.init_app``) and the Origin check (``security._CROSS_ORIGIN_POST``; a bearer
  token is never sent by the browser on its own).

Upstream OpenID providers (the admin mirror of ``visma-idp upstreams``,
``federation/upstreams.py``):

``GET /admin/api/upstreams`` answers ``200 {"upstreams": [...]}``;
``POST /admin/api/upstreams`` with the CLI's options as JSON (``name``,
``display_name``, ``issuer``, ``discovery_url``, ``client_id``,
``client_secret`` or ``"private_key_jwt": true``, ``client_secret_post``,
``scopes``, ``acr_values``, ``claim_map`` (keys sub, email, email_verified,
name), ``domains``, ``tenants``, ``id_token_alg``, ``acr``, ``trust_amr``,
``create_accounts``, ``link_by_proof`` (default true), ``trust_email``,
``national_id_claim``, ``test_environment``) adds one (its discovery document
is fetched at once) and answers ``201`` with it (never its secret; a
``private_key_jwt`` upstream's ``jwks_uri`` is the URL to register there);
``DELETE /admin/api/upstreams/<name>`` answers ``204``.

Rules:
- the token's user needs ``manage_upstreams`` (``admin/rights.py``) for
  *every* domain of the upstream (exact match): they add, see and remove only
  such upstreams; without the right for any domain every call is 403;
- an upstream with no domains (a national eID, a button-only upstream) or
  with a ``national_id_claim`` is the operator's: the API refuses it with 403
  ``forbidden`` (it is added and removed with the CLI), and does not list it;
- every field is type-checked: a wrong type, a value too long for its column,
  a control character or an unknown field is 400 ``invalid_request`` with
  ``field``; outside development (a loopback issuer) the issuer and discovery
  URL must be https on a public host name or address, and so must the
  document's token, key set and userinfo endpoints (a domain admin must not
  make us fetch from our own network);
- the service's refusals (a bad value, a taken domain, an upstream that does
  not answer) are 400 ``invalid_request`` with the service's English reason
  as ``detail``; a taken name is 409 ``conflict``; an unknown name is 404;
- the service audits ``upstream_added`` and ``upstream_removed``; every
  refusal here is audited as ``upstream_api_refused`` with the reason.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal
from urllib.parse import urlsplit

from flask import Response, request
from flask_babel import gettext as _
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from .. import addresses, audit
from ..config import LOCALES, is_loopback_issuer
from ..context import current_idp
from ..errors import InvalidInput
from ..federation import upstreams
from ..storage import Upstream, User, db
from . import bearer, one_time_codes, rights
from .bearer import Problem

TAG = Tag(name="users and upstreams", description="Users, one-time codes and upstream providers")
bp = APIBlueprint("admin_api", __name__, abp_tags=[TAG], abp_security=[{"bearer": []}])
ERRORS: dict[Any, Any] = {400: Problem, 401: Problem, 403: Problem}

SCOPE = bearer.SCOPE
MAX_BODY = 4096
NO_STORE = bearer.NO_STORE
_json = bearer.json_answer
_error = bearer.error
_token_user = bearer.token_user


def _checked_here(**models: type[BaseModel]):
    """The view checks its request itself (its rules and audit rows predate
    the schema): ``models`` (``body=``, ``path=``) are for the document only."""

    def mark(view):
        view.__delay_validate_request__ = True  # flask-openapi3 then passes the URL's values only
        view.__annotations__ = {**view.__annotations__, **models}
        return view

    return mark


class OneTimeCodeIn(BaseModel):
    email: str = Field(max_length=320, description="The user's email address")


class OneTimeCodeOut(BaseModel):
    code: str
    expires_at: int = Field(description="Seconds since the epoch")
    email: str


class UserIn(BaseModel):
    email: str = Field(max_length=320)
    name: str = Field(min_length=1, max_length=200)
    given_name: str | None = Field(None, max_length=100)
    family_name: str | None = Field(None, max_length=100)
    locale: Literal[LOCALES] | None = None  # type: ignore[valid-type]


class UserOut(BaseModel):
    sub: str
    email: str
    status: str


class UpstreamIn(BaseModel):
    """The options of ``visma-idp upstreams add``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    client_id: str = Field(min_length=1, max_length=255)
    display_name: str | None = Field(None, max_length=100)
    issuer: str | None = Field(None, max_length=500)
    discovery_url: str | None = Field(None, max_length=500)
    client_secret: str | None = Field(None, max_length=1000)
    private_key_jwt: bool = False
    client_secret_post: bool = False
    scopes: list[str] = Field([], max_length=50)
    acr_values: list[str] = Field([], max_length=50)
    claim_map: dict[Literal["sub", "email", "email_verified", "name"], str] = {}
    domains: list[str] = Field([], max_length=50)
    tenants: list[str] = Field([], max_length=50)
    id_token_alg: str | None = Field(None, max_length=16)
    acr: str | None = Field(None, max_length=100)
    trust_amr: bool = False
    create_accounts: bool = False
    link_by_proof: bool = True
    trust_email: bool = False
    national_id_claim: str | None = Field(None, max_length=64)
    test_environment: bool = False


class UpstreamOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str


class UpstreamList(BaseModel):
    upstreams: list[UpstreamOut]


class UpstreamPath(BaseModel):
    name: str = Field(max_length=64)


def _admin_request(limit: int = MAX_BODY):
    """The admin behind the bearer token and the JSON body (None when the
    body is not JSON): ``(admin, body, None)``, or ``(None, None, the error
    response)`` for a bad token or a body over ``limit``."""
    admin, refused = _token_user()
    if refused is not None:
        return None, None, refused
    if request.content_length is not None and request.content_length > limit:
        return None, None, _error(400, "invalid_request", _("The request is too large."))
    body = request.get_json(silent=True) if request.mimetype == "application/json" else None
    return admin, body, None


@bp.post("/admin/api/one-time-codes", summary="A one-time code for a user who lost their second factor",
         responses={201: OneTimeCodeOut, 404: Problem, 409: Problem, **ERRORS})
@_checked_here(body=OneTimeCodeIn)
def create_one_time_code():
    admin, sent, refused = _admin_request()
    if refused is not None:
        return refused
    email = sent.get("email") if isinstance(sent, dict) else None
    if not isinstance(email, str):
        return _error(400, "invalid_request",
                      _('Send a JSON object with the user\'s email address: {"email": "name@example.no"}.'))
    try:
        issued = one_time_codes.issue_for_email(admin, email, via="api")
    except one_time_codes.IssueRefused as exc:
        db.session.commit()  # the refusal's audit row
        return _error(exc.status, exc.reason, exc.message)
    db.session.commit()
    return _json(201, {"code": issued.code, "expires_at": issued.expires_at, "email": issued.target.email})


INVITE_FIELDS = ("given_name", "family_name", "locale")


@bp.post("/admin/api/users", summary="Invite a user (a pending account and the Welcome email)",
         responses={201: UserOut, 409: Problem, **ERRORS})
@_checked_here(body=UserIn)
def invite_user():
    from .. import audit
    from . import rights
    from .service import InvalidInput
    from .service import invite_user as invite

    admin, sent, refused = _admin_request()
    if refused is not None:
        return refused
    email = sent.get("email") if isinstance(sent, dict) else None
    name = sent.get("name") if isinstance(sent, dict) else None
    extra = {k: sent.get(k) for k in INVITE_FIELDS if isinstance(sent, dict) and sent.get(k) is not None}
    if (not isinstance(email, str) or not isinstance(name, str) or not 0 < len(name) <= 200
            or any(not isinstance(v, str) or len(v) > 100 for v in extra.values())
            or extra.get("locale", "en") not in LOCALES):
        return _error(400, "invalid_request", _('Send a JSON object with the new user\'s email address and name: '
                                                '{"email": "name@example.no", "name": "Kari Nordmann"}.'))
    try:
        address = addresses.parse(email)
    except addresses.AddressError as exc:
        audit.record("user_invite_refused", outcome="failure", user_id=admin.id, subject=addresses.as_typed(email),
                     details={"reason": "bad_email", "address": exc.reason})
        db.session.commit()
        return _error(400, "bad_email", addresses.explain(exc, _("Enter the new user's email address, like "
                                                                  "name@example.no.")))
    # the parsed domain (IDNA, lower-case) is what the right is compared with
    if not rights.covers(admin, address.email, rights.INVITE_USERS):
        audit.record("user_invite_refused", outcome="failure", user_id=admin.id, subject=address.email,
                     details={"reason": "no_right_for_domain"})
        db.session.commit()
        return _error(403, "forbidden", _("You may not invite users with this email address."))
    try:
        user = invite(address.email, name, **extra)
    except InvalidInput as exc:
        db.session.rollback()
        exists = "already exists" in str(exc)
        return _error(409 if exists else 400, "conflict" if exists else "invalid_request",
                      _("A user with this email address already exists.") if exists else
                      _("Enter your email address, like name@example.com."))
    audit.record("user_invited", user_id=user.id, subject=user.email, details={"by": admin.id, "via": "api"})
    db.session.commit()
    return _json(201, {"sub": user.sub, "email": user.email, "status": user.status})


# -- upstream providers ---------------------------------------------------------------

UPSTREAMS_BODY = 16384
MAX_ITEMS = 50
CLAIMS = ("sub", "email", "email_verified", "name")
# field -> longest value (the column's size); required ones must not be empty
_REQUIRED_TEXT = {"name": 64, "client_id": 255}
_TEXT = {"display_name": 100, "id_token_alg": 16}
_NULLABLE_TEXT = {"issuer": 500, "discovery_url": 500, "client_secret": 1000, "acr": 100, "national_id_claim": 64}
_FLAGS = ("private_key_jwt", "client_secret_post", "trust_amr", "create_accounts", "link_by_proof",
          "trust_email", "test_environment")
_LISTS = {"scopes": 100, "acr_values": 100, "domains": 253, "tenants": 36}  # longest item
FIELDS = frozenset([*_REQUIRED_TEXT, *_TEXT, *_NULLABLE_TEXT, *_FLAGS, *_LISTS, "claim_map"])
# what our server fetches itself (the authorization endpoint is the browser's)
_FETCHED_ENDPOINTS = ("token_endpoint", "jwks_uri", "userinfo_endpoint")


class _BadField(Exception):
    def __init__(self, field: str, detail: str | None = None):
        super().__init__(field)
        self.field = field
        self.detail = detail


def _text(value: object, longest: int, *, token: bool = False) -> bool:
    """A string of 1..``longest`` characters without control characters (nor spaces for a token)."""
    return (isinstance(value, str) and 0 < len(value) <= longest
            and not any(ord(c) < 32 or ord(c) == 127 or (token and c.isspace()) for c in value))


def _upstream_spec(body: dict[str, Any]) -> upstreams.UpstreamSpec:
    """The upstream a JSON body describes, type-checked.

    Raises:
        _BadField: an unknown field, or a value of the wrong type or size.
    """
    for field in body:
        if field not in FIELDS:
            raise _BadField(field[:64], "unknown field")
    values: dict[str, Any] = {}
    for field, longest in _REQUIRED_TEXT.items():
        if not _text(body.get(field), longest):
            raise _BadField(field, f"required: a string of 1 to {longest} characters")
        values[field] = body[field]
    for field, longest in {**_TEXT, **_NULLABLE_TEXT}.items():
        if field not in body or (body[field] is None and field in _NULLABLE_TEXT):
            continue
        if not _text(body[field], longest):
            raise _BadField(field, f"a string of 1 to {longest} characters")
        values[field] = body[field]
    for field in _FLAGS:
        if field in body and not isinstance(body[field], bool):
            raise _BadField(field, "true or false")
    for field, longest in _LISTS.items():
        items = body.get(field, [])
        if not isinstance(items, list) or len(items) > MAX_ITEMS or not all(
                _text(item, longest, token=True) for item in items):
            raise _BadField(field, f"a list of at most {MAX_ITEMS} strings without spaces")
        values[field] = tuple(items)
    claim_map = body.get("claim_map", {})
    if not isinstance(claim_map, dict) or not all(
            key in CLAIMS and _text(value, 100, token=True) for key, value in claim_map.items()):
        raise _BadField("claim_map", f"an object mapping {', '.join(CLAIMS)} to the upstream's claim names")
    if body.get("private_key_jwt") and body.get("client_secret_post"):
        raise _BadField("client_secret_post", "not with private_key_jwt")
    try:  # the right is compared with the domains as the service will store them
        values["domains"] = tuple(sorted({rights.normalise_domain(d) for d in values["domains"]}))
    except InvalidInput as exc:
        raise _BadField("domains", str(exc)) from None
    return upstreams.UpstreamSpec(
        **values, claim_map=dict(claim_map),
        private_key_jwt=body.get("private_key_jwt", False),
        auth_method="client_secret_post" if body.get("client_secret_post") else None,
        trust_amr=body.get("trust_amr", False), create_accounts=body.get("create_accounts", False),
        link_by_proof=body.get("link_by_proof", True), trust_email=body.get("trust_email", False),
        test_environment=body.get("test_environment", False),
    )


def _public_url(url: str) -> bool:
    """Whether the server may fetch ``url`` for a domain admin: always in
    development (a loopback issuer), else only https to a public host."""
    if is_loopback_issuer(current_idp().issuer):
        return True
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme != "https" or "." not in host or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return True  # a host name (what it resolves to is the service's concern)


def _refuse(admin: User, action: str, status: int, error: str, message: str, reason: str,
            upstream: object = None, **details: Any):
    """Audit a refusal (``upstream_api_refused``), commit, and answer it."""
    name = upstream[:64] if isinstance(upstream, str) else None
    db.session.rollback()  # nothing half-done stays
    audit.record("upstream_api_refused", outcome="failure", user_id=admin.id, subject=name,
                 details={"action": action, "reason": reason, **details})
    db.session.commit()
    body: dict[str, Any] = {"error": error, "message": message}
    for key in ("field", "detail"):
        if details.get(key):
            body[key] = details[key]
    return _json(status, body)


def _operators_only(admin: User, action: str, upstream: object, reason: str):
    return _refuse(admin, action, 403, "forbidden",
                   _("Upstream providers without email domains, such as national eID, are managed by the operator "
                     "with the command line (visma-idp upstreams)."), reason, upstream)


def _mine(admin: User, row: Upstream) -> bool:
    return not row.national and rights.covers_all(admin, row.domains or [], rights.MANAGE_UPSTREAMS)


def _no_right(admin: User, action: str, upstream: object = None):
    return _refuse(admin, action, 403, "forbidden", _("You do not have the right to manage upstream providers."),
                   "no_right", upstream)


@bp.get("/admin/api/upstreams", summary="The upstream providers the caller manages",
        responses={200: UpstreamList, **ERRORS})
@_checked_here()
def list_upstreams():
    admin, refused = _token_user()
    if refused is not None:
        return refused
    if not rights.holds(admin, rights.MANAGE_UPSTREAMS):
        return _no_right(admin, "list")
    return _json(200, {"upstreams": [upstreams.as_dict(row) for row in upstreams.all_upstreams() if _mine(admin, row)]})


@bp.post("/admin/api/upstreams", summary="Add an upstream provider (its discovery document is fetched at once)",
         responses={201: UpstreamOut, 409: Problem, **ERRORS})
@_checked_here(body=UpstreamIn)
def create_upstream():
    admin, sent, refused = _admin_request(UPSTREAMS_BODY)
    if refused is not None:
        return refused
    name = sent.get("name") if isinstance(sent, dict) else None
    if not rights.holds(admin, rights.MANAGE_UPSTREAMS):
        return _no_right(admin, "add", name)
    if not isinstance(sent, dict):
        return _refuse(admin, "add", 400, "invalid_request",
                       _("Send a JSON object with the upstream provider's settings."), "bad_body")
    try:
        spec = _upstream_spec(sent)
    except _BadField as exc:
        return _refuse(admin, "add", 400, "invalid_request",
                       _("The field %(field)s is missing or not valid.", field=exc.field), "bad_field", name,
                       field=exc.field, detail=exc.detail)
    if spec.national_id_claim:
        return _operators_only(admin, "add", name, "national")
    if not spec.domains:
        return _operators_only(admin, "add", name, "no_domains")
    if not rights.covers_all(admin, spec.domains, rights.MANAGE_UPSTREAMS):
        return _refuse(admin, "add", 403, "forbidden",
                       _("You may not manage upstream providers for these email domains."), "outside_domains",
                       name, domains=list(spec.domains))
    for field in ("issuer", "discovery_url"):
        url = getattr(spec, field)
        if url is not None and not _public_url(url.replace("{tenantid}", "tenant")):
            return _refuse(admin, "add", 400, "invalid_request",
                           _("The field %(field)s is missing or not valid.", field=field), "bad_field", name,
                           field=field, detail="an https URL of a public host")
    taken = _("An upstream provider with this name exists already.")
    if upstreams.by_name(spec.name) is not None:
        return _refuse(admin, "add", 409, "conflict", taken, "name_taken", name)
    invalid = _("The upstream provider could not be added; the detail says why.")
    try:
        row = upstreams.add(spec)
    except InvalidInput as exc:
        return _refuse(admin, "add", 400, "invalid_request", invalid, "invalid", name, detail=str(exc))
    except upstreams.UpstreamUnavailable as exc:  # should the service let one through: still a 400
        return _refuse(admin, "add", 400, "invalid_request", invalid, "unavailable", name, detail=exc.reason)
    except IntegrityError:  # the same name, added at the same moment
        return _refuse(admin, "add", 409, "conflict", taken, "name_taken", name)
    doc = row.metadata_doc or {}
    for key in _FETCHED_ENDPOINTS:
        if isinstance(doc.get(key), str) and not _public_url(doc[key]):
            return _refuse(admin, "add", 400, "invalid_request", invalid, "invalid", name,
                           detail=f"the discovery document's {key} is not an https URL of a public host")
    try:
        db.session.commit()
    except IntegrityError:
        return _refuse(admin, "add", 409, "conflict", taken, "name_taken", name)
    return _json(201, upstreams.as_dict(row))


@bp.delete("/admin/api/upstreams/<name>", summary="Remove an upstream provider",
           responses={204: None, 404: Problem, **ERRORS})
@_checked_here(path=UpstreamPath)
def remove_upstream(name: str):
    admin, refused = _token_user()
    if refused is not None:
        return refused
    if not rights.holds(admin, rights.MANAGE_UPSTREAMS):
        return _no_right(admin, "remove", name)
    row = upstreams.by_name(name)
    if row is None:
        return _refuse(admin, "remove", 404, "not_found", _("There is no upstream provider with this name."),
                       "not_found", name)
    if row.national or not row.domains:
        return _operators_only(admin, "remove", name, "national" if row.national else "no_domains")
    if not _mine(admin, row):
        return _refuse(admin, "remove", 403, "forbidden",
                       _("You may not manage upstream providers for these email domains."), "outside_domains",
                       name, domains=list(row.domains))
    upstreams.remove(row.name)
    db.session.commit()
    return Response(status=204, headers=NO_STORE)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    status = error.code or 500
    return _error(status, "invalid_request" if status < 500 else "server_error",
                  _("The request could not be handled."))
