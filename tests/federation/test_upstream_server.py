"""The upstream test provider (``upstream.mjs``, npm oidc-provider) and its
Python helper, driven with requests + Authlib only: discovery (plain, under an
Entra-like issuer path, the ``{tenantid}`` template), the code flow with PKCE
and the RFC 9207 ``iss`` parameter, the ID token's claims (custom ones, acr,
amr as a string and as an array), HS256/ES256 ID tokens, private_key_jwt
client authentication, the HTML login form and an unknown login.

Needs ``npm ci --prefix tests/interop``: without node or oidc-provider the
tests are skipped, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from tests.federation.upstream import Upstream, login_via_http, node_available

pytestmark = pytest.mark.interop

REDIRECT_URI = "http://127.0.0.1:9/callback"  # never followed
SECRET = "upstream-client-secret-0123456789abcdef"
TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
ENTRA_PATH = f"/{TENANT}/v2.0"

ACCOUNTS = {
    "kari": {
        "sub": "kari-upstream-sub",
        "email": "kari@example.no",
        "email_verified": True,
        "name": "Kari Nordmann",
        "tid": TENANT,
        "oid": "00000000-0000-0000-66f3-3332eca7ea81",
        "acr": "urn:example:mfa",
        "amr": ["pwd", "mfa"],
    },
    "ola": {
        "sub": "ola-upstream-sub",
        "pid": "01017012345",
        "nnin_altsub": "alt-01017012345",
        "acr": "idporten-loa-high",
        "amr": "BankID",
    },
    "anne": {"email": "anne@example.no"},
}


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (required in CI)")
    pytest.skip(what)


def _client(client_id: str, **extra) -> dict:
    return {
        "client_id": client_id,
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        **extra,
    }


class _JwksHandler(BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture(scope="module")
def rp_key():
    """The relying party's private_key_jwt key, its JWKS served on loopback."""
    key = RSAKey.generate_key(2048, parameters={"kid": "rp-key-1", "use": "sig", "alg": "RS256"})
    handler = type("Handler", (_JwksHandler,), {"body": json.dumps(KeySet([key]).as_dict(private=False)).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    key.jwks_uri = f"http://127.0.0.1:{server.server_address[1]}/jwks"
    try:
        yield key
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def node():
    reason = node_available()
    if reason:
        _missing(reason)


@pytest.fixture(scope="module")
def upstream(node, rp_key):
    config = {
        "scopes": ["openid", "profile", "email"],
        "acr_values": ["idporten-loa-substantial", "idporten-loa-high"],
        "accounts": ACCOUNTS,
        "clients": [
            _client("rp-basic", client_secret=SECRET),
            _client("rp-hs256", client_secret=SECRET, id_token_signed_response_alg="HS256"),
            _client("rp-es256", client_secret=SECRET, id_token_signed_response_alg="ES256"),
            _client("rp-jwt", token_endpoint_auth_method="private_key_jwt", jwks_uri=rp_key.jwks_uri),
        ],
    }
    with Upstream.start(config) as running:
        yield running


@pytest.fixture(scope="module")
def entra(node):
    config = {
        "issuer_path": ENTRA_PATH,
        "template_discovery": "/organizations/v2.0",
        "accounts": ACCOUNTS,
        "clients": [_client("rp-entra", client_secret=SECRET)],
    }
    with Upstream.start(config) as running:
        yield running


@pytest.fixture
def browser():
    with requests.Session() as session:
        yield session


def _metadata(upstream: Upstream) -> dict:
    response = requests.get(upstream.discovery_url, timeout=10)
    assert response.status_code == 200
    return response.json()


def _code_flow(upstream, browser, client_id, login, *, secret=SECRET, **params):
    """Authorize with PKCE, log in through the helper, redeem the code.
    Returns (metadata, token response, nonce, authorization response params)."""
    metadata = _metadata(upstream)
    method = "private_key_jwt" if isinstance(secret, RSAKey) else "client_secret_basic"
    with OAuth2Session(
        client_id,
        secret,
        scope="openid email profile",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method=method,
    ) as oauth:
        if method == "private_key_jwt":
            oauth.register_client_auth_method(PrivateKeyJWT(metadata["token_endpoint"]))
        verifier = generate_token(48)
        nonce = generate_token(20)
        url, state = oauth.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **params)
        redirect = login_via_http(browser, url, login)
        assert redirect.startswith(REDIRECT_URI + "?")
        response = {key: values[0] for key, values in parse_qs(urlsplit(redirect).query).items()}
        assert response["state"] == state
        token = oauth.fetch_token(metadata["token_endpoint"], authorization_response=redirect, code_verifier=verifier)
    return metadata, token, nonce, response


def _id_token_claims(metadata, token, nonce, client_id, key=None, alg="RS256") -> dict:
    if key is None:
        key = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(token["id_token"], key, algorithms=[alg])
    assert decoded.header["alg"] == alg
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True},
        exp={"essential": True},
    ).validate(decoded.claims)
    return decoded.claims


