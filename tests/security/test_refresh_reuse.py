"""Refresh tokens (RFC 9700 §4.14): rotated on every use; a rotated token
presented again revokes the whole family; bound to the client they were
issued to; an absolute lifetime counted from the login."""

from __future__ import annotations

import pytest

from tests.helpers import Flow


@pytest.fixture
def tokens(flow):
    return flow.tokens(scope="openid offline_access")


def refresh(flow, refresh_token, headers=None):
    return flow.client.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                            headers=flow.basic() if headers is None else headers)


def userinfo_status(flow, access_token) -> int:
    return flow.client.get("/userinfo", headers={"Authorization": "Bearer " + access_token}).status_code


def active(flow, token) -> bool:
    resp = flow.client.post("/introspect", data={"token": token}, headers=flow.basic())
    assert resp.status_code == 200
    return resp.get_json()["active"]


def assert_invalid_grant(resp):
    assert resp.status_code == 400, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["error"] == "invalid_grant"
    assert "access_token" not in body


def test_rotation_on_every_use(flow, tokens):
    seen = {tokens["refresh_token"]}
    current = tokens["refresh_token"]
    for _ in range(3):
        resp = refresh(flow, current)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        body = resp.get_json()
        assert body["refresh_token"] not in seen
        seen.add(body["refresh_token"])
        assert not active(flow, current)  # the used one is finished
        current = body["refresh_token"]
        assert userinfo_status(flow, body["access_token"]) == 200


def test_reuse_of_rotated_token_revokes_the_family(flow, tokens, audit_rows):
    first = tokens["refresh_token"]
    second = refresh(flow, first).get_json()
    third = refresh(flow, second["refresh_token"]).get_json()
    assert userinfo_status(flow, third["access_token"]) == 200

    # the attacker replays the first (stolen) refresh token
    assert_invalid_grant(refresh(flow, first))

    # everything descended from that login is dead, including the newest token
    assert_invalid_grant(refresh(flow, third["refresh_token"]))
    for access_token in (tokens["access_token"], second["access_token"], third["access_token"]):
        assert userinfo_status(flow, access_token) == 401
        assert not active(flow, access_token)
    assert not active(flow, third["refresh_token"])

    rows = audit_rows("refresh_token_reuse_detected")
    assert len(rows) >= 1
    assert rows[0]["outcome"] == "failure"
    assert rows[0]["client_id"] == "expense"
    assert rows[0]["user_id"] is not None


def test_reuse_does_not_touch_other_families(flow, tokens):
    other = flow.tokens(scope="openid offline_access", prompt="consent")  # its own family
    refresh(flow, tokens["refresh_token"])
    assert_invalid_grant(refresh(flow, tokens["refresh_token"]))
    assert refresh(flow, other["refresh_token"]).status_code == 200


def test_bound_to_its_client(app, flow, tokens, make_client):
    other_secret = make_client("intruder", redirect_uris=["https://intruder.example.com/cb"])
    intruder = Flow(app, flow.client, client_id="intruder", client_secret=other_secret,
                    redirect_uri="https://intruder.example.com/cb")
    assert_invalid_grant(refresh(flow, tokens["refresh_token"], headers=intruder.basic()))
    # a public client naming itself cannot take it either
    make_client("intruder-spa", public=True, redirect_uris=["https://intruder.example.com/spa"])
    resp = flow.client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                                            "client_id": "intruder-spa"})
    assert resp.status_code in (400, 401)
    assert "access_token" not in resp.get_json()


def test_absolute_lifetime(flow, tokens, idp):
    lifetime = idp.settings["REFRESH_TOKEN_LIFETIME"]
    idp.clock.advance(lifetime // 2)
    rotated = refresh(flow, tokens["refresh_token"])
    assert rotated.status_code == 200
    # rotation does not extend the family's life
    idp.clock.advance(lifetime // 2 + 1)
    assert_invalid_grant(refresh(flow, rotated.get_json()["refresh_token"]))


def test_expired_refresh_token_is_not_introspected_active(flow, tokens, idp):
    idp.clock.advance(idp.settings["REFRESH_TOKEN_LIFETIME"] + 1)
    assert not active(flow, tokens["refresh_token"])
    assert_invalid_grant(refresh(flow, tokens["refresh_token"]))


def test_no_refresh_token_without_offline_access(flow):
    assert "refresh_token" not in flow.tokens(scope="openid")


def test_introspection_tells_live_from_rotated(flow, tokens):
    """Control for the ``active: false`` checks above: a live token is active."""
    assert active(flow, tokens["refresh_token"])
    assert active(flow, tokens["access_token"])
    rotated = refresh(flow, tokens["refresh_token"]).get_json()
    assert not active(flow, tokens["refresh_token"])
    assert active(flow, rotated["refresh_token"])


def test_revoking_a_refresh_token_ends_its_family(flow, tokens):
    resp = flow.client.post("/revoke", data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
                            headers=flow.basic())
    assert resp.status_code == 200
    assert_invalid_grant(refresh(flow, tokens["refresh_token"]))
    assert userinfo_status(flow, tokens["access_token"]) == 401


def test_another_client_cannot_revoke_the_token(app, flow, tokens, make_client):
    other_secret = make_client("intruder", redirect_uris=["https://intruder.example.com/cb"])
    intruder = Flow(app, flow.client, client_id="intruder", client_secret=other_secret,
                    redirect_uri="https://intruder.example.com/cb")
    resp = flow.client.post("/revoke", data={"token": tokens["refresh_token"]}, headers=intruder.basic())
    assert resp.status_code in (200, 400)  # RFC 7009 allows either; the token must survive
    assert refresh(flow, tokens["refresh_token"]).status_code == 200
