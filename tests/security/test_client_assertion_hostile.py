"""private_key_jwt on hostile input: never a 500, never a traceback.

Whatever an unauthenticated caller puts in ``client_assertion``, and whatever
state the named client's registered keys are in, ``/token``, ``/introspect``
and ``/revoke`` answer ``invalid_client`` with 401 and log no error: a client
without keys, a private_key_jwt client whose ``jwks`` is null or malformed,
keys of the wrong type, a ``kid`` that is not registered, a garbage header or
payload.

The assertion's lifetime is capped (``CLIENT_ASSERTION_MAX_LIFETIME``), and
every time check (``exp``, ``nbf``, ``iat`` in the future, the cap) runs on the
app clock (``idp.clock``), never on the machine's.
"""

from __future__ import annotations

import json
import logging
import secrets

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from tests.security.forge import b64url

ISSUER = "http://127.0.0.1:5000"
TOKEN_URL = ISSUER + "/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ENDPOINTS = ("/token", "/introspect", "/revoke")
JWT_CLIENT = "payroll-sync"
SECRET_CLIENT = "expense"


@pytest.fixture(scope="module")
def rsa_key():
    return RSAKey.generate_key(2048, parameters={"kid": "payroll-1"}, private=True)


@pytest.fixture(scope="module")
def ec_key():
    return ECKey.generate_key("P-256", parameters={"kid": "payroll-ec"}, private=True)


@pytest.fixture
def quiet(app, caplog):
    """Server errors reach the log (and the caller as a 500), as in production."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    caplog.set_level(logging.INFO)
    return caplog


@pytest.fixture
def clients(make_client, rsa_key):
    make_client(JWT_CLIENT, token_endpoint_auth_method="private_key_jwt",
                jwks={"keys": [rsa_key.as_dict(private=False)]},
                grant_types=["client_credentials"], redirect_uris=[], scope="payroll.read")
    make_client(SECRET_CLIENT, grant_types=["client_credentials"], redirect_uris=[], scope="api:read")


def set_jwks(app, client_id: str, jwks) -> None:
    """Write a client's jwks column directly, as an old row or a hand edit could have it."""
    from sqlalchemy import update

    from visma_idp.storage import Client, db

    with app.app_context():
        db.session.execute(update(Client).where(Client.client_id == client_id).values(jwks=jwks))
        db.session.commit()
        app.extensions["visma_idp"].clients.invalidate(client_id)


def claims(idp, client_id: str = JWT_CLIENT, **changes) -> dict:
    now = idp.clock.now()
    values = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "iat": now, "exp": now + 60,
              "jti": secrets.token_urlsafe(16)}
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def signed(key, idp, *, alg: str = "RS256", header: dict | None = None, **changes) -> str:
    return jwt.encode(header or {"alg": alg, "kid": key.kid}, claims(idp, **changes), key)


def call(client, path: str, assertion: str):
    data = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    if path == "/token":
        data.update(grant_type="client_credentials", scope="payroll.read")
    else:
        data["token"] = "some-token-value"
    return client.post(path, data=data)


def assert_quietly_refused(client, caplog, assertion: str) -> None:
    for path in ENDPOINTS:
        caplog.clear()
        resp = call(client, path, assertion)
        assert resp.status_code == 401, (path, resp.status_code, resp.get_data(as_text=True)[:300])
        body = resp.get_json()
        assert body["error"] == "invalid_client", (path, body)
        assert "access_token" not in body and "active" not in body
        loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert not loud, (path, [(r.name, r.getMessage()[:200]) for r in loud])


def test_a_valid_assertion_still_works_at_every_endpoint(client, clients, idp, rsa_key, quiet):
    for path in ENDPOINTS:
        resp = call(client, path, signed(rsa_key, idp))
        assert resp.status_code == 200, (path, resp.get_data(as_text=True))


def test_client_without_keys_named_in_an_assertion(client, clients, idp, rsa_key, quiet):
    """The reported 500: joserfc's MissingKeyError for a client that has no JWKS."""
    assertion = signed(rsa_key, idp, client_id=SECRET_CLIENT)
    assert_quietly_refused(client, quiet, assertion)


def test_private_key_jwt_client_whose_jwks_is_null(app, client, clients, idp, rsa_key, quiet):
    set_jwks(app, JWT_CLIENT, None)
    assert_quietly_refused(client, quiet, signed(rsa_key, idp))


