"""Minting tokens: RFC 9068 access tokens, refresh tokens and ID tokens.

Kept apart from the grants so every grant issues tokens the same way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ..crypto import digest, random_token
from ..storage import Token, queries
from .claims import AGREEMENT_SCOPE, agreement_claims, release_claims
from .tokens import access_token_digest, half_hash, new_jti, sign


@dataclass
class AuthContext:
    """What the login established, carried from session to code to tokens."""

    auth_time: int | None = None
    acr: str | None = None
    amr: list[str] | None = None
    sid: str | None = None
    claims: dict[str, Any] | None = None
    nonce: str | None = None
    agreement_id: int | None = None  # the agreement the person works in (scope ``agreements``)


@dataclass
class Issued:
    token: dict[str, Any]
    rows: list[Token] = field(default_factory=list)


def agreement_of(user, client, scope: str, ctx: AuthContext) -> dict[str, Any]:
    """The ``agreement`` and ``roles`` claims when the scope asks for them and
    the person still belongs to the context's agreement (else none)."""
    if AGREEMENT_SCOPE not in scope.split() or ctx.agreement_id is None:
        return {}
    return agreement_claims(queries.membership_of(user.id, ctx.agreement_id), client.client_id)


def access_token_claims(idp, client, sub: str, scope: str, now: int, jti: str, ctx: AuthContext | None) -> dict:
    claims: dict[str, Any] = {
        "iss": idp.issuer,
        "sub": sub,
        "aud": idp.issuer,
        "client_id": client.client_id,
        "iat": now,
        "exp": now + idp.settings["ACCESS_TOKEN_LIFETIME"],
        "jti": jti,
    }
    if scope:
        claims["scope"] = scope
    if ctx is not None:
        _add_auth_context(claims, ctx)
    return claims


def _add_auth_context(claims: dict[str, Any], ctx) -> None:
    """How and when the user signed in (auth_time, acr, amr, sid), where known."""
    if ctx.auth_time is not None:
        claims["auth_time"] = ctx.auth_time
    if ctx.acr:
        claims["acr"] = ctx.acr
    if ctx.amr:
        claims["amr"] = ctx.amr
    if ctx.sid:
        claims["sid"] = ctx.sid


def client_access_token(idp, client, scope: str) -> dict[str, Any]:
    """client_credentials: a self-contained JWT, nothing written to the database."""
    now = idp.clock.now()
    claims = access_token_claims(idp, client, client.client_id, scope, now, new_jti(), None)
    token = {
        "access_token": sign(idp.keys, idp.settings["ACCESS_TOKEN_SIGNING_ALG"], claims, typ="at+jwt"),
        "token_type": "Bearer",
        "expires_in": idp.settings["ACCESS_TOKEN_LIFETIME"],
    }
    if scope:
        token["scope"] = scope
    return token


def user_tokens(
    idp,
    client,
    user,
    scope: str,
    ctx: AuthContext,
    *,
    family_id: str | None,
    code_id: int | None,
    with_refresh: bool,
    refresh_expires_at: int | None = None,
) -> Issued:
    now = idp.clock.now()
    family_id = family_id or str(uuid.uuid4())
    jti = new_jti()
    at_claims = access_token_claims(idp, client, user.sub, scope, now, jti, ctx)
    extra = agreement_of(user, client, scope, ctx)
    at_claims.update(extra)
    access_token = sign(idp.keys, idp.settings["ACCESS_TOKEN_SIGNING_ALG"], at_claims, typ="at+jwt")
    common = dict(
        client_id=client.client_id, user_id=user.id, scope=scope, family_id=family_id, code_id=code_id,
        issued_at=now, auth_time=ctx.auth_time, acr=ctx.acr, amr=ctx.amr, claims=ctx.claims, sid=ctx.sid,
        agreement_id=ctx.agreement_id,
    )
    rows = [Token(kind="access", digest=access_token_digest(jti), expires_at=at_claims["exp"], **common)]
    token: dict[str, Any] = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": idp.settings["ACCESS_TOKEN_LIFETIME"],
        "scope": scope,
    }
    if with_refresh:
        refresh = random_token(32)
        expires = refresh_expires_at or now + idp.settings["REFRESH_TOKEN_LIFETIME"]
        rows.append(Token(kind="refresh", digest=digest(refresh), expires_at=expires, **common))
        token["refresh_token"] = refresh
    if "openid" in scope.split():
        token["id_token"] = id_token(idp, client, user, scope, ctx, access_token=access_token, extra=extra)
    return Issued(token, rows)


def scope_claims_in_id_token(idp, client) -> bool:
    """Whether the ID token carries the claims of the granted scopes (profile,
    email, phone, address) as UserInfo releases them: the client's
    ``id_token_claims`` when set, else the server's ``ID_TOKEN_SCOPE_CLAIMS``.

    OIDC Core §5.4 keeps them in UserInfo when an access token is issued, but
    many client libraries read the profile from the ID token only."""
    if client.id_token_claims is not None:
        return bool(client.id_token_claims)
    return bool(idp.settings["ID_TOKEN_SCOPE_CLAIMS"])


def id_token(idp, client, user, scope: str, ctx: AuthContext, *, access_token: str | None,
             extra: dict[str, Any] | None = None) -> str:
    alg = client.id_token_signed_response_alg or idp.settings["ID_TOKEN_SIGNING_ALG"]
    now = idp.clock.now()
    requested = (ctx.claims or {}).get("id_token")
    by_scope = access_token is None or scope_claims_in_id_token(idp, client)
    claims = release_claims(user, scope, requested, by_scope=by_scope)
    claims.update({
        "iss": idp.issuer,
        "aud": client.client_id,
        "azp": client.client_id,
        "iat": now,
        "exp": now + idp.settings["ID_TOKEN_LIFETIME"],
    })
    _add_auth_context(claims, ctx)
    claims.update(extra if extra is not None else agreement_of(user, client, scope, ctx))
    if ctx.nonce:
        claims["nonce"] = ctx.nonce
    if access_token:
        claims["at_hash"] = half_hash(access_token, alg)
    return sign(idp.keys, alg, claims)
