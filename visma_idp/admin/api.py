"""The admin REST API: one-time codes and invitations.

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
- the endpoint takes no cookies into account, so it is exempt from the CSRF
  token (``admin.init_app``) and the Origin check (a bearer token is never sent by the browser on
  its own).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from .. import addresses
from ..config import LOCALES
from ..context import current_idp
from ..oidc.server import find_token
from ..storage import db
from . import one_time_codes

bp = Blueprint("admin_api", __name__)

SCOPE = "idp:admin"
REALM = "visma_idp admin"
MAX_BODY = 4096
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _json(status: int, body: dict, headers: dict[str, str] | None = None):
    resp = jsonify(body)
    resp.status_code = status
    resp.headers.update(NO_STORE)
    if headers:
        resp.headers.update(headers)
    return resp


def _error(status: int, error: str, message: str):
    return _json(status, {"error": error, "message": message})


def _bearer_error(status: int, error: str | None, message: str, *, scope: bool = False):
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}"'
    if scope:
        value += f', scope="{SCOPE}"'
    return _json(status, {"error": error or "unauthorized", "message": message}, {"WWW-Authenticate": value})


def _token_user():
    """(user, None) for a usable admin token, else (None, error response)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer " or not header[7:].strip():
        return None, _bearer_error(401, None, _("Send an access token: Authorization: Bearer <token>."))
    info = find_token(current_idp(), header[7:].strip(), "access_token")
    row = info.get("_row") if info else None
    if (info is None or info.get("token_type") != "Bearer" or row is None or row.kind != "access"
            or row.user is None or row.user.status != "active" or row.user.sub != info.get("sub")):
        return None, _bearer_error(401, "invalid_token", _("The access token is invalid or expired."))
    if SCOPE not in str(info.get("scope") or "").split():
        return None, _bearer_error(403, "insufficient_scope",
                                   _("The access token lacks the scope %(scope)s.", scope=SCOPE), scope=True)
    return row.user, None


def _admin_request():
    """The admin behind the bearer token and the JSON body (None when the
    body is not JSON): ``(admin, body, None)``, or ``(None, None, the error
    response)`` for a bad token or a body over ``MAX_BODY``."""
    admin, refused = _token_user()
    if refused is not None:
        return None, None, refused
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None, None, _error(400, "invalid_request", _("The request is too large."))
    body = request.get_json(silent=True) if request.mimetype == "application/json" else None
    return admin, body, None


@bp.post("/admin/api/one-time-codes")
def create_one_time_code():
    admin, body, refused = _admin_request()
    if refused is not None:
        return refused
    email = body.get("email") if isinstance(body, dict) else None
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


@bp.post("/admin/api/users")
def invite_user():
    from .. import audit
    from . import rights
    from .service import InvalidInput
    from .service import invite_user as invite

    admin, body, refused = _admin_request()
    if refused is not None:
        return refused
    email = body.get("email") if isinstance(body, dict) else None
    name = body.get("name") if isinstance(body, dict) else None
    extra = {k: body.get(k) for k in INVITE_FIELDS if isinstance(body, dict) and body.get(k) is not None}
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


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    status = error.code or 500
    return _error(status, "invalid_request" if status < 500 else "server_error",
                  _("The request could not be handled."))