@pytest.mark.parametrize("jwks", [
    {"keys": []},
    {"keys": "not-a-list"},
    {"no_keys": True},
    ["not", "an", "object"],
    "a string",
    {"keys": [1, 2]},
    {"keys": [{}]},
    {"keys": [{"kty": "RSA", "n": "!!!not-base64!!!", "e": "AQAB", "kid": "payroll-1"}]},
    {"keys": [{"kty": "RSA", "kid": "payroll-1"}]},
    {"keys": [{"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA", "kid": "payroll-1"}]},
    {"keys": [{"kty": "RSA", "n": 5, "e": ["AQAB"], "kid": "payroll-1"}]},
    {"keys": [{"kty": "unknown-type", "kid": "payroll-1"}]},
], ids=lambda v: json.dumps(v)[:40])
def test_malformed_jwks_row(app, client, clients, idp, rsa_key, quiet, jwks):
    set_jwks(app, JWT_CLIENT, jwks)
    assert_quietly_refused(client, quiet, signed(rsa_key, idp))


def test_an_unusable_jwks_is_a_warning_naming_the_client(app, client, clients, idp, rsa_key, quiet):
    """The operator learns why the client cannot sign in; the caller learns nothing more."""
    set_jwks(app, JWT_CLIENT, {"keys": "not-a-list"})
    quiet.clear()
    assert call(client, "/token", signed(rsa_key, idp)).status_code == 401
    warned = [r for r in quiet.records if r.levelno == logging.WARNING and JWT_CLIENT in r.getMessage()]
    assert warned, [r.getMessage() for r in quiet.records]
    assert not any(r.exc_info for r in warned)