def test_discovery(upstream):
    metadata = _metadata(upstream)
    assert metadata["issuer"] == upstream.issuer == f"http://127.0.0.1:{upstream.port}"
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert {"RS256", "ES256", "HS256"} <= set(metadata["id_token_signing_alg_values_supported"])
    assert {"client_secret_basic", "private_key_jwt"} <= set(metadata["token_endpoint_auth_methods_supported"])
    assert {"sub", "email", "tid", "oid", "pid", "nnin_altsub", "acr", "amr"} <= set(metadata["claims_supported"])
    assert {"idporten-loa-substantial", "idporten-loa-high", "urn:example:mfa"} <= set(metadata["acr_values_supported"])
    keys = requests.get(metadata["jwks_uri"], timeout=10).json()["keys"]
    assert {key["kty"] for key in keys} == {"RSA", "EC"}
    assert all("d" not in key for key in keys)


def test_entra_prefix_discovery_and_template(entra):
    assert entra.issuer == f"http://127.0.0.1:{entra.port}{ENTRA_PATH}"
    metadata = _metadata(entra)
    assert metadata["issuer"] == entra.issuer
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        assert metadata[endpoint].startswith(entra.issuer + "/"), endpoint
    template = requests.get(f"{entra.origin}/organizations/v2.0/.well-known/openid-configuration", timeout=10)
    assert template.status_code == 200
    assert template.json()["issuer"] == f"http://127.0.0.1:{entra.port}/{{tenantid}}/v2.0"
    assert template.json()["jwks_uri"] == metadata["jwks_uri"]
    assert requests.get(f"{entra.origin}/.well-known/openid-configuration", timeout=10).status_code == 404


def test_entra_code_flow_under_the_prefix(entra, browser):
    metadata, token, nonce, response = _code_flow(entra, browser, "rp-entra", "kari")
    assert response["iss"] == entra.issuer
    claims = _id_token_claims(metadata, token, nonce, "rp-entra")
    assert claims["tid"] == TENANT
    assert claims["oid"] == ACCOUNTS["kari"]["oid"]
    assert claims["sub"] == "kari-upstream-sub"
    # the session cookie works under the prefix too: a second round is SSO
    _, token2, nonce2, _ = _code_flow(entra, browser, "rp-entra", "nobody-asked")
    assert _id_token_claims(metadata, token2, nonce2, "rp-entra")["sub"] == "kari-upstream-sub"


def test_code_flow_client_secret_basic_carries_every_claim(upstream, browser):
    metadata, token, nonce, response = _code_flow(upstream, browser, "rp-basic", "kari")
    assert response["iss"] == upstream.issuer
    assert token["token_type"].lower() == "bearer"
    claims = _id_token_claims(metadata, token, nonce, "rp-basic")
    expected = ACCOUNTS["kari"]
    assert {name: claims.get(name) for name in expected} == expected
    assert claims["amr"] == ["pwd", "mfa"]
    assert "auth_time" in claims


def test_id_porten_like_account_with_string_amr(upstream, browser):
    metadata, token, nonce, response = _code_flow(upstream, browser, "rp-basic", "ola", acr_values="idporten-loa-high")
    assert response["iss"] == upstream.issuer
    claims = _id_token_claims(metadata, token, nonce, "rp-basic")
    assert claims["pid"] == "01017012345"
    assert claims["nnin_altsub"] == "alt-01017012345"
    assert claims["acr"] == "idporten-loa-high"
    assert claims["amr"] == "BankID"


def test_account_without_sub_acr_or_amr(upstream, browser):
    metadata, token, nonce, _ = _code_flow(upstream, browser, "rp-basic", "anne")
    claims = _id_token_claims(metadata, token, nonce, "rp-basic")
    assert claims["sub"] == "anne"
    assert claims["email"] == "anne@example.no"
    assert "acr" not in claims and "amr" not in claims


def test_hs256_id_token(upstream, browser):
    metadata, token, nonce, _ = _code_flow(upstream, browser, "rp-hs256", "kari")
    claims = _id_token_claims(metadata, token, nonce, "rp-hs256", key=OctKey.import_key(SECRET), alg="HS256")
    assert claims["tid"] == TENANT


