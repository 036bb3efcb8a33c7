"""oidcc-discovery-endpoint-verification (OIDCCDiscoveryEndpointVerification,
the Config OP plan): the discovery document is served as JSON at
``<issuer>/.well-known/openid-configuration``; its issuer is that issuer
(CheckDiscEndpointIssuer) and a valid issuer URL; the required metadata of
OpenID Connect Discovery 1.0 §3 is there with valid values
(CheckRequiredOidcDiscoveryMetadataSequence); the jwks_uri serves public
signing keys with kid, use and alg (ValidateServerJWKs); every endpoint is
https (CheckDiscEndpointAllEndpointsAreHttps; a loopback issuer may use http,
as in these tests) and lives under the issuer; no unregistered metadata names
(CheckForUnexpectedParametersInServerMetadata); scopes and locales are
syntactically valid.
"""

import re
from urllib.parse import urlsplit

import pytest

from tests.conformance.oidf import ISSUER, SCOPE_CLAIMS, server_jwks

# The IANA "OAuth Authorization Server Metadata" registry (RFC 8414 §7.1), which
# also holds the OpenID Connect Discovery, Session, Front-/Back-Channel and
# RP-Initiated Logout and Prompt Create names.
REGISTERED = {
    "issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint", "scopes_supported",
    "response_types_supported", "response_modes_supported", "grant_types_supported",
    "token_endpoint_auth_methods_supported", "token_endpoint_auth_signing_alg_values_supported",
    "service_documentation", "ui_locales_supported", "op_policy_uri", "op_tos_uri", "revocation_endpoint",
    "revocation_endpoint_auth_methods_supported", "revocation_endpoint_auth_signing_alg_values_supported",
    "introspection_endpoint", "introspection_endpoint_auth_methods_supported",
    "introspection_endpoint_auth_signing_alg_values_supported", "code_challenge_methods_supported",
    "signed_metadata", "device_authorization_endpoint", "tls_client_certificate_bound_access_tokens",
    "mtls_endpoint_aliases", "userinfo_endpoint", "acr_values_supported", "subject_types_supported",
    "id_token_signing_alg_values_supported", "id_token_encryption_alg_values_supported",
    "id_token_encryption_enc_values_supported", "userinfo_signing_alg_values_supported",
    "userinfo_encryption_alg_values_supported", "userinfo_encryption_enc_values_supported",
    "request_object_signing_alg_values_supported", "request_object_encryption_alg_values_supported",
    "request_object_encryption_enc_values_supported", "display_values_supported", "claim_types_supported",
    "claims_supported", "claims_locales_supported", "claims_parameter_supported", "request_parameter_supported",
    "request_uri_parameter_supported", "require_request_uri_registration", "require_signed_request_object",
    "pushed_authorization_request_endpoint", "require_pushed_authorization_requests",
    "authorization_response_iss_parameter_supported", "check_session_iframe", "frontchannel_logout_supported",
    "frontchannel_logout_session_supported", "backchannel_logout_supported", "backchannel_logout_session_supported",
    "end_session_endpoint", "prompt_values_supported", "dpop_signing_alg_values_supported",
    "authorization_details_types_supported", "backchannel_token_delivery_modes_supported",
    "backchannel_authentication_endpoint", "backchannel_authentication_request_signing_alg_values_supported",
    "backchannel_user_code_parameter_supported", "authorization_signing_alg_values_supported",
    "authorization_encryption_alg_values_supported", "authorization_encryption_enc_values_supported",
    "introspection_signing_alg_values_supported", "introspection_encryption_alg_values_supported",
    "introspection_encryption_enc_values_supported", "protected_resources",
}
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|\d{3}))?$")


@pytest.fixture
def metadata(client):
    resp = client.get("/.well-known/openid-configuration")
    assert resp.status_code == 200  # EnsureDiscoveryEndpointResponseStatusCodeIs200
    assert resp.mimetype == "application/json"  # CheckDiscoveryEndpointReturnedJsonContentType
    return resp.get_json()


def _under_issuer(url: str) -> bool:
    parts = urlsplit(url)
    https = parts.scheme == "https"
    loopback = parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}
    return (https or loopback) and url.startswith(ISSUER + "/") and not parts.query and not parts.fragment


def test_issuer_matches_the_discovery_url(metadata):
    discovery_url = ISSUER + "/.well-known/openid-configuration"
    assert metadata["issuer"].rstrip("/") == discovery_url[: -len("/.well-known/openid-configuration")]
    parts = urlsplit(metadata["issuer"])
    assert parts.scheme in {"https", "http"} and parts.hostname  # CheckDiscEndpointIssuerIsValidUrl
    assert parts.scheme == "https" or parts.hostname in {"127.0.0.1", "localhost"}
    assert not parts.query and not parts.fragment and not parts.username


def test_required_metadata_present(metadata):
    for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported",
                 "subject_types_supported", "id_token_signing_alg_values_supported"):
        assert name in metadata, name
    # recommended, and checked when present
    for name in ("userinfo_endpoint", "scopes_supported", "claims_supported"):
        assert name in metadata, name


def test_all_endpoints_are_https_or_loopback_under_the_issuer(metadata):
    urls = {k: v for k, v in metadata.items() if k.endswith("_endpoint") or k == "jwks_uri"}
    assert {"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"} <= set(urls)
    for name, url in urls.items():
        assert isinstance(url, str) and _under_issuer(url), (name, url)


