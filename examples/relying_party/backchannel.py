"""Checking a back-channel logout token (OpenID Connect Back-Channel Logout 1.0, section 2.6).

The rules, in the order they are checked:
- a JWT signed by a key of the provider's JWKS (its URL from discovery), with an
  algorithm the provider lists for ID tokens; never ``none``;
- header ``typ`` is ``logout+jwt`` (``application/`` prefix allowed);
- ``iss`` is the provider's issuer, ``aud`` holds our client id, ``iat`` and
  ``exp`` present and ``exp`` not passed, ``jti`` present;
- ``events`` holds ``http://schemas.openid.net/event/backchannel-logout`` with a JSON object;
- ``sid`` or ``sub`` present; ``nonce`` absent (so an ID token is never taken for one).
"""

from __future__ import annotations

from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class LogoutTokenError(ValueError):
    """The logout token is not valid; the message says why (never the token)."""


@dataclass(frozen=True)
class Logout:
    sid: str | None
    sub: str | None
    jti: str
    exp: int


def verify_logout_token(token: str, *, keys: KeySet, issuer: str, client_id: str,
                        algorithms: list[str], leeway: int = 60) -> Logout:
    """Verify a logout token.

    Args:
        token: the ``logout_token`` form value.
        keys: the provider's public keys.
        issuer: the provider's issuer (from discovery).
        client_id: our client id (the expected audience).
        algorithms: the signing algorithms accepted.
        leeway: seconds of clock difference allowed.

    Returns:
        The session (``sid``) or person (``sub``) to sign out, with ``jti`` and ``exp``.

    Raises:
        LogoutTokenError: any rule above is broken.
    """
    algorithms = [alg for alg in algorithms if alg.lower() != "none"]
    try:
        decoded = jwt.decode(token, keys, algorithms=algorithms)
    except (JoseError, ValueError) as exc:
        raise LogoutTokenError(f"signature or format: {type(exc).__name__}") from None
    typ = str(decoded.header.get("typ", "")).lower()
    if typ not in ("logout+jwt", "application/logout+jwt"):
        raise LogoutTokenError("typ is not logout+jwt")
    claims = decoded.claims
    registry = jwt.JWTClaimsRegistry(
        leeway=leeway,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        iat={"essential": True},
        exp={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise LogoutTokenError(f"claims: {exc.error}") from None
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(EVENT), dict):
        raise LogoutTokenError("events has no back-channel logout event")
    if "nonce" in claims:
        raise LogoutTokenError("a logout token has no nonce")
    sid, sub = claims.get("sid"), claims.get("sub")
    if not (isinstance(sid, str) and sid) and not (isinstance(sub, str) and sub):
        raise LogoutTokenError("neither sid nor sub")
    if not isinstance(claims["jti"], str):
        raise LogoutTokenError("jti is not a string")
    return Logout(sid=sid if isinstance(sid, str) and sid else None,
                  sub=sub if isinstance(sub, str) and sub else None,
                  jti=claims["jti"], exp=int(claims["exp"]))
