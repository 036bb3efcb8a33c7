"""The fast lane (oidc/fastlane.py) answers exactly what the full path answers.

Every request below goes once to an app with the fast lane and once to an
app without it, on the same database: status, headers and body must agree
(tokens and their times aside, whose claims are compared instead). A
counter on the lane's observers says which requests it answered itself, so
a lane that silently handed everything over (or answered too much) fails.
"""

from __future__ import annotations

import base64
import json

import pytest
from joserfc import jwt

from tests.conftest import ISSUER

REDIS_URL = "redis://127.0.0.1:6379/0"
SECRET = "svc-secret-0123456789abcdef"


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.fixture
def lanes(app, make_app, make_client):
    from visma_idp.oidc.fastlane import FastLane

    make_client("svc", grant_types=["client_credentials"], scope="api:read api:write", secret=SECRET)
    make_client("svc-post", grant_types=["client_credentials"], scope="api:read", secret=SECRET,
                token_endpoint_auth_method="client_secret_post")
    make_client("web", grant_types=["authorization_code"], scope="openid api:read", secret=SECRET,
                redirect_uris=["https://rp.example.com/cb"])
    full = make_app(FAST_LANE=False)
    assert not isinstance(full.wsgi_app, FastLane)
    lane = app.wsgi_app
    assert isinstance(lane, FastLane)
    answered: list[str] = []
    lane.observers.append(lambda environ, endpoint, status, headers, started: answered.append(endpoint))
    return app.test_client(), full.test_client(), answered


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


VOLATILE_CLAIMS = {"jti", "iat", "exp", "nbf"}


def same_answer(fast, full) -> None:
    assert fast.status_code == full.status_code, (fast.data, full.data)
    fast_headers = {k: v for k, v in fast.headers.items() if k not in ("Content-Length", "X-Request-Id")}
    full_headers = {k: v for k, v in full.headers.items() if k not in ("Content-Length", "X-Request-Id")}
    assert fast_headers == full_headers
    assert ("X-Request-Id" in fast.headers) == ("X-Request-Id" in full.headers)
    if fast.mimetype != "application/json":
        assert fast.data == full.data
        return
    a, b = fast.get_json(), full.get_json()
    if "access_token" in a:
        ca, cb = claims_of(a.pop("access_token")), claims_of(b.pop("access_token"))
        assert {k: v for k, v in ca.items() if k not in VOLATILE_CLAIMS} == \
            {k: v for k, v in cb.items() if k not in VOLATILE_CLAIMS}
        assert ca.keys() == cb.keys()
    for volatile in ("jti", "iat", "exp"):
        a.pop(volatile, None)
        b.pop(volatile, None)
    assert a == b
    assert list(fast.get_json()) == list(full.get_json())  # the same key order (sorted)


TOKEN_CASES = {
    # served by the lane
    "basic": ({"grant_type": "client_credentials", "scope": "api:read"}, basic("svc", SECRET), True),
    "basic, no scope": ({"grant_type": "client_credentials"}, basic("svc", SECRET), True),
    "basic, two scopes, one twice": ({"grant_type": "client_credentials", "scope": "api:write api:read api:write"},
                                     basic("svc", SECRET), True),
    "post": ({"grant_type": "client_credentials", "client_id": "svc-post", "client_secret": SECRET}, {}, True),
    # handed over: every refusal is the full path's
    "wrong secret": ({"grant_type": "client_credentials"}, basic("svc", "nope"), False),
    "unknown client": ({"grant_type": "client_credentials"}, basic("ghost", SECRET), False),
    "method not registered": ({"grant_type": "client_credentials", "client_id": "svc", "client_secret": SECRET}, {},
                              False),
    "both methods": ({"grant_type": "client_credentials", "client_secret": SECRET}, basic("svc", SECRET), False),
    "grant not allowed": ({"grant_type": "client_credentials"}, basic("web", SECRET), False),
    "scope not allowed": ({"grant_type": "client_credentials", "scope": "api:admin"}, basic("svc", SECRET), False),
    "openid scope": ({"grant_type": "client_credentials", "scope": "openid"}, basic("web", SECRET), False),
    "other grant": ({"grant_type": "password", "username": "a", "password": "b"}, basic("svc", SECRET), False),
    "no grant": ({"scope": "api:read"}, basic("svc", SECRET), False),
    "unknown parameter": ({"grant_type": "client_credentials", "resource": "https://api.example.com"},
                          basic("svc", SECRET), False),
    "not basic": ({"grant_type": "client_credentials"}, {"Authorization": "Bearer abc"}, False),
    "basic without secret": ({"grant_type": "client_credentials"},
                             {"Authorization": "Basic " + base64.b64encode(b"svc").decode()}, False),
}


@pytest.mark.parametrize("case", list(TOKEN_CASES))
def test_token_requests_get_the_full_paths_answer(lanes, case):
    fast_client, full_client, answered = lanes
    data, headers, served = TOKEN_CASES[case]
    fast = fast_client.post("/token", data=data, headers=headers)
    full = full_client.post("/token", data=data, headers=headers)
    same_answer(fast, full)
    assert answered == (["oidc.token"] if served else [])


@pytest.mark.parametrize("raw, ctype", [
    ("grant_type=client_credentials&grant_type=client_credentials", "application/x-www-form-urlencoded"),
    ("grant_type=client_credentials&scope=api%FFread", "application/x-www-form-urlencoded"),
    ('{"grant_type": "client_credentials"}', "application/json"),
    ("grant_type=client_credentials", "multipart/form-data; boundary=x"),
    ("grant_type=client_credentials", "application/x-www-form-urlencoded; charset=latin-1"),
])
def test_odd_bodies_are_handed_over_whole(lanes, raw, ctype):
    """The lane reads the body to look at it; what it hands over must still
    be the whole body, or the full path would answer something else."""
    fast_client, full_client, answered = lanes
    fast = fast_client.post("/token", data=raw, content_type=ctype, headers=basic("svc", SECRET))
    full = full_client.post("/token", data=raw, content_type=ctype, headers=basic("svc", SECRET))
    same_answer(fast, full)
    assert answered == []