def test_every_endpoint_answers(metadata, client):
    def path(name):
        return urlsplit(metadata[name]).path

    assert client.get(path("jwks_uri")).status_code == 200
    assert client.get(path("authorization_endpoint")).status_code == 400  # an error page, not a 404
    assert client.get(path("token_endpoint")).status_code == 405
    assert client.post(path("token_endpoint")).status_code == 400
    assert client.get(path("userinfo_endpoint")).status_code == 401
    for name in ("introspection_endpoint", "revocation_endpoint"):
        assert client.post(path(name)).status_code in {400, 401}, name
    assert client.get(path("end_session_endpoint")).status_code == 200


def test_response_types_and_modes(metadata):
    assert "code" in metadata["response_types_supported"]  # OIDCCCheckDiscEndpointResponseTypesSupported
    assert metadata["response_types_supported"] == ["code"], "we implement the code flow only"
    assert {"query", "form_post"} <= set(metadata["response_modes_supported"])
    assert "fragment" not in metadata["response_modes_supported"]


def test_subject_types(metadata):
    types = metadata["subject_types_supported"]
    assert types and set(types) <= {"public", "pairwise"}  # CheckDiscEndpointSubjectTypesSupported


def test_id_token_algs_have_published_keys(metadata, client):
    algs = metadata["id_token_signing_alg_values_supported"]
    assert "RS256" in algs  # OIDCCCheckDiscEndpointIdTokenSigningAlgValuesSupported
    assert "none" not in algs
    published = {k["alg"] for k in server_jwks(client)["keys"]}
    assert set(algs) <= published, "every advertised alg has a key to verify with"


def test_jwks_uri_serves_keys_with_kid_use_alg(metadata, client):
    assert metadata["jwks_uri"] == ISSUER + "/jwks"
    jwks = server_jwks(client)
    for key in jwks["keys"]:
        assert key["kid"] and key["use"] == "sig" and key["alg"]
        if key["kty"] == "RSA":
            assert len(key["n"]) >= 342, "RSA keys of at least 2048 bits"


def test_scopes(metadata):
    scopes = metadata["scopes_supported"]
    assert "openid" in scopes  # CheckDiscEndpointScopesSupportedContainsOpenId
    assert all(SCOPE_TOKEN.match(s) for s in scopes)  # CheckDiscEndpointScopesSupportedSyntax
    assert {"profile", "email", "address", "phone", "offline_access"} <= set(scopes)


def test_claims_supported_cover_the_scopes(metadata):
    claims = metadata["claims_supported"]
    assert isinstance(claims, list) and all(isinstance(c, str) for c in claims)
    for scope in metadata["scopes_supported"]:
        assert set(SCOPE_CLAIMS.get(scope, [])) <= set(claims), scope
    assert {"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr"} <= set(claims)


def test_grant_types_and_client_authentication(metadata):
    assert {"authorization_code", "refresh_token"} <= set(metadata["grant_types_supported"])
    assert "implicit" not in metadata["grant_types_supported"]
    methods = metadata["token_endpoint_auth_methods_supported"]
    assert {"client_secret_basic", "client_secret_post"} <= set(methods)
    assert "none" not in metadata["token_endpoint_auth_signing_alg_values_supported"]


def test_booleans_and_request_objects(metadata):
    for name in ("claims_parameter_supported", "request_parameter_supported", "request_uri_parameter_supported",
                 "require_request_uri_registration", "authorization_response_iss_parameter_supported",
                 "frontchannel_logout_supported", "backchannel_logout_supported"):
        assert isinstance(metadata[name], bool), name
    assert metadata["claims_parameter_supported"] is True
    assert metadata["authorization_response_iss_parameter_supported"] is True  # RFC 9207 §3
    assert "request_object_signing_alg_values_supported" not in metadata  # nothing is read from request objects


def test_pkce_methods(metadata):
    # EnsureServerConfigurationCodeChallengeMethodsSupportedIsAnArray; plain is refused (checks/pkce.py)
    assert metadata["code_challenge_methods_supported"] == ["S256"]


def test_locales_are_language_tags(metadata):
    for name in ("ui_locales_supported", "claims_locales_supported"):  # CheckDiscEndpointLocalesSyntax
        values = metadata[name]
        assert values and all(LANGUAGE_TAG.match(v) for v in values), (name, values)


def test_acr_display_prompt_values(metadata):
    assert metadata["acr_values_supported"] and all(isinstance(v, str) for v in metadata["acr_values_supported"])
    assert {"page", "popup"} <= set(metadata["display_values_supported"])
    assert {"none", "login", "consent"} <= set(metadata["prompt_values_supported"])


def test_only_registered_metadata_names(metadata):
    assert set(metadata) <= REGISTERED, set(metadata) - REGISTERED


def test_metadata_does_not_follow_the_host_header(client, metadata):
    resp = client.get("/.well-known/openid-configuration", headers={"Host": "evil.example.com"})
    assert resp.get_json() == metadata


def test_rfc8414_location_serves_the_same_document(client, metadata):
    resp = client.get("/.well-known/oauth-authorization-server")
    assert resp.status_code == 200 and resp.get_json() == metadata


def test_cacheable_and_cors(client):
    resp = client.get("/.well-known/openid-configuration")
    assert "max-age" in resp.headers["Cache-Control"]
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
