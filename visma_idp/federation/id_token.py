"""An upstream's ID token, checked strictly.

Rules (OpenID Connect Core §3.1.3.7, and what brokers got wrong):
- the signature is checked with the upstream's published keys, with the one
  algorithm pinned for that upstream: a token signed with ``none``, or with
  HS256 where RS256 was pinned (a public key used as an HMAC secret), is
  refused; HS256 only where the operator pinned it, keyed with our client secret;
- ``iss`` equals the upstream's issuer; for a multi-tenant Entra ID (issuer
  ``https://login.microsoftonline.com/{tenantid}/v2.0``) it equals that
  template filled with the token's own ``tid``, and ``tid`` is on the
  upstream's allow-list;
- ``aud`` contains our client id; with more than one audience, ``azp`` is
  our client id;
- ``exp`` is in the future and ``iat`` not in the future (each with
  ``UPSTREAM_CLOCK_SKEW``); ``sub`` is present;
- ``nonce`` equals the one this browser's round trip sent (constant time).
"""

from __future__ import annotations

import hmac
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from ..context import current_idp
from ..storage import Upstream
from . import upstreams
from .upstreams import TENANT_TEMPLATE


class InvalidIdToken(Exception):
    """The upstream's ID token fails a check (``reason`` says which; it is audited, never shown)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _header(token: str) -> dict[str, Any]:
    try:
        return dict(jws.extract_compact(token.encode("ascii")).headers())
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise InvalidIdToken("not a JWS") from None


def _decode(row: Upstream, token: str) -> dict[str, Any]:
    alg = _header(token).get("alg")
    if alg != row.id_token_alg:
        raise InvalidIdToken(f"signed with {alg!r}, pinned {row.id_token_alg!r}")
    if alg == "HS256":
        secret = row.client_secret
        if not secret:
            raise InvalidIdToken("HS256 without a client secret")
        key: Any = OctKey.import_key(secret)
    else:
        kid = _header(token).get("kid")
        doc = upstreams.jwks(row)
        if kid and not any(k.get("kid") == kid for k in doc.get("keys", [])):
            doc = upstreams.jwks(row, unknown_kid=True)
        try:
            key = KeySet.import_key_set({"keys": [k for k in doc.get("keys", []) if k.get("use", "sig") == "sig"]})
        except (JoseError, ValueError, TypeError):
            raise InvalidIdToken("the upstream's key set cannot be read") from None
    try:
        return dict(jwt.decode(token, key, algorithms=[row.id_token_alg]).claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidIdToken(f"signature: {exc.__class__.__name__}") from None


def expected_issuer(row: Upstream, claims: dict[str, Any]) -> str:
    """The issuer this token must name: the upstream's, or for a multi-tenant
    one the template filled with the token's allowed ``tid``."""
    if TENANT_TEMPLATE not in row.issuer:
        return row.issuer
    tid = claims.get("tid")
    if not isinstance(tid, str) or tid.lower() not in (row.tenants or []):
        raise InvalidIdToken(f"tenant {tid!r} is not allowed")
    return row.issuer.replace(TENANT_TEMPLATE, tid)


def validate(row: Upstream, token: str, *, nonce: str) -> dict[str, Any]:
    """The claims of ``token`` once every rule above holds.

    Raises:
        InvalidIdToken: a rule fails.
        UpstreamUnavailable: its keys cannot be fetched.
    """
    if not isinstance(token, str) or not token:
        raise InvalidIdToken("no ID token")
    claims = _decode(row, token)
    if claims.get("iss") != expected_issuer(row, claims):
        raise InvalidIdToken(f"issuer {claims.get('iss')!r}")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if row.client_id not in audiences:
        raise InvalidIdToken("audience")
    if len(audiences) > 1 and claims.get("azp") != row.client_id:
        raise InvalidIdToken("azp")
    idp = current_idp()
    now, skew = idp.clock.now(), idp.settings["UPSTREAM_CLOCK_SKEW"]
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp + skew <= now:
        raise InvalidIdToken("expired")
    if not isinstance(iat, int | float) or isinstance(iat, bool) or iat - skew > now:
        raise InvalidIdToken("issued in the future")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise InvalidIdToken("no subject")
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise InvalidIdToken("nonce")
    return claims