def test_a_query_string_is_handed_over(lanes):
    fast_client, full_client, answered = lanes
    fast = fast_client.post("/token?scope=api:write", data={"grant_type": "client_credentials"},
                            headers=basic("svc", SECRET))
    full = full_client.post("/token?scope=api:write", data={"grant_type": "client_credentials"},
                            headers=basic("svc", SECRET))
    same_answer(fast, full)
    assert answered == []


def test_the_lanes_token_verifies_and_says_what_was_asked(lanes, idp):
    fast_client, _, _ = lanes
    r = fast_client.post("/token", data={"grant_type": "client_credentials", "scope": "api:read"},
                         headers=basic("svc", SECRET))
    token = r.get_json()["access_token"]
    with fast_client.application.app_context():
        loaded = idp.keys.verification_key(jwt.decode(token, idp.keys.verification_key(
            json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==="))["kid"]).key).header["kid"])
        decoded = jwt.decode(token, loaded.key)
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.claims["iss"] == ISSUER
    assert decoded.claims["sub"] == decoded.claims["client_id"] == "svc"
    assert decoded.claims["scope"] == "api:read"


@pytest.fixture
def cached_lanes(app, make_app, make_client, settings):
    """Both apps with Redis (the introspection cache on) and their answered lists."""
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        from tests.helpers import services

        services.missing("Redis", exc)
    make_client("svc", grant_types=["client_credentials"], scope="api:read", secret=SECRET)
    make_client("other", grant_types=["client_credentials"], scope="api:read", secret=SECRET)
    fast_app = make_app(keys=True, REDIS_URL=REDIS_URL)
    full_app = make_app(keys=True, REDIS_URL=REDIS_URL, FAST_LANE=False)
    answered: list[str] = []
    fast_app.wsgi_app.observers.append(lambda environ, endpoint, status, headers, started: answered.append(endpoint))
    return fast_app.test_client(), full_app.test_client(), answered


def test_introspection_is_served_from_the_cache_only_once_checked(cached_lanes):
    fast_client, full_client, answered = cached_lanes
    token = fast_client.post("/token", data={"grant_type": "client_credentials", "scope": "api:read"},
                             headers=basic("svc", SECRET)).get_json()["access_token"]
    answered.clear()
    first = fast_client.post("/introspect", data={"token": token}, headers=basic("svc", SECRET))
    assert first.get_json()["active"] is True
    assert answered == []  # not kept yet: the full path checked it (and kept it)
    second = fast_client.post("/introspect", data={"token": token}, headers=basic("svc", SECRET))
    assert answered == ["oidc.introspect"]
    full = full_client.post("/introspect", data={"token": token}, headers=basic("svc", SECRET))
    same_answer(second, full)
    same_answer(first, full)
    # another client asking about it, or a refresh-token hint, is the full path's business
    answered.clear()
    other = fast_client.post("/introspect", data={"token": token}, headers=basic("other", SECRET))
    assert other.get_json() == {"active": False}
    hinted = fast_client.post("/introspect", data={"token": token, "token_type_hint": "refresh_token"},
                              headers=basic("svc", SECRET))
    same_answer(hinted, full_client.post("/introspect", data={"token": token, "token_type_hint": "refresh_token"},
                                         headers=basic("svc", SECRET)))
    assert answered == []


def test_a_revocation_in_another_app_is_seen_at_the_next_introspection(cached_lanes, make_app):
    """Two apps on one database and one Redis stand for two nodes: B keeps
    the answer, A revokes, B's very next introspection says inactive."""
    fast_client, full_client, answered = cached_lanes
    token = fast_client.post("/token", data={"grant_type": "client_credentials", "scope": "api:read"},
                             headers=basic("svc", SECRET)).get_json()["access_token"]
    for _ in range(2):
        assert fast_client.post("/introspect", data={"token": token},
                                headers=basic("svc", SECRET)).get_json()["active"] is True
    assert answered[-1] == "oidc.introspect"  # kept on "B"
    revoked = full_client.post("/revoke", data={"token": token}, headers=basic("svc", SECRET))  # on "A"
    assert revoked.status_code == 200
    after = fast_client.post("/introspect", data={"token": token}, headers=basic("svc", SECRET))
    assert after.get_json() == {"active": False}


def test_with_redis_down_nothing_kept_is_used(app, make_app, make_client):
    """An unreachable Redis: introspection still answers, from the database, every time."""
    make_client("svc", grant_types=["client_credentials"], scope="api:read", secret=SECRET)
    dead = make_app(keys=True, REDIS_URL="redis://127.0.0.1:1/0")
    answered: list[str] = []
    dead.wsgi_app.observers.append(lambda environ, endpoint, status, headers, started: answered.append(endpoint))
    c = dead.test_client()
    token = c.post("/token", data={"grant_type": "client_credentials", "scope": "api:read"},
                   headers=basic("svc", SECRET)).get_json()["access_token"]
    answered.clear()
    for _ in range(3):
        assert c.post("/introspect", data={"token": token}, headers=basic("svc", SECRET)).get_json()["active"] is True
    assert answered == []
    assert c.post("/revoke", data={"token": token}, headers=basic("svc", SECRET)).status_code == 200
    assert c.post("/introspect", data={"token": token}, headers=basic("svc", SECRET)).get_json() == {"active": False}
