"""PKCE (RFC 7636) at the authorization endpoint.

Rules:
- Only ``S256``; ``plain`` (or any other method) is refused with
  ``invalid_request``. A missing method means ``plain`` per RFC 7636 §4.3,
  so it is refused too.
- Public clients must send a ``code_challenge``; confidential clients must
  too unless their per-client ``require_pkce`` switch is off.
- At the token endpoint (Authlib's CodeChallenge): a verifier without a
  stored challenge, or a challenge without a verifier, is refused, and the
  verifier must hash to the challenge.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge


class S256CodeChallenge(CodeChallenge):
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        method = data.get("code_challenge_method")
        client = grant.request.client
        if not challenge and (client.is_public or client.require_pkce):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256.")
        if challenge and method != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)