def test_es256_id_token(upstream, browser):
    metadata, token, nonce, _ = _code_flow(upstream, browser, "rp-es256", "ola")
    assert _id_token_claims(metadata, token, nonce, "rp-es256", alg="ES256")["pid"] == "01017012345"


def test_private_key_jwt_client_authentication(upstream, browser, rp_key):
    metadata, token, nonce, _ = _code_flow(upstream, browser, "rp-jwt", "kari", secret=rp_key)
    assert _id_token_claims(metadata, token, nonce, "rp-jwt")["sub"] == "kari-upstream-sub"


def test_private_key_jwt_with_a_foreign_key_is_refused(upstream, browser):
    other = RSAKey.generate_key(2048, parameters={"kid": "rp-key-1"})
    with pytest.raises(Exception, match="invalid_client"):
        _code_flow(upstream, browser, "rp-jwt", "kari", secret=other)


def test_sso_and_prompt_consent_need_no_page(upstream, browser):
    _code_flow(upstream, browser, "rp-basic", "kari")
    for params in ({}, {"prompt": "consent"}):
        metadata, token, nonce, _ = _code_flow(upstream, browser, "rp-basic", "ignored", **params)
        assert _id_token_claims(metadata, token, nonce, "rp-basic")["sub"] == "kari-upstream-sub"


def _authorization_url(upstream, client_id="rp-basic") -> str:
    metadata = _metadata(upstream)
    with OAuth2Session(client_id, SECRET, scope="openid", redirect_uri=REDIRECT_URI, code_challenge_method="S256") as oauth:
        url, _ = oauth.create_authorization_url(metadata["authorization_endpoint"], code_verifier=generate_token(48))
    return url


def _start_authorization(upstream, browser, client_id="rp-basic") -> str:
    """GET an authorize URL; returns the interaction page URL it leads to."""
    url = _authorization_url(upstream, client_id)
    response = browser.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 303
    location = urljoin(url, response.headers["Location"])
    assert "/interaction/" in location
    return location


@pytest.mark.parametrize("which", ["upstream", "entra"])
def test_html_login_form(request, browser, which):
    upstream = request.getfixturevalue(which)
    page_url = _start_authorization(upstream, browser, "rp-entra" if which == "entra" else "rp-basic")
    page = browser.get(page_url, timeout=10)
    assert page.status_code == 200
    assert 'name="login"' in page.text and 'id="upstream-login"' in page.text
    action = f"{page_url}/login"
    assert f'action="{urlsplit(action).path}"' in page.text
    response = browser.post(action, data={"login": "ola"}, allow_redirects=False, timeout=10)
    assert response.status_code == 303
    resumed = browser.get(urljoin(action, response.headers["Location"]), allow_redirects=False, timeout=10)
    assert resumed.status_code == 303
    back = parse_qs(urlsplit(resumed.headers["Location"]).query)
    assert resumed.headers["Location"].startswith(REDIRECT_URI + "?")
    assert back["iss"] == [upstream.issuer] and back["code"]


@pytest.mark.parametrize("how", ["auto", "form"])
def test_unknown_login_is_400(upstream, browser, how):
    page_url = _start_authorization(upstream, browser)
    if how == "auto":
        response = browser.get(f"{page_url}/auto", params={"login": "nobody"}, timeout=10)
    else:
        response = browser.post(f"{page_url}/login", data={"login": "nobody"}, timeout=10)
    assert response.status_code == 400
    assert "unknown account" in response.text
    with pytest.raises(RuntimeError, match="400"):
        login_via_http(browser, _authorization_url(upstream), "nobody")


def test_pkce_is_required(upstream, browser):
    metadata = _metadata(upstream)
    with OAuth2Session("rp-basic", SECRET, scope="openid", redirect_uri=REDIRECT_URI) as oauth:
        url, _ = oauth.create_authorization_url(metadata["authorization_endpoint"])
    redirect = login_via_http(browser, url, "kari")
    assert parse_qs(urlsplit(redirect).query)["error"] == ["invalid_request"]


def test_process_exits_when_stdin_closes_and_on_sigterm(node):
    config = {"accounts": {"x": {}}, "clients": [_client("c", client_secret=SECRET)]}
    with Upstream.start(config) as first:
        first.process.stdin.close()
        assert first.process.wait(timeout=10) == 0
    second = Upstream.start(config)
    second.stop()
    assert second.process.returncode == 0
    assert not second.workdir.exists()
