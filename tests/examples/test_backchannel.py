"""The back-channel logout receiver: a logout token signed by the provider
(its JWKS found through discovery) ends Expense's sessions of that ``sid``, or
all of that ``sub``; any broken rule is 400 and ends nothing.

The provider here is a stand-in on a loopback port that serves discovery and
a JWKS of a key the test signs with.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from werkzeug.wrappers import Request, Response

from tests.examples.conftest import serve

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class StandIn:
    """Discovery and a JWKS, as a provider serves them."""

    def __init__(self):
        self.key = ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256", "use": "sig"})
        self.keys = [self.key]
        self.issuer = ""
        self.jwks_fetches = 0

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == "/.well-known/openid-configuration":
            body = {"issuer": self.issuer, "jwks_uri": self.issuer + "/keys",
                    "authorization_endpoint": self.issuer + "/authorize", "token_endpoint": self.issuer + "/token",
                    "id_token_signing_alg_values_supported": ["ES256", "RS256"]}
        elif request.path == "/keys":
            self.jwks_fetches += 1
            body = KeySet(self.keys).as_dict(private=False)
        else:
            return Response(status=404)(environ, start_response)
        return Response(json.dumps(body), mimetype="application/json")(environ, start_response)


@pytest.fixture
def provider():
    stand_in = StandIn()
    with serve(stand_in) as url:
        stand_in.issuer = url
        yield stand_in


@pytest.fixture
def expense(make_expense, provider):
    return make_expense(provider.issuer)


def logout_token(provider, key=None, header=None, **claims) -> str:
    now = int(time.time())
    values = {"iss": provider.issuer, "aud": "expense", "iat": now, "exp": now + 120, "jti": str(uuid.uuid4()),
              "events": {EVENT: {}}, "sid": "sid-1", "sub": "kari"}
    values.update(claims)
    values = {k: v for k, v in values.items() if v is not None}
    key = key or provider.key
    return jwt.encode({"alg": "ES256", "typ": "logout+jwt", "kid": key.kid, **(header or {})}, values, key)


def signed_in(app, sub="kari", sid="sid-1"):
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["user"] = {"sub": sub, "name": sub.title(), "email": None, "roles": [],
                        "agreement": {"id": "a-1", "name": "Nordlys Regnskap AS", "org_number": "974760673"}}
        sess["sid"] = sid
    assert _is_signed_in(client)
    return client


def _is_signed_in(client) -> bool:
    return "Signed in as" in client.get("/").text


def post(app, token):
    return app.test_client().post("/backchannel-logout", data={"logout_token": token})


def test_a_valid_token_ends_the_sessions_of_that_sid(expense, provider):
    kari = signed_in(expense, sid="sid-1")
    kari_elsewhere = signed_in(expense, sid="sid-2")  # another provider session of the same person
    resp = post(expense, logout_token(provider, sid="sid-1"))
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    assert not _is_signed_in(kari)
    assert _is_signed_in(kari_elsewhere)


def test_a_token_with_only_sub_ends_all_of_that_persons_sessions(expense, provider):
    kari, kari_elsewhere, ola = signed_in(expense, sid="s1"), signed_in(expense, sid="s2"), signed_in(expense, "ola", "s3")
    assert post(expense, logout_token(provider, sid=None, sub="kari")).status_code == 200
    assert not _is_signed_in(kari) and not _is_signed_in(kari_elsewhere)
    assert _is_signed_in(ola)


def test_a_session_ended_meanwhile_is_not_written_back(expense, provider):
    kari = signed_in(expense)
    post(expense, logout_token(provider))
    kari.get("/?lang=nb")  # a request that would save the session
    assert not _is_signed_in(kari)


OTHER_KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})  # same kid, not the provider's key


@pytest.mark.parametrize(("why", "make"), [
    ("wrong aud", lambda p: logout_token(p, aud="payroll")),
    ("wrong iss", lambda p: logout_token(p, iss="https://evil.example")),
    ("no events", lambda p: logout_token(p, events=None)),
    ("another event", lambda p: logout_token(p, events={"http://schemas.openid.net/event/other": {}})),
    ("event not an object", lambda p: logout_token(p, events={EVENT: "yes"})),
    ("a nonce", lambda p: logout_token(p, nonce="n-0S6_WzA2Mj")),
    ("bad signature", lambda p: logout_token(p, key=OTHER_KEY)),
    ("typ JWT (an ID token?)", lambda p: logout_token(p, header={"typ": "JWT"})),
    ("expired", lambda p: logout_token(p, exp=int(time.time()) - 3600, iat=int(time.time()) - 3700)),
    ("no iat", lambda p: logout_token(p, iat=None)),
    ("no jti", lambda p: logout_token(p, jti=None)),
    ("neither sid nor sub", lambda p: logout_token(p, sid=None, sub=None)),
    ("alg none", lambda p: _unsigned(p)),
    ("not a JWT", lambda p: "not-a-jwt"),
    ("empty", lambda p: ""),
])
def test_a_bad_token_is_400_and_the_session_stays(expense, provider, why, make):
    kari = signed_in(expense)
    resp = post(expense, make(provider))
    assert resp.status_code == 400, why
    assert resp.get_json()["error"] == "invalid_request"
    assert _is_signed_in(kari), why


def _unsigned(provider) -> str:
    import base64

    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    good = jwt.decode(logout_token(provider), provider.key).claims
    return part({"alg": "none", "typ": "logout+jwt", "kid": "k1"}) + "." + part(good) + "."


def test_a_replayed_token_is_refused(expense, provider):
    token = logout_token(provider, sid="sid-1")
    assert post(expense, token).status_code == 200
    kari = signed_in(expense, sid="sid-1")
    assert post(expense, token).status_code == 400
    assert _is_signed_in(kari)


def test_a_new_provider_key_is_fetched_once_from_the_jwks_uri(expense, provider):
    kari = signed_in(expense)
    assert post(expense, logout_token(provider, sid="other")).status_code == 200
    fetches = provider.jwks_fetches
    rotated = ECKey.generate_key("P-256", parameters={"kid": "k2", "alg": "ES256", "use": "sig"})
    provider.keys = [provider.key, rotated]
    assert post(expense, logout_token(provider, key=rotated)).status_code == 200
    assert provider.jwks_fetches == fetches + 1
    assert not _is_signed_in(kari)
