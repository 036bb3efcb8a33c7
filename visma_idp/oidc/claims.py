"""Which user claims a token may reveal: by scope (OIDC Core §5.4) and by the
``claims`` request parameter (§5.5); and, with scope ``agreements``, the
agreement the person works in (docs/agreements.md):

- ID token, access token and UserInfo: ``agreement`` (``id``, ``name``,
  ``org_number``) and ``roles`` (the role names that hold in the requesting
  app: those of every app of the agreement and the app's own);
- UserInfo only: ``agreements``, every membership with its roles (an
  accountant may have hundreds: tokens stay small)."""

from __future__ import annotations

import json
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": (
        "name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
        "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
    ),
    "email": ("email", "email_verified"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
}
AGREEMENT_SCOPE = "agreements"
AGREEMENT_CLAIMS = ("agreement", "roles", "agreements")
CLAIMS_SUPPORTED = sorted(
    {"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid", "at_hash"}
    | {c for claims in SCOPE_CLAIMS.values() for c in claims} | set(AGREEMENT_CLAIMS)
)
USER_CLAIMS = {c for claims in SCOPE_CLAIMS.values() for c in claims}


def parse_claims_param(value: str | None, redirect_uri: str) -> dict[str, Any] | None:
    """Parse the ``claims`` request parameter; refuse malformed JSON."""
    if not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        raise InvalidRequestError("The claims parameter is not valid JSON.", redirect_uri=redirect_uri) from None
    if not isinstance(parsed, dict) or any(
        k in parsed and parsed[k] is not None and not isinstance(parsed[k], dict) for k in ("userinfo", "id_token")
    ):
        raise InvalidRequestError("The claims parameter must be a JSON object.", redirect_uri=redirect_uri)
    return {k: parsed[k] for k in ("userinfo", "id_token") if isinstance(parsed.get(k), dict)}


def user_claim_values(user) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": user.name or None,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "locale": user.locale,
        "zoneinfo": user.zoneinfo,
        "updated_at": user.updated_at,
        "email": user.email,
        "email_verified": bool(user.email_verified),
        "phone_number": user.phone_number,
        "phone_number_verified": bool(user.phone_number_verified) if user.phone_number else None,
        "address": user.address or None,
    }
    for key, value in (user.profile or {}).items():
        if key in USER_CLAIMS:
            values[key] = value
    return values


def release_claims(user, scope: str, requested: dict[str, Any] | None, *, by_scope: bool) -> dict[str, Any]:
    """The user claims to release, ``sub`` always included.

    Args:
        user: the User.
        scope: granted scope string.
        requested: the ``userinfo`` or ``id_token`` member of the claims parameter.
        by_scope: also release the claims that the scopes stand for (UserInfo: yes;
            ID token next to an access token: only when ``ID_TOKEN_SCOPE_CLAIMS`` or the
            client's ``id_token_claims`` says so, §5.4 keeping them in UserInfo).
    """
    names: set[str] = set()
    scopes = set(scope.split())
    if by_scope:
        for s, claims in SCOPE_CLAIMS.items():
            if s in scopes:
                names.update(claims)
    names.update(k for k in (requested or {}) if k in USER_CLAIMS)
    values = user_claim_values(user)
    out: dict[str, Any] = {"sub": user.sub}
    for name in sorted(names):
        value = values.get(name)
        if value is not None and value != "":
            out[name] = value
    return out


def agreement_claim(membership) -> dict[str, str]:
    agreement = membership.agreement
    return {"id": agreement.public_id, "name": agreement.name, "org_number": agreement.org_number}


def agreement_claims(membership, client_id: str) -> dict[str, Any]:
    """``agreement`` and ``roles`` of the active agreement for app ``client_id`` (empty without one)."""
    if membership is None:
        return {}
    return {"agreement": agreement_claim(membership), "roles": membership.roles_for(client_id)}


def memberships_claim(memberships, client_id: str) -> list[dict[str, Any]]:
    """UserInfo's ``agreements``: every membership and its roles in app ``client_id``."""
    return [{**agreement_claim(m), "roles": m.roles_for(client_id)} for m in memberships]
