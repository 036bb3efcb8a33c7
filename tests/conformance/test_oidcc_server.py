"""oidcc-server (OIDCCServerTest): the basic code flow.

The callback carries code, state and iss; the code has at least 128 bits; the
token response is 200 JSON with ``Cache-Control: no-store`` and
``Pragma: no-cache``, a Bearer access token and ``expires_in``; the ID token
is signed with a key of the JWKS (found by ``kid``) and has iss, aud, exp,
iat, sub, nonce and auth_time right; at_hash (optional from the token
endpoint) matches the access token; c_hash, when present, would have to match
the code; the ID token carries no claims that were not requested; the access
token works at the userinfo endpoint.
"""

import base64
import json
from urllib.parse import quote

import pytest
from joserfc.errors import BadSignatureError

from tests.conformance.oidf import (
    CLIENT_ID,
    ISSUER,
    REDIRECT_URI,
    b64url_json,
    check_token_error,
    half_hash,
    run_code_flow,
    server_jwks,
    userinfo,
    verify_id_token,
)
from tests.helpers import Flow


def test_code_flow(oidf, idp):
    before = idp.clock.now()
    result = run_code_flow(oidf, idp)
    claims = result.claims

    assert claims["iss"] == ISSUER
    assert claims["aud"] == "oidf-client"
    assert claims["nonce"] == result.nonce
    # auth_time: the login just made through the forms
    assert before <= claims["auth_time"] <= idp.clock.now()
    assert claims["exp"] > claims["iat"]
    # at_hash over the access token with the ID token's alg (SHA-256 for RS256)
    assert claims["at_hash"] == half_hash(result.tokens["access_token"], "RS256")
    assert set(claims) <= {"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid",
                           "at_hash"}


def test_id_token_kid_names_a_signing_key_of_the_jwks(oidf, idp, client):
    result = run_code_flow(oidf, idp)
    jwks = server_jwks(client)
    key = next(k for k in jwks["keys"] if k["kid"] == result.id_token.header["kid"])
    assert key["use"] == "sig" and key["alg"] == "RS256" and key["kty"] == "RSA"


def test_tampered_id_token_does_not_verify(oidf, idp, client):
    """The independent verifier every module here relies on does refuse a forgery."""
    result = run_code_flow(oidf, idp)
    header, payload, signature = result.id_token.raw.split(".")
    claims = b64url_json(payload)
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(BadSignatureError):
        verify_id_token(client, f"{header}.{forged}.{signature}")


def test_same_sub_at_userinfo_and_for_each_login(oidf, idp, client):
    first = run_code_flow(oidf, idp)
    second = run_code_flow(oidf, idp)
    assert first.claims["sub"] == second.claims["sub"]
    assert first.code != second.code
    info = userinfo(client, second.tokens["access_token"]).get_json()
    assert info["sub"] == first.claims["sub"]


def test_no_refresh_token_without_offline_access(oidf, idp):
    result = run_code_flow(oidf, idp)
    assert "refresh_token" not in result.tokens
    assert result.tokens["scope"].split() == ["openid"]


def test_basic_credentials_are_form_encoded(app, client, idp, make_user, make_oidf_client):
    """RFC 6749 §2.3.1: client_id and secret are form-urlencoded before Basic
    (the suite's AddBasicAuthClientSecretAuthenticationParameters does so)."""
    secret = "s3cr3t:with/special+chars%and=more"
    make_user()
    make_oidf_client(secret=secret)
    flow = Flow(app, client, client_id=CLIENT_ID, client_secret=None, redirect_uri=REDIRECT_URI)
    params = flow.authorize(code_challenge=None, code_challenge_method=None)
    raw = f"{quote(CLIENT_ID, safe='')}:{quote(secret, safe='')}".encode()
    resp = client.post("/token", data={"grant_type": "authorization_code", "code": params["code"],
                                       "redirect_uri": REDIRECT_URI},
                       headers={"Authorization": "Basic " + base64.b64encode(raw).decode()})
    assert resp.status_code == 200, resp.get_json()


def test_token_request_with_another_redirect_uri_is_invalid_grant(oidf, idp):
    """RFC 6749 §4.1.3: the redirect_uri of the token request is the one the code was issued for."""
    params = oidf.authorize(code_challenge=None, code_challenge_method=None)
    resp = oidf.token(params["code"], verifier=None, redirect_uri=REDIRECT_URI + "/other")
    check_token_error(resp, "invalid_grant")
