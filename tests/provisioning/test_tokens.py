"""Provisioning clients' bearer tokens: kept only as a keyed digest, refused
the same way whatever is wrong with them, rotated without losing the
client's resources, and ``last_used_at`` written at most once a day."""

from __future__ import annotations

import pytest

from tests.provisioning import dbstate
from tests.provisioning.conftest import Scim, user_body

DAY = 86400


def _client_row(app, name):
    from visma_idp.provisioning import clients

    with app.app_context():
        row = clients.by_name(name)
        return None if row is None else {"id": row.id, "token_digest": row.token_digest,
                                          "last_used_at": row.last_used_at, "rotated_at": row.rotated_at}


def _rotate(app, name) -> str:
    from visma_idp.provisioning import clients
    from visma_idp.storage import db

    with app.app_context():
        issued = clients.rotate(clients.by_name(name))
        db.session.commit()
        return issued.token


def _remove(app, name) -> None:
    from visma_idp.provisioning import clients
    from visma_idp.storage import db

    with app.app_context():
        clients.remove(clients.by_name(name))
        db.session.commit()


def _set_status(app, public_id, status) -> None:
    from visma_idp.agreements import service
    from visma_idp.storage import db

    with app.app_context():
        assert service.set_status(service.find(public_id), status)
        db.session.commit()


def _refusal(resp) -> tuple:
    """What a refused call answers: everything a caller could tell apart."""
    headers = {k: v for k, v in resp.headers.items() if k.lower() not in ("date", "content-length", "x-request-id")}
    return resp.status_code, resp.get_data(as_text=True), headers


# -- stored as a digest ------------------------------------------------------------


def test_the_token_is_stored_only_as_its_keyed_digest(app, client, make_provisioning):
    token = make_provisioning("payroll-a", "a")
    rotated = _rotate(app, "payroll-a")
    Scim(client, rotated).post("/Users", user_body("kari", "kari@acme.no"))  # audit rows, resources, last_used_at
    everything = dbstate.rows(app)

    row = _client_row(app, "payroll-a")
    assert row["token_digest"] not in (token, rotated)
    assert len(row["token_digest"]) == 64
    secret_parts = {token, rotated, token.removeprefix("scim_"), rotated.removeprefix("scim_")}
    for table, table_rows in everything.items():
        for values in table_rows.values():
            for column, value in values.items():
                assert not any(part in str(value) for part in secret_parts), (table, column)


def test_the_digest_is_keyed(app, make_provisioning):
    """A plain hash of the token is not what is stored: a copy of the database alone finds nothing."""
    import hashlib

    token = make_provisioning("payroll-a", "a")
    digest = _client_row(app, "payroll-a")["token_digest"]
    assert digest not in (hashlib.sha256(token.encode()).hexdigest(), hashlib.sha256(token.encode()).digest().hex())


# -- refused tokens ------------------------------------------------------------------


@pytest.fixture
def refused(app, client, agreements, make_provisioning):
    """A working client of A with a resource, and one refused call per kind of bad token."""
    token = make_provisioning("payroll-a", "a")
    assert Scim(client, token).post("/Users", user_body("kari", "kari@acme.no")).status_code == 201
    return token


def test_every_bad_token_is_the_same_401(app, client, agreements, make_provisioning, refused):
    token = refused
    removed = make_provisioning("payroll-removed", "a")
    _remove(app, "payroll-removed")
    rotated_away = make_provisioning("payroll-rotated", "a")
    _rotate(app, "payroll-rotated")
    closed = make_provisioning("payroll-b", "b")
    _set_status(app, agreements["b"], "closed")

    cases = {
        "wrong": "scim_" + "x" * 43,
        "wrong without the prefix": "x" * 48,
        "the working one, changed": token[:-1] + ("A" if token[-1] != "A" else "B"),
        "a removed client's": removed,
        "rotated away": rotated_away,
        "of a closed agreement": closed,
        "very long": token + "x" * 300,
    }
    answers = {}
    for label, bad in cases.items():
        answers[label] = _refusal(Scim(client, bad).get("/Users"))
    answers["none"] = _refusal(Scim(client, None).get("/Users"))
    answers["basic"] = _refusal(Scim(client, None).get("/Users", headers={"Authorization": f"Basic {token}"}))
    answers["bearer, no token"] = _refusal(Scim(client, None).get("/Users", headers={"Authorization": "Bearer"}))

    first = answers["wrong"]
    assert first[0] == 401
    assert first[2].get("WWW-Authenticate", "").startswith("Bearer")
    for label, answer in answers.items():
        assert answer == first, label
    # the working token still works, and sees its resource
    assert Scim(client, token).get("/Users").get_json()["totalResults"] == 1


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_a_refused_token_changes_nothing(app, client, refused, method):
    resource = Scim(client, refused).get("/Users").get_json()["Resources"][0]["id"]
    path = {"GET": "/Users", "POST": "/Users"}.get(method, f"/Users/{resource}")
    body = None if method in ("GET", "DELETE") else user_body("kari", "ola@acme.no", given="Ola")
    if method == "PATCH":
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": False}]}
    before = dbstate.rows(app)
    resp = client.open("/scim/v2" + path, method=method, json=body,
                       headers={"Authorization": "Bearer scim_" + "y" * 43, "Content-Type": "application/scim+json"})
    assert resp.status_code == 401
    assert dbstate.diff(before, dbstate.rows(app)) == {}


