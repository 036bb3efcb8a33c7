"""JWTs we sign (ID tokens, RFC 9068 access tokens) and the ones we verify
(our own access tokens and ID-token hints).

Signing uses the one active private key of the algorithm (never a KeySet, so
no library can pick a random key), with its ``kid`` in the header; the
signature itself is made in ``signer.py`` directly on the ``cryptography`` key.
Verification picks the key by ``kid`` from our cached keys and only accepts
that key's own algorithm, so ``alg: none`` and HS256-keyed-by-public-key
forgeries fail.
"""

from __future__ import annotations

import hashlib
import secrets
import warnings
from base64 import urlsafe_b64encode
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.util import to_bytes

from ..crypto import digest
from .signer import sign_compact

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from joserfc.jws import JWSRegistry

# joserfc flags "EdDSA" as superseded by RFC 9864's "Ed25519"; we still offer
# it because relying parties ask for it by that name.
_REGISTRY = JWSRegistry(algorithms=["RS256", "PS256", "ES256", "EdDSA"])


class TokenError(Exception):
    """A JWT failed verification; the message says why (never shown to users as-is)."""


def sign(keys, alg: str, claims: dict[str, Any], typ: str = "JWT") -> str:
    loaded = keys.signing_key(alg)
    return sign_compact({"alg": alg, "kid": loaded.kid, "typ": typ}, claims, loaded.key.private_key)


def half_hash(value: str, alg: str) -> str:
    """at_hash / c_hash: left half of the hash that matches the signing alg."""
    if alg == "EdDSA":
        full = hashlib.sha512(value.encode("ascii")).digest()
    else:
        full = hashlib.sha256(value.encode("ascii")).digest()
    return urlsafe_b64encode(full[: len(full) // 2]).rstrip(b"=").decode("ascii")


def new_jti() -> str:
    return secrets.token_urlsafe(18)


def verify(keys, token: str, *, issuer: str, typ: str | None = None) -> tuple[dict, dict]:
    """Verify signature and issuer of a JWT signed by us; return (header, claims).

    Expiry is the caller's business (ID-token hints may be expired).

    Raises:
        TokenError: on any problem.
    """
    if not isinstance(token, str) or token.count(".") != 2:
        raise TokenError("not a compact JWS")
    try:
        header = jws.extract_compact(to_bytes(token)).headers()
    except (JoseError, ValueError) as exc:
        raise TokenError("malformed JWT") from exc
    loaded = keys.verification_key(header.get("kid"))
    if loaded is None:
        raise TokenError("unknown kid")
    if header.get("alg") != loaded.alg:
        raise TokenError("algorithm does not match the key")
    if typ is not None and str(header.get("typ", "")).lower() not in {typ, "application/" + typ}:
        raise TokenError("wrong typ")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            decoded = jwt.decode(token, loaded.key, [loaded.alg], registry=_REGISTRY)
    except (JoseError, ValueError) as exc:
        raise TokenError("bad signature") from exc
    claims = decoded.claims
    if claims.get("iss") != issuer:
        raise TokenError("wrong issuer")
    return decoded.header, claims


def verify_id_token_hint(keys, token: str, *, issuer: str) -> dict:
    """Claims of an ID token we issued, given back as ``id_token_hint`` (it may be
    expired). Our RFC 9068 access tokens are signed by the same keys and name the
    user too: only ``typ: JWT`` with an ``aud`` that is not us is an ID token.

    Raises:
        TokenError: when it is not one of our ID tokens.
    """
    _, claims = verify(keys, token, issuer=issuer, typ="jwt")
    if not claims.get("sub") or not claims.get("aud") or claims.get("aud") == issuer:
        raise TokenError("not an ID token")
    return claims


def access_token_digest(jti: str) -> str:
    return digest("jti:" + jti)
