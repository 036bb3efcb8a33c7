"""POST /admin/api/one-time-codes: a bearer access token of ours with the
scope idp:admin, whose user holds the right for the target's domain."""

from __future__ import annotations

import base64

import pytest

from tests.admin import CODE_RE, events, give_factor, grant, lands_in_enrolment, sign_in, verify_with_code
from tests.helpers import Flow

ADMIN = "ola@example.no"
USER = "kari@example.no"
API = "/admin/api/one-time-codes"
REDIRECT = "https://tool.example.com/callback"


@pytest.fixture
def people(app, make_user, make_client):
    admin_id = make_user(email=ADMIN, name="Ola Admin")
    user_id = make_user(email=USER, name="Kari Nordmann")
    give_factor(app, user_id)
    grant(app, ADMIN, "example.no")
    make_client("admin-tool", redirect_uris=[REDIRECT], scope="openid idp:admin offline_access",
                secret="admin-tool-secret-0123456789", skip_consent=True,
                grant_types=["authorization_code", "refresh_token", "client_credentials"])
    return admin_id, user_id


def tokens_for(app, email: str, scope: str = "openid idp:admin") -> dict:
    flow = Flow(app, app.test_client(), client_id="admin-tool", client_secret="admin-tool-secret-0123456789",
                redirect_uri=REDIRECT, email=email)
    return flow.tokens(scope=scope)


def call(client, token: str | None, body=None, **kwargs):
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None and "data" not in kwargs:
        kwargs["json"] = body
    return client.post(API, headers=headers, **kwargs)


def test_an_admin_token_creates_a_code_that_works(app, idp, client, people, mailbox):
    token = tokens_for(app, ADMIN)["access_token"]
    before = idp.clock.now()
    resp = call(client, token, {"email": USER}, headers={"Origin": "https://tool.example.com"})  # no CSRF, any origin
    assert resp.status_code == 201, resp.get_data(as_text=True)
    body = resp.get_json()
    assert CODE_RE.fullmatch(body["code"]) and body["email"] == USER
    assert before + 600 <= body["expires_at"] <= idp.clock.now() + 600  # the clock may tick during the call
    assert resp.headers["Cache-Control"] == "no-store"
    (issued,) = events(app, "one_time_code_issued")
    assert issued.details["via"] == "api" and issued.details["admin_id"] == people[0]
    assert "Ola Admin" in mailbox.last(USER).get_body(("plain",)).get_content()
    user = app.test_client()
    sign_in(user, USER)
    assert lands_in_enrolment(user, verify_with_code(user, body["code"]))


def test_no_token_is_401_with_a_challenge(client, people):
    resp = call(client, None, {"email": USER})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert "error=" not in resp.headers["WWW-Authenticate"]


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 9000])
def test_an_invalid_token_is_401(client, people, token):
    resp = call(client, token, {"email": USER})
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    assert resp.get_json()["error"] == "invalid_token"


def test_a_refresh_token_is_not_an_access_token(app, client, people):
    tokens = tokens_for(app, ADMIN, "openid idp:admin offline_access")
    assert tokens.get("refresh_token")
    assert call(client, tokens["refresh_token"], {"email": USER}).status_code == 401


def test_a_client_credentials_token_has_no_admin_behind_it(app, client, people):
    raw = base64.b64encode(b"admin-tool:admin-tool-secret-0123456789").decode()
    resp = client.post("/token", data={"grant_type": "client_credentials", "scope": "idp:admin"},
                       headers={"Authorization": f"Basic {raw}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert call(client, resp.get_json()["access_token"], {"email": USER}).status_code == 401


def test_a_revoked_or_expired_token_is_401(app, idp, client, people):
    token = tokens_for(app, ADMIN)["access_token"]
    raw = base64.b64encode(b"admin-tool:admin-tool-secret-0123456789").decode()
    client.post("/revoke", data={"token": token}, headers={"Authorization": f"Basic {raw}"})
    assert call(client, token, {"email": USER}).status_code == 401
    token = tokens_for(app, ADMIN)["access_token"]
    idp.clock.advance(idp.settings["ACCESS_TOKEN_LIFETIME"] + 1)
    assert call(client, token, {"email": USER}).status_code == 401


def test_a_token_without_the_scope_is_403(app, client, people):
    token = tokens_for(app, ADMIN, "openid")["access_token"]
    resp = call(client, token, {"email": USER})
    assert resp.status_code == 403
    challenge = resp.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="idp:admin"' in challenge
    assert not events(app, "one_time_code_issued")


@pytest.mark.parametrize("target", ["eva@evil-example.no", "eva@example.no.evil.com", "ghost@other.no"])
def test_outside_the_domain_is_403_and_audited(app, client, make_user, people, target):
    make_user(email="eva@evil-example.no")
    make_user(email="eva@example.no.evil.com")
    token = tokens_for(app, ADMIN)["access_token"]
    resp = call(client, token, {"email": target})
    assert resp.status_code == 403 and resp.get_json()["error"] == "outside_domain"
    assert "code" not in resp.get_json()
    (refused,) = events(app, "one_time_code_refused")
    assert refused.details == {"reason": "outside_domain", "via": "api"} and refused.user_id == people[0]


def test_a_user_with_the_scope_but_without_the_right_is_403(app, client, make_user, people):
    uid = make_user(email="per@example.no")
    token = tokens_for(app, "per@example.no")["access_token"]
    resp = call(client, token, {"email": USER})
    assert resp.status_code == 403 and resp.get_json()["error"] == "no_right"
    (refused,) = events(app, "one_time_code_refused")
    assert refused.user_id == uid and refused.details["reason"] == "no_right"


def test_an_unknown_user_in_the_domain_is_404(app, client, people):
    token = tokens_for(app, ADMIN)["access_token"]
    resp = call(client, token, {"email": "ghost@example.no"})
    assert resp.status_code == 404 and resp.get_json()["error"] == "unknown_user"


@pytest.mark.parametrize("kwargs", [
    {"data": "{not json", "content_type": "application/json"},
    {"data": '["kari@example.no"]', "content_type": "application/json"},
    {"data": '{"mail": "kari@example.no"}', "content_type": "application/json"},
    {"data": '{"email": 42}', "content_type": "application/json"},
    {"data": "email=kari@example.no", "content_type": "application/x-www-form-urlencoded"},
    {"data": '{"email": "' + "a" * 5000 + '@example.no"}', "content_type": "application/json"},
])
def test_bad_json_is_400(app, client, people, kwargs):
    token = tokens_for(app, ADMIN)["access_token"]
    resp = call(client, token, **kwargs)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_request" and resp.get_json()["message"]
    assert not events(app, "one_time_code_issued")


def test_a_token_of_a_disabled_admin_is_401(app, client, people):
    from visma_idp.storage import User, db

    token = tokens_for(app, ADMIN)["access_token"]
    with app.app_context():
        db.session.get(User, people[0]).is_active = False
        db.session.commit()
    assert call(client, token, {"email": USER}).status_code == 401
