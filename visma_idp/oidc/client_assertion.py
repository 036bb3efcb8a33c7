"""``private_key_jwt`` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9).

Rules:
- Only a client registered with ``private_key_jwt`` may authenticate with a
  client assertion; any other client named in one is refused before its keys
  are looked at.
- The keys are the client's registered JWKS, nothing from the assertion
  (``jwk``, ``jku``, ``x5u``, ``x5c`` are never used). Only RSA, EC and OKP
  keys count. A JWKS that is null, malformed or holds no such key fails the
  authentication, and the operator is told once per request with a warning
  naming the client (no traceback).
- The header is a JSON object whose ``alg`` is one of RS256, PS256, ES256,
  EdDSA (never ``none`` or an HMAC); a ``kid``, when present, is a string and
  must name a registered key; ``crit`` is refused (we implement no extension).
- ``iss`` and ``sub`` are both the client id; ``aud`` is our issuer or our
  token endpoint URL; ``jti`` is required and single use (remembered until
  ``exp`` plus a minute).
- Time, always on the app clock (``idp.clock``) with 30 s of leeway for clock
  skew: ``exp`` is required and not past; ``nbf`` and ``iat``, when present,
  are not in the future; all three are numbers.
- Lifetime: ``exp`` is at most ``CLIENT_ASSERTION_MAX_LIFETIME`` seconds
  (default 300, Auth0's documented maximum) after ``iat``. ``iat`` stays
  optional as RFC 7523 §3 has it (several client libraries omit it); without
  it the cap counts from the moment we receive the assertion (plus the
  leeway), which bounds a stolen assertion's use and the replay store just as
  well.
- Every failure is ``invalid_client`` with HTTP 401 and a fixed description;
  hostile input never reaches the log as an error or a traceback.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, import_key

from ..crypto import digest
from ..storage import queries

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from joserfc.jws import JWSRegistry

log = logging.getLogger(__name__)

CLIENT_ASSERTION_ALGS = ["RS256", "PS256", "ES256", "EdDSA"]
LEEWAY = 30
MAX_ASSERTION_LENGTH = 16_384
_KEY_TYPES = ("RSA", "EC", "OKP")
# joserfc flags "EdDSA" as superseded by RFC 9864's "Ed25519"; clients still use that name.
_REGISTRY = JWSRegistry(algorithms=CLIENT_ASSERTION_ALGS)
# What a malformed header, payload or key can make joserfc (or our lookups) raise.
_BAD_INPUT = (JoseError, ValueError, TypeError, KeyError, AttributeError)


def refused(description: str = "The client assertion is not valid.") -> InvalidClientError:
    return InvalidClientError(description=description, status_code=401)


def _described(error: JoseError) -> InvalidClientError:
    """joserfc's own words when they are safe in an error_description."""
    text = error.description or ""
    if not text or len(text) > 120 or invalid_error_characters(text):
        return refused()
    return refused(text)


def public_keys(jwks: Any) -> KeySet:
    """The RSA, EC and OKP keys of a JWK set; other key types are skipped
    (RFC 7517 §5), and so is a key that does not parse.

    Raises:
        ValueError: ``jwks`` is not a JWK set, or holds no usable key.
    """
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise ValueError('not a JWK set ({"keys": [...]})')
    parsed = []
    for data in keys:
        if not isinstance(data, dict) or data.get("kty") not in _KEY_TYPES:
            continue
        try:
            parsed.append(import_key(data))
        except _BAD_INPUT:
            continue
    if not parsed:
        raise ValueError("no usable RSA, EC or OKP public key")
    return KeySet(parsed)


def registered_keys(client) -> KeySet:
    """The client's registered public keys, parsed.

    Args:
        client: a Client or ClientSnapshot registered with ``private_key_jwt``.

    Returns:
        The RSA, EC and OKP keys of its JWKS.

    Raises:
        InvalidClientError: the JWKS is missing, malformed or holds no usable key.
    """
    try:
        return public_keys(client.jwks)
    except ValueError as exc:
        log.warning("client %s uses private_key_jwt but its registered jwks is unusable: %s", client.client_id, exc)
        raise refused() from None


class PrivateKeyJWT(JWTBearerClientAssertion):
    """Authlib's RFC 7523 client authentication, with our rules (module header)
    in the hooks it documents, and every failure turned into a 401."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, idp):
        super().__init__(validate_jti=True, leeway=LEEWAY)
        self.idp = idp

    def __call__(self, query_client, request):
        try:
            return super().__call__(query_client, request)
        except InvalidClientError as error:
            error.status_code = 401
            raise
        except _BAD_INPUT as exc:
            # a shape of hostile input the checks below did not foresee
            raise refused() from exc

    def get_audiences(self):
        return [self.idp.issuer, self.idp.url("oidc.token")]

    def extract_assertion(self, assertion: str):
        if not isinstance(assertion, str) or len(assertion) > MAX_ASSERTION_LENGTH or assertion.count(".") != 2:
            raise refused()
        try:
            header, claims = super().extract_assertion(assertion)
            header = dict(header)
        except InvalidClientError:
            raise refused() from None
        except _BAD_INPUT:
            raise refused() from None
        if header.get("alg") not in CLIENT_ASSERTION_ALGS:
            raise refused("The client assertion's algorithm is not accepted.")
        if "kid" in header and not isinstance(header["kid"], str):
            raise refused()
        if "crit" in header:
            raise refused("The client assertion uses a critical header this server does not support.")
        return header, claims

    def resolve_client_public_key(self, client):
        if client.token_endpoint_auth_method != self.CLIENT_AUTH_METHOD:
            raise refused(f"The client cannot authenticate with method: {self.CLIENT_AUTH_METHOD}")
        return registered_keys(client)

    def process_assertion_claims(self, assertion, resolve_key):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                token = jwt.decode(assertion, resolve_key, algorithms=CLIENT_ASSERTION_ALGS, registry=_REGISTRY)
        except _BAD_INPUT as exc:
            raise refused() from exc
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims):
        """Authlib's checks (iss, sub, aud, exp, jti), on the app clock, plus
        the lifetime cap (module header)."""
        now = self.idp.clock.now()
        registry = jwt.JWTClaimsRegistry(
            now=now, leeway=self.leeway,
            iss={"essential": True}, sub={"essential": True}, exp={"essential": True}, jti={"essential": True},
            aud={"essential": True, "values": self.get_audiences()},
        )
        try:
            registry.validate(claims)
        except JoseError as error:
            raise _described(error) from None
        if claims["sub"] != claims["iss"]:
            raise refused("Issuer and Subject MUST match.")
        cap = self.idp.settings["CLIENT_ASSERTION_MAX_LIFETIME"]
        if "iat" in claims:
            too_long = claims["exp"] - claims["iat"] > cap
        else:
            too_long = claims["exp"] - now > cap + self.leeway
        if too_long:
            raise refused(f"The client assertion may live at most {cap} seconds (exp - iat).")
        if not self.validate_jti(claims, claims["jti"]):
            raise refused("JWT ID is used before.")

    def validate_jti(self, claims, jti):
        now = self.idp.clock.now()
        return queries.remember_jti(digest(f"{claims['sub']}:{jti}"), int(claims["exp"]) + 60, now)
