"""Request objects (OIDC Core §6).

Rules:
- ``request`` is refused with ``request_not_supported`` and ``request_uri``
  with ``request_uri_not_supported`` (discovery says both are unsupported);
  the error is redirected to the validated redirect URI with ``state`` and
  ``iss`` like any other authorization error.
- The check runs right after the redirect URI is validated and before PKCE,
  nonce and prompt are looked at: a client may have put those parameters in
  the object, and "not supported" is the true answer, not "PKCE is required".
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Error


class RequestNotSupportedError(OAuth2Error):
    error = "request_not_supported"
    description = "Request objects are not supported by this server."


class RequestUriNotSupportedError(OAuth2Error):
    error = "request_uri_not_supported"
    description = "request_uri is not supported by this server."


def check_request_object(data, redirect_uri: str) -> None:
    if data.get("request"):
        raise RequestNotSupportedError(redirect_uri=redirect_uri)
    if data.get("request_uri"):
        raise RequestUriNotSupportedError(redirect_uri=redirect_uri)
