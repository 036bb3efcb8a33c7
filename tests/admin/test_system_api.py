"""/admin/api/clients and /admin/api/keys: system admins and services with
idp:admin:clients / idp:admin:keys manage the relying apps and the signing
keys; a client with admin rights is the operator's alone."""

from __future__ import annotations

import base64

import pytest

from tests.admin.conftest import (
    ADMIN_A,
    SERVICE_SECRET,
    SYS,
    bearer,
)

CLIENTS = "/admin/api/clients"


def client_credentials(client, client_id: str, secret: str, scope: str = "read"):
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return client.post("/token", data={"grant_type": "client_credentials", "scope": scope},
                       headers={"Authorization": f"Basic {basic}"})


def test_registering_an_app_shows_its_secret_once_and_it_works(app, client, world, token):
    resp = client.post(CLIENTS, json={"client_id": "payroll-sync", "name": "Payroll sync",
                                      "grant_types": ["client_credentials"], "scope": "read"},
                       headers=bearer(token(SYS)))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    secret = resp.get_json()["client_secret"]
    assert resp.headers["Cache-Control"] == "no-store"
    assert client_credentials(client, "payroll-sync", secret).status_code == 200
    shown = client.get(f"{CLIENTS}/payroll-sync", headers=bearer(token(SYS))).get_json()
    assert "client_secret" not in shown or shown["client_secret"] is None
    listed = client.get(CLIENTS, headers=bearer(token(SYS))).get_data(as_text=True)
    assert secret not in listed
    from visma_idp.storage import db, queries

    with app.app_context():
        row = queries.client_by_id("payroll-sync")
        assert row.secret_digest and secret not in row.secret_digest
        db.session.rollback()


def test_rotating_the_secret_stops_the_old_one(client, world, token):
    created = client.post(CLIENTS, json={"client_id": "payroll-sync", "grant_types": ["client_credentials"],
                                         "scope": "read"}, headers=bearer(token(SYS))).get_json()
    resp = client.post(f"{CLIENTS}/payroll-sync/secret", headers=bearer(token(SYS)))
    assert resp.status_code == 200
    new = resp.get_json()["client_secret"]
    assert new != created["client_secret"]
    assert client_credentials(client, "payroll-sync", created["client_secret"]).status_code == 401
    assert client_credentials(client, "payroll-sync", new).status_code == 200


def test_changing_redirect_uris_and_the_back_channel_logout_uri(client, world, token):
    url = f"{CLIENTS}/admin-tool"
    resp = client.patch(url, json={"redirect_uris": ["https://tool.example.com/cb"],
                                   "backchannel_logout_uri": "https://tool.example.com/logout"},
                        headers=bearer(token(SYS)))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["redirect_uris"] == ["https://tool.example.com/cb"]
    assert resp.get_json()["backchannel_logout_uri"] == "https://tool.example.com/logout"
    removed = client.patch(url, json={"backchannel_logout_uri": ""}, headers=bearer(token(SYS)))
    assert removed.status_code == 200 and removed.get_json()["backchannel_logout_uri"] is None


@pytest.mark.parametrize("body", [
    {"redirect_uris": ["https://tool.example.com/cb#fragment"]},
    {"redirect_uris": ["javascript:alert(1)"]},
    {"backchannel_logout_uri": "http://tool.example.com/logout"},  # not https, not loopback
    {"name": "x" * 201},
    {"owner": "me"},
])
def test_a_bad_change_is_400_and_changes_nothing(client, world, token, body):
    before = client.get(f"{CLIENTS}/admin-tool", headers=bearer(token(SYS))).get_json()
    resp = client.patch(f"{CLIENTS}/admin-tool", json=body, headers=bearer(token(SYS)))
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert client.get(f"{CLIENTS}/admin-tool", headers=bearer(token(SYS))).get_json() == before


def test_an_unknown_app_is_404(client, world, token):
    assert client.get(f"{CLIENTS}/nope", headers=bearer(token(SYS))).status_code == 404
    assert client.post(f"{CLIENTS}/nope/secret", headers=bearer(token(SYS))).status_code == 404


def test_a_client_manager_cannot_take_over_or_make_an_app_with_admin_rights(client, world, service_token):
    """A service allowed to manage clients must not gain the agreements or keys scope."""
    manager = service_token("idp:admin:clients")  # the client "provisioner" holds idp:admin:clients
    grab = client.post(CLIENTS, json={"client_id": "evil", "grant_types": ["client_credentials"],
                                      "scope": "idp:admin:keys"}, headers=bearer(manager))
    assert grab.status_code == 403
    assert client.post(f"{CLIENTS}/provisioner/secret", headers=bearer(manager)).status_code == 403
    assert client.patch(f"{CLIENTS}/provisioner", json={"name": "x"}, headers=bearer(manager)).status_code == 403
    assert client.get(f"{CLIENTS}/evil", headers=bearer(manager)).status_code == 404
    assert client_credentials(client, "provisioner", SERVICE_SECRET, "idp:admin:clients").status_code == 200


def test_an_agreement_admin_manages_no_apps_or_keys(client, world, token):
    for method, url in [("GET", CLIENTS), ("POST", f"{CLIENTS}/admin-tool/secret"), ("GET", "/admin/api/keys"),
                        ("POST", "/admin/api/keys/rotate")]:
        assert client.open(url, method=method, headers=bearer(token(ADMIN_A))).status_code == 403


def test_rotating_the_keys_publishes_the_new_ones_and_keeps_the_old(client, world, token):
    before = client.get("/admin/api/keys", headers=bearer(token(SYS))).get_json()["keys"]
    active_before = {k["kid"] for k in before if k["state"] == "active"}
    resp = client.post("/admin/api/keys/rotate", headers=bearer(token(SYS)))
    assert resp.status_code == 201
    fresh = {k["kid"] for k in resp.get_json()["keys"]}
    assert fresh and not fresh & active_before
    after = {k["kid"]: k["state"] for k in client.get("/admin/api/keys", headers=bearer(token(SYS))).get_json()["keys"]}
    assert all(after[kid] == "active" for kid in fresh)
    assert all(after[kid] == "retired" for kid in active_before)
    published = {k["kid"] for k in client.get("/jwks").get_json()["keys"]}
    assert fresh | active_before <= published
    for key in resp.get_json()["keys"]:
        assert "d" not in key["public_jwk"]  # never a private part
