"""RFC 7009 §2.1: a client may revoke only its own tokens.

Client B sending client A's token to /revoke gets the same answer as for a
token that does not exist (200, empty JSON), so it learns nothing, and A's
tokens keep working. The attempt is audited as a refusal. Introspection keeps
its own rule: another client's token is ``active: false``.
"""

from __future__ import annotations

import base64

import pytest

OTHER_ID = "other-app"
OTHER_SECRET = "other-app-secret-0123456789"


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.fixture
def a_tokens(flow):
    """Client A (expense) holds an access and a refresh token for Kari."""
    return flow.tokens(scope="openid email offline_access")


@pytest.fixture
def other(make_client):
    make_client(OTHER_ID, secret=OTHER_SECRET, redirect_uris=["https://other.example.com/cb"])
    return basic(OTHER_ID, OTHER_SECRET)


def _still_works(flow, tokens) -> None:
    info = flow.client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200, info.get_data(as_text=True)
    resp = flow.client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                            headers=flow.basic())
    assert resp.status_code == 200, resp.get_data(as_text=True)


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"])
def test_revoking_another_clients_tokens_changes_nothing(flow, a_tokens, other, audit_rows, hint):
    unknown = flow.client.post("/revoke", data={"token": "no-such-token-0123456789"}, headers=other)
    assert unknown.status_code == 200
    for kind in ("access_token", "refresh_token"):
        data = {"token": a_tokens[kind]}
        if hint:
            data["token_type_hint"] = hint
        resp = flow.client.post("/revoke", data=data, headers=other)
        # exactly what a token that does not exist gets
        assert resp.status_code == 200, (kind, resp.get_data(as_text=True))
        assert resp.get_json() == unknown.get_json() == {}
        assert resp.headers.get("Content-Type") == unknown.headers.get("Content-Type")
    _still_works(flow, a_tokens)
    refused = audit_rows("token_revoke_refused")
    assert len(refused) == 2
    assert {r["outcome"] for r in refused} == {"failure"}
    assert {r["client_id"] for r in refused} == {OTHER_ID}
    assert {r["details"]["kind"] for r in refused} == {"access", "refresh"}
    assert not audit_rows("token_revoked")


def test_a_public_client_cannot_revoke_another_clients_token(flow, a_tokens, make_client, audit_rows):
    make_client("spa", public=True, redirect_uris=["https://spa.example.com/cb"])
    resp = flow.client.post("/revoke", data={"token": a_tokens["refresh_token"], "client_id": "spa"})
    assert resp.status_code == 200
    assert resp.get_json() == {}
    _still_works(flow, a_tokens)
    assert [r["client_id"] for r in audit_rows("token_revoke_refused")] == ["spa"]


def test_the_owner_still_revokes_its_own_tokens(flow, a_tokens, audit_rows):
    resp = flow.client.post("/revoke", data={"token": a_tokens["refresh_token"]}, headers=flow.basic())
    assert resp.status_code == 200
    again = flow.client.post("/token", data={"grant_type": "refresh_token",
                                             "refresh_token": a_tokens["refresh_token"]}, headers=flow.basic())
    assert again.status_code == 400
    assert [r["outcome"] for r in audit_rows("token_revoked")] == ["success"]
    assert not audit_rows("token_revoke_refused")


def test_introspection_of_another_clients_token_is_inactive(flow, a_tokens, other):
    for kind in ("access_token", "refresh_token"):
        resp = flow.client.post("/introspect", data={"token": a_tokens[kind]}, headers=other)
        assert resp.status_code == 200
        assert resp.get_json() == {"active": False}
        own = flow.client.post("/introspect", data={"token": a_tokens[kind]}, headers=flow.basic())
        assert own.get_json()["active"] is True
