"""The admin API's isolation table: every endpoint that touches agreement A
(its members, invitations, audit log, codes), the clients and the keys,
called by each kind of caller. An admin of agreement B, a plain member of A
and a service without the scope get exactly what an unknown agreement gets
(404) or a refusal (403), never A's data; and nothing is changed by a refused call."""

from __future__ import annotations

import pytest

from tests.admin.conftest import (
    ADMIN_A,
    ADMIN_B,
    API,
    MEMBER_A,
    PLAIN,
    SYS,
    bearer,
)

# (method, path template, body) -> who may (2xx); the others get the status in REFUSED
ENDPOINTS = [
    ("GET", "{A}", None, {"sys", "admin_a", "svc_agreements"}),
    ("PATCH", "{A}", {"domains": ["acme.no", "acme.com"]}, {"sys", "svc_agreements"}),
    ("GET", "{A}/members", None, {"sys", "admin_a", "svc_agreements"}),
    ("PUT", "{A}/members/{member}/roles", {"roles": ["x"]}, {"sys", "admin_a", "svc_agreements"}),
    ("DELETE", "{A}/members/{member}", None, {"sys", "admin_a", "svc_agreements"}),
    ("GET", "{A}/invitations", None, {"sys", "admin_a", "svc_agreements"}),
    ("POST", "{A}/invitations", {"email": "new@acme.no"}, {"sys", "admin_a", "svc_agreements"}),
    ("DELETE", "{A}/invitations/{invitation}", None, {"sys", "admin_a", "svc_agreements"}),
    ("GET", "{A}/audit", None, {"sys", "admin_a", "svc_agreements"}),
    ("GET", "/admin/api/clients", None, {"sys", "svc_clients"}),
    ("POST", "/admin/api/clients", {"client_id": "new-app", "redirect_uris": ["https://new.example.com/cb"]},
     {"sys", "svc_clients"}),
    ("GET", "/admin/api/clients/admin-tool", None, {"sys", "svc_clients"}),
    ("PATCH", "/admin/api/clients/admin-tool", {"name": "Tool"}, {"sys", "svc_clients"}),
    ("GET", "/admin/api/keys", None, {"sys"}),
    ("POST", "/admin/api/keys/rotate", None, {"sys"}),
]
CALLERS = ["sys", "admin_a", "admin_b", "plain_a", "svc_agreements", "svc_clients", "nobody"]
assert all(allowed <= set(CALLERS) for _m, _t, _b, allowed in ENDPOINTS)
# what a caller who may not gets, per kind of endpoint
AGREEMENT_REFUSAL = 404  # an agreement one may not manage does not exist for them
SYSTEM_REFUSAL = 403


@pytest.fixture
def callers(app, world, token, service_token):
    svc_a = service_token("idp:admin:agreements")
    from visma_idp.storage import Client, db

    with app.app_context():  # a second service client, for the clients scope
        db.session.delete(db.session.query(Client).filter_by(client_id="provisioner").one())
        db.session.commit()
    svc_c = service_token("idp:admin:clients")
    return {"sys": token(SYS), "admin_a": token(ADMIN_A), "admin_b": token(ADMIN_B), "plain_a": token(PLAIN),
            "svc_agreements": svc_a, "svc_clients": svc_c, "nobody": None}


def _invitation(client, world, token):
    resp = client.post(f"{API}/{world['a']}/invitations", json={"email": "invited@acme.no"},
                       headers=bearer(token(ADMIN_A)))
    assert resp.status_code == 201
    return resp.get_json()["id"]


@pytest.mark.parametrize(("method", "template", "body", "allowed"), ENDPOINTS,
                         ids=[f"{m} {t}" for m, t, _b, _a in ENDPOINTS])
def test_isolation(client, world, token, callers, method, template, body, allowed):
    """Each caller in turn (the refused first, so that the allowed change comes last)."""
    for caller in sorted(CALLERS, key=lambda c: c in allowed):
        url = template.format(A=f"{API}/{world['a']}", member=world[MEMBER_A],
                              invitation=_invitation(client, world, token) if "{invitation}" in template else "")
        before = client.get(f"{API}/{world['a']}/members", headers=bearer(callers["sys"])).get_json()
        headers = bearer(callers[caller]) if callers[caller] else {}
        sent = {**body, "client_id": f"new-app-{caller.replace('_', '-')}"} if body and "client_id" in body else body
        resp = client.open(url, method=method, json=sent, headers=headers)
        seen = (caller, resp.status_code, resp.get_data(as_text=True)[:300])
        if caller == "nobody":
            assert resp.status_code == 401, seen
        elif caller in allowed:
            assert 200 <= resp.status_code < 300, seen
            if method == "DELETE" and "{member}" in template:
                break  # the member is gone: the rest of the table is about them
        else:
            expected = AGREEMENT_REFUSAL if template.startswith("{A}") else SYSTEM_REFUSAL
            if method == "PATCH" and template == "{A}" and caller == "admin_a":
                expected = SYSTEM_REFUSAL  # their own agreement: they know it exists, but only a system admin changes it
            assert resp.status_code == expected, seen
            assert world["a"] not in resp.get_data(as_text=True) and MEMBER_A not in resp.get_data(as_text=True)
            after = client.get(f"{API}/{world['a']}/members", headers=bearer(callers["sys"])).get_json()
            assert after == before, seen  # a refused call changed nothing


def test_the_table_covers_every_endpoint_that_names_an_agreement_a_client_or_keys(app):
    covered = {(m, t.replace("{A}", "/admin/api/agreements/{agreement}")
                .replace("{member}", "{sub}").replace("{invitation}", "{invitation_id}")
                .replace("admin-tool", "{client_id}")) for m, t, _b, _a in ENDPOINTS}
    rules = {(method, rule.rule.replace("<", "{").replace(">", "}")) for rule in app.url_map.iter_rules()
             for method in rule.methods - {"HEAD", "OPTIONS"}
             if rule.rule.startswith(("/admin/api/agreements/", "/admin/api/clients", "/admin/api/keys"))}
    # the code endpoint has its own tests (it needs a domain right on top: tests/admin/test_agreements_api.py),
    # and the secret rotation (it answers the secret: tests/admin/test_system_api.py)
    rules -= {("POST", "/admin/api/agreements/{agreement}/members/{sub}/one-time-code"),
              ("POST", "/admin/api/clients/{client_id}/secret")}
    assert rules <= covered, sorted(rules - covered)
