"""Forged id_token_hint values, at /authorize (prompt=none) and at /logout.

An attacker knows our public keys (/jwks) and can see any ID token a relying
party leaks. Every forgery below must be refused: /authorize answers the
client with an error and no code; /logout shows a page (never a redirect) and
does not end the session.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.helpers import Flow, query
from tests.security.forge import hs256_jwt, jwt_parts, unsigned_jwt, with_claims

POST_LOGOUT = "https://rp.example.com/logged-out"
CASES = [
    "alg_none_our_kid",
    "alg_none_no_kid",
    "hs256_public_pem_our_kid",
    "hs256_public_pem_no_kid",
    "hs256_public_jwk_our_kid",
    "payload_sub_changed",
    "payload_exp_extended",
    "foreign_issuer_our_key",
    "foreign_issuer_foreign_key_our_kid",
    "unknown_kid",
]


@pytest.fixture
def rp(app, client, make_user, make_client):
    make_user()
    make_user(email="ola@example.no", password="another long password", name="Ola Nordmann")
    secret = make_client(post_logout_redirect_uris=[POST_LOGOUT])
    flow = Flow(app, client, client_id="expense", client_secret=secret, redirect_uri="https://rp.example.com/callback")
    tokens = flow.tokens()  # logs in and gives consent for "openid"
    return flow, tokens["id_token"]


@pytest.fixture(scope="module")
def foreign_key():
    return RSAKey.generate_key(2048, private=True)


def _published_rsa(client) -> dict:
    keys = client.get("/jwks").get_json()["keys"]
    return next(k for k in keys if k["alg"] == "RS256")


def _other_sub(app) -> str:
    from visma_idp.storage import queries

    with app.app_context():
        return queries.user_by_email("ola@example.no").sub


def forge(case: str, *, valid: str, client, app, foreign_key) -> str:
    header, claims = jwt_parts(valid)
    published = _published_rsa(client)
    assert header["kid"] == published["kid"]  # the genuine token was signed by the published key
    pem = RSAKey.import_key(published).as_pem(private=False)
    if case == "alg_none_our_kid":
        return unsigned_jwt({"alg": "none", "kid": header["kid"], "typ": "JWT"}, claims)
    if case == "alg_none_no_kid":
        return unsigned_jwt({"alg": "none", "typ": "JWT"}, claims)
    if case == "hs256_public_pem_our_kid":
        return hs256_jwt({"alg": "HS256", "kid": header["kid"], "typ": "JWT"}, claims, pem)
    if case == "hs256_public_pem_no_kid":
        return hs256_jwt({"alg": "HS256", "typ": "JWT"}, claims, pem)
    if case == "hs256_public_jwk_our_kid":
        return hs256_jwt({"alg": "HS256", "kid": header["kid"], "typ": "JWT"}, claims, json.dumps(published).encode())
    if case == "payload_sub_changed":
        return with_claims(valid, sub=_other_sub(app))
    if case == "payload_exp_extended":
        return with_claims(valid, exp=claims["exp"] + 3600)
    if case == "foreign_issuer_our_key":
        with app.app_context():
            ours = app.extensions["visma_idp"].keys.signing_key("RS256")
            return jwt.encode({"alg": "RS256", "kid": ours.kid}, {**claims, "iss": "https://evil.example"}, ours.key)
    if case == "foreign_issuer_foreign_key_our_kid":
        return jwt.encode({"alg": "RS256", "kid": header["kid"]}, {**claims, "iss": "https://evil.example"},
                          foreign_key)
    if case == "unknown_kid":
        return jwt.encode({"alg": "RS256", "kid": "not-one-of-ours"}, claims, foreign_key)
    raise AssertionError(case)


def _session_alive(client) -> bool:
    return "Signed in as" in client.get("/").get_data(as_text=True)


# -- /authorize?prompt=none ---------------------------------------------------

def test_valid_hint_with_prompt_none_gives_a_code(rp):
    flow, valid = rp
    resp = flow.start(prompt="none", id_token_hint=valid)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(flow.redirect_uri)
    assert "code" in query(resp.headers["Location"])


@pytest.mark.parametrize("case", CASES)
def test_forged_hint_refused_at_authorize(rp, client, app, foreign_key, case):
    flow, valid = rp
    forged = forge(case, valid=valid, client=client, app=app, foreign_key=foreign_key)
    resp = flow.start(prompt="none", id_token_hint=forged)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    location = resp.headers["Location"]
    assert location.startswith(flow.redirect_uri)
    params = query(location)
    assert "code" not in params
    assert params["error"] == "invalid_request"
    assert params["state"] == flow.last["state"]


# -- /logout --------------------------------------------------------------------

def _logout(client, hint, *, with_client_id: bool):
    params = {"id_token_hint": hint, "post_logout_redirect_uri": POST_LOGOUT, "state": "s-123"}
    if with_client_id:
        params["client_id"] = "expense"
    return client.get("/logout?" + urlencode(params))


@pytest.mark.parametrize("with_client_id", [False, True])
def test_valid_hint_logs_out_and_redirects(rp, client, with_client_id):
    _flow, valid = rp
    resp = _logout(client, valid, with_client_id=with_client_id)
    assert resp.status_code == 302
    assert resp.headers["Location"] == POST_LOGOUT + "?state=s-123"
    assert not _session_alive(client)


@pytest.mark.parametrize("with_client_id", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_forged_hint_never_redirects_from_logout(rp, client, app, foreign_key, case, with_client_id):
    _flow, valid = rp
    forged = forge(case, valid=valid, client=client, app=app, foreign_key=foreign_key)
    for method in ("GET", "POST"):
        if method == "GET":
            resp = _logout(client, forged, with_client_id=with_client_id)
        else:
            data = {"id_token_hint": forged, "post_logout_redirect_uri": POST_LOGOUT, "state": "s-123"}
            resp = client.post("/logout", data=data)
        assert resp.status_code in (200, 400), (method, resp.status_code)
        assert "Location" not in resp.headers, (method, resp.headers.get("Location"))
        assert resp.mimetype == "text/html"
        # a forged hint is no proof the user wants to leave: still signed in
        assert _session_alive(client), method


def test_forged_hint_for_the_signed_in_user_does_not_skip_confirmation(rp, client, app, foreign_key):
    """An unsigned hint carrying the signed-in user's own sub must not log them out silently."""
    _flow, valid = rp
    forged = forge("alg_none_our_kid", valid=valid, client=client, app=app, foreign_key=foreign_key)
    resp = client.get("/logout?" + urlencode({"id_token_hint": forged}))
    assert "Location" not in resp.headers
    assert resp.status_code in (200, 400)
    assert _session_alive(client)


@pytest.fixture
def access_token(rp):
    flow, _valid = rp
    return flow.tokens()["access_token"]


def test_access_token_is_not_an_id_token_hint_at_authorize(rp, access_token):
    """Token confusion: our own RFC 9068 access token (typ at+jwt, aud = issuer)
    is signed by us and names the user, but it is not an ID token."""
    flow, _valid = rp
    assert jwt_parts(access_token)[0]["typ"] == "at+jwt"
    resp = flow.start(prompt="none", id_token_hint=access_token)
    params = query(resp.headers["Location"])
    assert "code" not in params
    assert params["error"] == "invalid_request"


def test_access_token_is_not_an_id_token_hint_at_logout(rp, client, access_token):
    resp = client.get("/logout?" + urlencode({"id_token_hint": access_token}))
    assert "Location" not in resp.headers
    # a resource server holding the access token must not be able to sign the user out silently
    assert _session_alive(client)
