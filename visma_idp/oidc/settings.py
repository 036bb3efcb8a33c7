"""The protocol's settings (``oidc/``): codes, tokens, signing algorithms, the key and client caches.

Rows of :class:`visma_idp.config.Setting`, gathered by ``config.py`` (which
validates them and generates docs/configuration.md from them). This module
imports nothing but config's parsers, so reading the settings never loads
the package's views.
"""

from __future__ import annotations

from ..config import Setting, boolean, integer, one_of

SIGNING_ALGS = {"RS256", "PS256", "ES256", "EdDSA"}

SETTINGS: tuple[Setting, ...] = (
    Setting("CODE_LIFETIME", 60, integer(1), "Seconds an authorization code stays redeemable."),
    Setting("ACCESS_TOKEN_LIFETIME", 600, integer(1), "Seconds an access token (RFC 9068 JWT) is valid."),
    Setting("ID_TOKEN_LIFETIME", 3600, integer(1), "Seconds an ID token is valid."),
    Setting("REFRESH_TOKEN_LIFETIME", 30 * 24 * 3600, integer(60),
            "Absolute lifetime in seconds of a refresh-token family, counted from the login that started it."),
    Setting("ID_TOKEN_SIGNING_ALG", "RS256", one_of(SIGNING_ALGS),
            "Default ID-token algorithm; a client may choose another with `id_token_signed_response_alg`."),
    Setting("ID_TOKEN_SCOPE_CLAIMS", True, boolean,
            "Put the user claims of the granted scopes (profile, email, phone, address) in the ID token too, "
            "not only in UserInfo (as Keycloak does; many client libraries read the profile from the ID token). "
            "A client may override it (`visma-idp clients create --id-token-claims/--no-id-token-claims`)."),
    Setting("CLIENT_ASSERTION_MAX_LIFETIME", 300, integer(10),
            "Longest a private_key_jwt client assertion may live, in seconds (`exp` - `iat`, or `exp` - now "
            "without `iat`); 300 is Auth0's documented maximum."),
    Setting("ACCESS_TOKEN_SIGNING_ALG", "ES256", one_of(SIGNING_ALGS), "Algorithm of JWT access tokens."),
    Setting("KEY_CACHE_SECONDS", 30, integer(1),
            "How often (seconds) a process looks for rotated signing keys; parsed keys are cached between looks."),
    Setting("LOGOUT_TOKEN_LIFETIME", 120, integer(10),
            "Seconds a back-channel logout token is valid (`exp` - `iat`); each try is signed afresh."),
    Setting("LOGOUT_TIMEOUT_SECONDS", 5, integer(1),
            "How long a back-channel logout POST may take before it counts as failed (an RP-initiated logout "
            "waits at most 2 seconds per app before its redirect, and leaves the rest to the worker)."),
    Setting("LOGOUT_RETRY_SECONDS", 30, integer(1),
            "First wait before a failed back-channel logout is tried again; it doubles with each try (at most an hour)."),
    Setting("LOGOUT_MAX_ATTEMPTS", 10, integer(1),
            "Tries of one back-channel logout before it is marked failed (`visma-idp logout retry` sends it again)."),
    Setting("INTROSPECTION_CACHE_SECONDS", 30, integer(0),
            "Longest a process answers an introspection of a live JWT access token from memory, checked against "
            "Redis's revocation counter on every request so that a revocation on any node is seen at once; "
            "only with `REDIS_URL` (0: off; docs/operations.md)."),
    Setting("FAST_LANE", True, boolean,
            "Answer successful client_credentials token requests and kept introspections in a lean WSGI layer "
            "before Flask (`oidc/fastlane.py`; every other request, errors included, takes the full path)."),
    Setting("CLIENT_CACHE_SECONDS", 10, integer(0),
            "How long a process keeps a client's registration in memory; changes reach other processes within it (0: off)."),
)