@pytest.mark.parametrize("jwks", [
    {"keys": []},
    {"keys": "not-a-list"},
    {"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}]},
    {"keys": [{"kty": "RSA", "n": "!!!", "e": "AQAB"}]},
], ids=["empty", "not-a-list", "symmetric", "broken-rsa"])
def test_registration_refuses_an_unusable_jwks(app, jwks):
    from visma_idp.errors import InvalidInput
    from visma_idp.oidc.registration import create_client

    with app.app_context(), pytest.raises(InvalidInput, match="jwks"):
        create_client(JWT_CLIENT, token_endpoint_auth_method="private_key_jwt", jwks=jwks,
                      grant_types=["client_credentials"], redirect_uris=[], scope="payroll.read")


def test_registration_refuses_a_private_key(app, rsa_key):
    """Only the client's public keys belong on the server."""
    from visma_idp.errors import InvalidInput
    from visma_idp.oidc.registration import create_client

    with app.app_context(), pytest.raises(InvalidInput, match="private"):
        create_client(JWT_CLIENT, token_endpoint_auth_method="private_key_jwt",
                      jwks={"keys": [rsa_key.as_dict(private=True)]},
                      grant_types=["client_credentials"], redirect_uris=[], scope="payroll.read")


def test_registered_key_of_another_type(app, client, clients, idp, rsa_key, ec_key, quiet):
    """An EC key registered under the kid the RS256 assertion names, and the other way round."""
    set_jwks(app, JWT_CLIENT, {"keys": [{**ec_key.as_dict(private=False), "kid": rsa_key.kid}]})
    assert_quietly_refused(client, quiet, signed(rsa_key, idp))
    assert_quietly_refused(client, quiet, signed(rsa_key, idp, header={"alg": "RS256"}))
    set_jwks(app, JWT_CLIENT, {"keys": [{**rsa_key.as_dict(private=False), "kid": ec_key.kid}]})
    assert_quietly_refused(client, quiet, signed(ec_key, idp, alg="ES256"))


def test_symmetric_or_okp_key_registered(app, client, clients, idp, rsa_key, quiet):
    oct_key = OctKey.generate_key(256, parameters={"kid": "payroll-1"})
    set_jwks(app, JWT_CLIENT, {"keys": [oct_key.as_dict()]})
    assert_quietly_refused(client, quiet, signed(rsa_key, idp))
    okp_key = OKPKey.generate_key("Ed25519", parameters={"kid": "payroll-1"}, private=True)
    set_jwks(app, JWT_CLIENT, {"keys": [okp_key.as_dict(private=False)]})
    assert_quietly_refused(client, quiet, signed(rsa_key, idp))


def test_kid_not_in_the_registered_set(client, clients, idp, rsa_key, quiet):
    assert_quietly_refused(client, quiet, signed(rsa_key, idp, header={"alg": "RS256", "kid": "not-registered"}))


def _seg(value) -> str:
    """One base64url segment: JSON-encode anything that is not already bytes."""
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return b64url(raw)


GARBAGE = {
    "header_is_a_list": lambda c: f"{_seg(['alg'])}.{_seg(c)}.c2ln",
    "header_is_a_string": lambda c: f"{_seg('alg')}.{_seg(c)}.c2ln",
    "header_is_a_number": lambda c: f"{_seg(5)}.{_seg(c)}.c2ln",
    "header_alg_is_a_number": lambda c: f"{_seg({'alg': 5, 'kid': 'payroll-1'})}.{_seg(c)}.c2ln",
    "header_alg_is_a_list": lambda c: f"{_seg({'alg': ['RS256'], 'kid': 'payroll-1'})}.{_seg(c)}.c2ln",
    "header_kid_is_an_object": lambda c: f"{_seg({'alg': 'RS256', 'kid': {'a': 1}})}.{_seg(c)}.c2ln",
    "header_kid_is_a_list": lambda c: f"{_seg({'alg': 'RS256', 'kid': ['payroll-1']})}.{_seg(c)}.c2ln",
    "header_crit_unknown": lambda c: f"{_seg({'alg': 'RS256', 'kid': 'payroll-1', 'crit': ['x'], 'x': 1})}"
                                     f".{_seg(c)}.c2ln",
    "header_crit_not_a_list": lambda c: f"{_seg({'alg': 'RS256', 'kid': 'payroll-1', 'crit': 7})}.{_seg(c)}.c2ln",
    "header_not_json": lambda c: f"{_seg(b'{not json')}.{_seg(c)}.c2ln",
    "header_not_utf8": lambda c: f"{_seg(bytes([0xff, 0xfe, 0x00]))}.{_seg(c)}.c2ln",
    "header_not_base64": lambda c: f"!!!.{_seg(c)}.c2ln",
    "header_alg_none": lambda c: f"{_seg({'alg': 'none'})}.{_seg(c)}.",
    "header_alg_hs256": lambda c: f"{_seg({'alg': 'HS256', 'kid': 'payroll-1'})}.{_seg(c)}.c2ln",
    "payload_is_a_list": lambda c: f"{_seg({'alg': 'RS256', 'kid': 'payroll-1'})}.{_seg([c])}.c2ln",
    "payload_sub_is_a_list": lambda c: f"{_seg({'alg': 'RS256', 'kid': 'payroll-1'})}.{_seg({**c, 'sub': [c['sub']]})}.c2ln",
    "payload_sub_is_null": lambda c: f"{_seg({'alg': 'RS256', 'kid': 'payroll-1'})}.{_seg({**c, 'sub': None})}.c2ln",
    "signature_not_base64": lambda c: f"{_seg({'alg': 'RS256', 'kid': 'payroll-1'})}.{_seg(c)}.!!!",
    "two_parts": lambda c: f"{_seg({'alg': 'RS256'})}.{_seg(c)}",
    "four_parts": lambda c: f"{_seg({'alg': 'RS256'})}.{_seg(c)}.c2ln.c2ln",
    "huge": lambda c: "a" * 70_000,
    "non_ascii": lambda c: "\u00e9\u00e9.\u00e9.\u00e9",
    "empty_parts": lambda c: "..",
    "nul_bytes": lambda c: f"{_seg({'alg': 'RS256'})}\x00.{_seg(c)}.c2ln",
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_garbage_assertion(client, clients, idp, quiet, case):
    assert_quietly_refused(client, quiet, GARBAGE[case](claims(idp)))


@pytest.mark.parametrize("case", ["header_kid_is_an_object", "header_kid_is_a_list", "header_alg_is_a_number"])
def test_garbage_header_with_a_real_signature(client, clients, idp, rsa_key, quiet, case):
    """The same header tricks on an assertion the client's own key really signed."""
    header = {"header_kid_is_an_object": {"alg": "RS256", "kid": {"a": 1}},
              "header_kid_is_a_list": {"alg": "RS256", "kid": [rsa_key.kid]},
              "header_alg_is_a_number": {"alg": 5, "kid": rsa_key.kid}}[case]
    signing_input = f"{_seg(header)}.{_seg(claims(idp))}"
    from joserfc.jws import JWSRegistry

    signature = JWSRegistry().get_alg("RS256").sign(signing_input.encode(), rsa_key)
    assert_quietly_refused(client, quiet, f"{signing_input}.{b64url(signature)}")


# -- lifetime and the app clock ----------------------------------------------------


def test_lifetime_cap(client, clients, idp, rsa_key, quiet):
    cap = idp.settings["CLIENT_ASSERTION_MAX_LIFETIME"]
    now = idp.clock.now()
    assert call(client, "/token", signed(rsa_key, idp, iat=now, exp=now + cap)).status_code == 200
    assert_quietly_refused(client, quiet, signed(rsa_key, idp, iat=now, exp=now + cap + 1))
    assert_quietly_refused(client, quiet, signed(rsa_key, idp, iat=now, exp=now + 30 * 24 * 3600))


def test_lifetime_cap_without_iat_counts_from_now(client, clients, idp, rsa_key, quiet):
    """iat is optional (RFC 7523 §3): without it the cap is measured from the time we receive it."""
    cap = idp.settings["CLIENT_ASSERTION_MAX_LIFETIME"]
    now = idp.clock.now()
    assert call(client, "/token", signed(rsa_key, idp, iat=None, exp=now + 60)).status_code == 200
    assert_quietly_refused(client, quiet, signed(rsa_key, idp, iat=None, exp=now + cap + 60))


def test_lifetime_cap_is_a_setting(make_app, make_client, idp, rsa_key):
    other = make_app(keys=True, CLIENT_ASSERTION_MAX_LIFETIME=3600)
    with other.app_context():
        from visma_idp.oidc.registration import create_client
        from visma_idp.storage import db

        create_client(JWT_CLIENT, token_endpoint_auth_method="private_key_jwt",
                      jwks={"keys": [rsa_key.as_dict(private=False)]},
                      grant_types=["client_credentials"], redirect_uris=[], scope="payroll.read")
        db.session.commit()
    now = idp.clock.now()
    resp = call(other.test_client(), "/token", signed(rsa_key, idp, iat=now, exp=now + 1800))
    assert resp.status_code == 200, resp.get_data(as_text=True)


def test_iat_in_the_future_refused(client, clients, idp, rsa_key, quiet):
    now = idp.clock.now()
    assert_quietly_refused(client, quiet, signed(rsa_key, idp, iat=now + 600, exp=now + 660))


def test_nbf_in_the_future_refused(client, clients, idp, rsa_key, quiet):
    now = idp.clock.now()
    assert_quietly_refused(client, quiet, signed(rsa_key, idp, nbf=now + 600, exp=now + 60))


@pytest.mark.parametrize("claim,value", [("exp", "soon"), ("exp", True), ("iat", "now"), ("nbf", [1]),
                                         ("exp", 1e309)])
def test_time_claims_that_are_not_numbers(client, clients, idp, rsa_key, quiet, claim, value):
    if value == 1e309:
        value = float("inf")
    assert_quietly_refused(client, quiet, signed(rsa_key, idp, **{claim: value}))


def test_expiry_is_judged_on_the_app_clock(client, clients, idp, rsa_key, quiet):
    """An assertion still valid by the machine's clock is expired by the app's."""
    real = signed(rsa_key, idp)  # made on today's clock: iat=now, exp=now+60
    idp.clock.advance(3600)
    assert_quietly_refused(client, quiet, real)


def test_fresh_assertion_on_a_moved_app_clock_is_accepted(client, clients, idp, rsa_key, quiet):
    """iat and exp an hour ahead of the machine's clock are right now for the app."""
    idp.clock.advance(3600)
    resp = call(client, "/token", signed(rsa_key, idp))
    assert resp.status_code == 200, resp.get_data(as_text=True)


def test_iat_in_the_future_is_judged_on_the_app_clock(client, clients, idp, rsa_key, quiet):
    idp.clock.advance(-3600)  # the app is an hour behind: an assertion made now is from its future
    assert_quietly_refused(client, quiet, jwt.encode({"alg": "RS256", "kid": rsa_key.kid},
                                                     claims(idp, iat=idp.clock.now() + 3600,
                                                            exp=idp.clock.now() + 3660), rsa_key))


def test_jti_replay_guard_stays_with_the_new_checks(client, clients, idp, rsa_key, quiet):
    assertion = signed(rsa_key, idp)
    assert call(client, "/token", assertion).status_code == 200
    assert_quietly_refused(client, quiet, assertion)
