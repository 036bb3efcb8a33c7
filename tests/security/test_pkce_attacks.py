"""PKCE (RFC 7636, RFC 9700 §2.1.1): S256 only, required by default, and the
verifier must match the challenge stored with the code."""

from __future__ import annotations

import base64

import pytest

from tests.helpers import Flow, pkce_pair, query

REDIRECT = "https://rp.example.com/callback"


def refused_at_authorize(resp, error="invalid_request"):
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    params = query(location)
    assert "code" not in params
    assert params["error"] == error, params
    return params


def token_error(resp):
    assert resp.status_code in (400, 401), resp.status_code
    body = resp.get_json()
    assert "access_token" not in body and "id_token" not in body
    return body["error"]


@pytest.fixture
def no_pkce_rp(app, client, flow, make_client):
    """A confidential client that opted out of PKCE."""
    secret = make_client("legacy", require_pkce=False)
    return Flow(app, client, client_id="legacy", client_secret=secret, redirect_uri=REDIRECT)


@pytest.fixture
def public_rp(app, client, flow, make_client):
    make_client("spa", public=True)
    return Flow(app, client, client_id="spa", client_secret=None, redirect_uri=REDIRECT)


def test_s256_flow_works(flow):
    assert "access_token" in flow.tokens()


def test_plain_method_refused(flow):
    verifier, _ = pkce_pair()
    params = refused_at_authorize(flow.start(code_challenge=verifier, code_challenge_method="plain"))
    assert params["state"] == flow.last["state"]


@pytest.mark.parametrize("method", ["s256", "S512", "", "none"])
def test_other_methods_refused(flow, method):
    refused_at_authorize(flow.start(code_challenge_method=method))


def test_missing_method_refused(flow):
    # RFC 7636 §4.3: no method means plain
    refused_at_authorize(flow.start(code_challenge_method=None))


def test_method_without_challenge_refused(flow):
    refused_at_authorize(flow.start(code_challenge=None))


def test_public_client_without_challenge_refused(public_rp):
    refused_at_authorize(public_rp.start(code_challenge=None, code_challenge_method=None))


def test_public_client_with_s256_works(public_rp, client):
    params = public_rp.authorize()
    resp = client.post("/token", data={"grant_type": "authorization_code", "code": params["code"], "client_id": "spa",
                                       "redirect_uri": REDIRECT, "code_verifier": public_rp.last["verifier"]})
    assert resp.status_code == 200, resp.get_data(as_text=True)


def test_confidential_client_without_challenge_refused_by_default(flow):
    refused_at_authorize(flow.start(code_challenge=None, code_challenge_method=None))


def test_confidential_client_may_opt_out(no_pkce_rp):
    params = no_pkce_rp.authorize(code_challenge=None, code_challenge_method=None)
    resp = no_pkce_rp.token(params["code"], verifier=None)
    assert resp.status_code == 200, resp.get_data(as_text=True)


def test_opted_out_client_still_cannot_use_plain(no_pkce_rp):
    verifier, _ = pkce_pair()
    refused_at_authorize(no_pkce_rp.start(code_challenge=verifier, code_challenge_method="plain"))


def test_verifier_without_challenge_refused(no_pkce_rp):
    """RFC 9700 §4.8.2: a code_verifier for a code issued without challenge is refused
    (an attacker injecting a stolen code cannot make it look PKCE-protected)."""
    params = no_pkce_rp.authorize(code_challenge=None, code_challenge_method=None)
    verifier, _ = pkce_pair()
    assert token_error(no_pkce_rp.token(params["code"], verifier=verifier)) in ("invalid_request", "invalid_grant")


def test_challenge_without_verifier_refused(flow):
    params = flow.authorize()
    assert token_error(flow.token(params["code"], verifier=None)) in ("invalid_request", "invalid_grant")


def test_challenge_without_verifier_refused_for_public_client(public_rp, client):
    params = public_rp.authorize()
    resp = client.post("/token", data={"grant_type": "authorization_code", "code": params["code"], "client_id": "spa",
                                       "redirect_uri": REDIRECT})
    assert token_error(resp) in ("invalid_request", "invalid_grant")


def test_wrong_verifier_refused(flow):
    params = flow.authorize()
    other_verifier, _ = pkce_pair()
    assert token_error(flow.token(params["code"], verifier=other_verifier)) == "invalid_grant"


def test_challenge_itself_as_verifier_refused(flow):
    """The plain-downgrade trick: send the (public) challenge as the verifier."""
    _verifier, challenge = pkce_pair()
    params = flow.authorize(code_challenge=challenge)
    assert token_error(flow.token(params["code"], verifier=challenge)) == "invalid_grant"


def test_malformed_verifier_refused(flow):
    params = flow.authorize()
    bad = base64.b64encode(b"x" * 40).decode()  # '+', '/', '=' are outside the verifier alphabet
    assert token_error(flow.token(params["code"], verifier=bad)) in ("invalid_request", "invalid_grant")