def test_the_token_of_a_reopened_agreement_works_again(app, client, agreements, refused):
    _set_status(app, agreements["a"], "closed")
    assert Scim(client, refused).get("/Users").status_code == 401
    _set_status(app, agreements["a"], "active")
    assert Scim(client, refused).get("/Users").get_json()["totalResults"] == 1


# -- rotation ------------------------------------------------------------------------


def test_rotation_ends_the_old_token_and_keeps_the_resources(app, client, make_provisioning, mailbox):
    old = make_provisioning("payroll-a", "a")
    created = Scim(client, old).post("/Users", user_body("kari", "kari@acme.no")).get_json()
    group = Scim(client, old).post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                              "displayName": "Approvers",
                                              "members": [{"value": created["id"]}]}).get_json()
    before = _client_row(app, "payroll-a")

    new = _rotate(app, "payroll-a")
    assert new != old and new.startswith("scim_")
    after = _client_row(app, "payroll-a")
    assert after["id"] == before["id"] and after["token_digest"] != before["token_digest"]
    assert after["rotated_at"] is not None

    assert Scim(client, old).get("/Users").status_code == 401
    fresh = Scim(client, new)
    assert fresh.get(f"/Users/{created['id']}").get_json()["userName"] == "kari"
    assert fresh.get(f"/Groups/{group['id']}").get_json()["members"][0]["value"] == created["id"]
    # the same person, not a new one: the push of the same user changes nothing
    assert fresh.put(f"/Users/{created['id']}", user_body("kari", "kari@acme.no")).get_json()["meta"]["version"] \
        == created["meta"]["version"]


def test_rotation_is_audited_without_the_token(app, make_provisioning):
    from visma_idp.storage import AuditEvent, db

    make_provisioning("payroll-a", "a")
    token = _rotate(app, "payroll-a")
    with app.app_context():
        rows = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "provisioning_token_rotated")).all()
        assert [r.subject for r in rows] == ["payroll-a"]
        assert token not in str(rows[0].details)


# -- last_used_at --------------------------------------------------------------------


def test_last_used_at_is_written_at_most_once_a_day(app, idp, client, make_provisioning):
    scim = Scim(client, make_provisioning("payroll-a", "a"))
    assert _client_row(app, "payroll-a")["last_used_at"] is None

    start = idp.clock.now()
    assert scim.get("/Users").status_code == 200
    first = _client_row(app, "payroll-a")["last_used_at"]
    assert start <= first <= idp.clock.now()

    idp.clock.advance(DAY - 120)
    before = dbstate.rows(app)
    assert scim.get("/Users").status_code == 200
    assert scim.put("/Users/none", user_body("kari")).status_code == 404
    assert dbstate.diff(before, dbstate.rows(app)) == {}  # a call that changes nothing writes nothing

    idp.clock.advance(240)
    assert scim.get("/Users").status_code == 200
    second = _client_row(app, "payroll-a")["last_used_at"]
    assert second >= first + DAY

    idp.clock.advance(3600)
    assert scim.get("/Users").status_code == 200
    assert _client_row(app, "payroll-a")["last_used_at"] == second


def test_a_refused_token_is_not_used(app, idp, client, make_provisioning):
    make_provisioning("payroll-a", "a")
    assert Scim(client, "scim_" + "z" * 43).get("/Users").status_code == 401
    assert _client_row(app, "payroll-a")["last_used_at"] is None


def test_discovery_needs_no_token_and_other_endpoints_do(client, make_provisioning):
    make_provisioning("payroll-a", "a")
    assert Scim(client, None).get("/ServiceProviderConfig").status_code == 200
    for path in ("/Users", "/Groups", "/ResourceTypes", "/Schemas", ""):
        assert Scim(client, None).get(path).status_code == 401, path
