"""private_key_jwt (RFC 7523) client authentication against forged assertions.

A valid assertion from the client's own key works; everything else is
invalid_client and gives no token: alg none, HS256 keyed by the client's
public key, a replayed jti, a wrong audience, an expired assertion, a key the
client never registered, an embedded ``jwk`` header.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.security.forge import hs256_jwt, unsigned_jwt

TOKEN_URL = "http://127.0.0.1:5000/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ID = "payroll-sync"


@pytest.fixture(scope="module")
def client_key():
    return RSAKey.generate_key(2048, parameters={"kid": "payroll-1"}, private=True)


@pytest.fixture(scope="module")
def attacker_key():
    return RSAKey.generate_key(2048, parameters={"kid": "payroll-1"}, private=True)


@pytest.fixture
def jwt_client(make_client, client_key):
    make_client(CLIENT_ID, token_endpoint_auth_method="private_key_jwt",
                jwks={"keys": [client_key.as_dict(private=False)]},
                grant_types=["client_credentials"], redirect_uris=[], scope="payroll.read")
    return CLIENT_ID


def claims(**changes):
    now = int(time.time())
    values = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": TOKEN_URL, "iat": now, "exp": now + 60,
              "jti": secrets.token_urlsafe(16)}
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def signed(key, **changes) -> str:
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims(**changes), key)


def token_request(client, assertion: str):
    return client.post("/token", data={
        "grant_type": "client_credentials", "scope": "payroll.read",
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion,
    })


def assert_refused(resp):
    body = resp.get_json()
    assert resp.status_code in (400, 401), resp.status_code
    assert body["error"] == "invalid_client", body
    assert "access_token" not in body


def test_valid_assertion_gets_a_token(client, jwt_client, client_key):
    resp = token_request(client, signed(client_key))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "payroll.read"


def test_issuer_as_audience_is_accepted_too(client, jwt_client, client_key):
    assert token_request(client, signed(client_key, aud="http://127.0.0.1:5000")).status_code == 200


def test_alg_none_refused(client, jwt_client, client_key):
    for header in ({"alg": "none"}, {"alg": "none", "kid": client_key.kid}, {"alg": "None", "kid": client_key.kid}):
        assert_refused(token_request(client, unsigned_jwt(header, claims())))


def test_hs256_keyed_by_client_public_key_refused(client, jwt_client, client_key):
    pem = client_key.as_pem(private=False)
    public_json = json.dumps(client_key.as_dict(private=False)).encode()
    for key in (pem, public_json):
        for header in ({"alg": "HS256", "kid": client_key.kid}, {"alg": "HS256"}):
            assert_refused(token_request(client, hs256_jwt(header, claims(), key)))


def test_replayed_jti_refused(client, jwt_client, client_key):
    assertion = signed(client_key)
    assert token_request(client, assertion).status_code == 200
    assert_refused(token_request(client, assertion))
    # the same jti in a freshly signed assertion is a replay too
    jti = secrets.token_urlsafe(16)
    assert token_request(client, signed(client_key, jti=jti)).status_code == 200
    assert_refused(token_request(client, signed(client_key, jti=jti, exp=int(time.time()) + 90)))


def test_missing_jti_refused(client, jwt_client, client_key):
    assert_refused(token_request(client, signed(client_key, jti=None)))


@pytest.mark.parametrize("aud", [
    "https://evil.example/token",
    "http://127.0.0.1:5000/introspect",
    "http://127.0.0.1:5000/token/",
    ["https://evil.example/token"],
])
def test_wrong_audience_refused(client, jwt_client, client_key, aud):
    assert_refused(token_request(client, signed(client_key, aud=aud)))


def test_expired_assertion_refused(client, jwt_client, client_key):
    now = int(time.time())
    assert_refused(token_request(client, signed(client_key, iat=now - 600, exp=now - 300)))


def test_missing_exp_refused(client, jwt_client, client_key):
    assert_refused(token_request(client, signed(client_key, exp=None)))


def test_unregistered_key_refused(client, jwt_client, attacker_key):
    # same kid as the client's real key, different key material
    assert_refused(token_request(client, signed(attacker_key)))


def test_embedded_jwk_header_is_not_trusted(client, jwt_client, attacker_key):
    header = {"alg": "RS256", "kid": "attacker", "jwk": attacker_key.as_dict(private=False)}
    assert_refused(token_request(client, jwt.encode(header, claims(), attacker_key)))


def test_iss_and_sub_must_both_be_the_client(client, jwt_client, client_key):
    assert_refused(token_request(client, signed(client_key, iss="someone-else")))
