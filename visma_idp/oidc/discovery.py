"""Provider metadata (OIDC Discovery 1.0 and RFC 8414)."""

from __future__ import annotations

from ..config import LOCALES
from .keys import ALGORITHMS


def metadata(idp, claims_supported: list[str], acr_values: list[str]) -> dict:
    url = idp.url
    return {
        "issuer": idp.issuer,
        "authorization_endpoint": url("oidc.authorize"),
        "token_endpoint": url("oidc.token"),
        "userinfo_endpoint": url("oidc.userinfo"),
        "jwks_uri": url("oidc.jwks"),
        "end_session_endpoint": url("oidc.end_session"),
        "introspection_endpoint": url("oidc.introspect"),
        "revocation_endpoint": url("oidc.revoke"),
        "scopes_supported": ["openid", "profile", "email", "phone", "address", "offline_access", "agreements"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ALGORITHMS),
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "private_key_jwt", "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "private_key_jwt",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "private_key_jwt", "none",
        ],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims_supported,
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": True,
        "acr_values_supported": acr_values,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "display_values_supported": ["page", "popup", "touch", "wap"],
        "ui_locales_supported": list(LOCALES),
        "claims_locales_supported": ["en"],
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": True,  # the logout page's iframes (oidc/views.py)
        "frontchannel_logout_session_supported": True,  # with iss and sid
        "backchannel_logout_supported": True,  # oidc/backchannel.py
        "backchannel_logout_session_supported": True,  # every logout token carries sid
    }
