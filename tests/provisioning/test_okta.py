"""What Okta's SCIM 2.0 client does, replayed: the connection test, paging
through the users, full PUT replacements (which must keep ``active``),
deactivation and reactivation (the membership comes back with its roles),
ETags, the enterprise extension and the filters it and other clients use."""

from __future__ import annotations

import pytest

from tests.provisioning.conftest import ENTERPRISE, ORG_A, USER_SCHEMA, patch_body, user_body

LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def okta_put(created: dict, **changes) -> dict:
    """A replacement as Okta sends it: the whole user, with ``id``, an empty
    ``middleName``, ``display`` in the address, the read-only ``groups``."""
    body = {
        "schemas": [USER_SCHEMA],
        "id": created["id"],
        "userName": created["userName"],
        "name": {"givenName": "Kari", "middleName": "", "familyName": "Nordmann"},
        "emails": [{"primary": True, "value": "kari@acme.no", "type": "work", "display": "kari@acme.no"}],
        "active": True,
        "groups": [],
        "meta": {"resourceType": "User"},
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def roles(app, scim_id: str) -> list[str] | None:
    """The agreement-A roles of the account behind a User resource, None when it is no member."""
    from visma_idp.agreements import service
    from visma_idp.storage import Agreement, ScimResource, db

    with app.app_context():
        row = db.session.scalar(db.select(ScimResource).where(ScimResource.scim_id == scim_id))
        assert row is not None and row.user_id is not None, f"no account behind {scim_id}"
        agreement = db.session.scalar(db.select(Agreement).where(Agreement.org_number == ORG_A))
        membership = service.membership(row.user_id, agreement.id)
        out = None if membership is None else sorted(r["role"] for r in membership.roles or [])
        db.session.remove()
        return out


@pytest.fixture
def kari(scim_a) -> dict:
    response = scim_a.post("/Users", user_body("kari@okta.example", "kari@acme.no", external_id="00u1kari"))
    assert response.status_code == 201, response.json
    return response.json


def test_the_connection_test_and_paging_through_five_users(scim_a):
    empty = scim_a.get("/Users", query_string={"startIndex": 1, "count": 2})
    assert empty.status_code == 200
    assert empty.json["schemas"] == [LIST_SCHEMA]
    assert (empty.json["totalResults"], empty.json["itemsPerPage"], empty.json["startIndex"]) == (0, 0, 1)
    assert empty.json.get("Resources", []) == []
    ids = [scim_a.post("/Users", user_body(f"user{n}@okta.example", f"user{n}@acme.no")).json["id"] for n in range(5)]

    first = scim_a.get("/Users", query_string={"startIndex": 1, "count": 2})
    assert first.status_code == 200
    assert first.json["schemas"] == [LIST_SCHEMA]
    assert (first.json["totalResults"], first.json["itemsPerPage"], first.json["startIndex"]) == (5, 2, 1)
    seen = []
    for start in (1, 3, 5):
        page = scim_a.get("/Users", query_string={"startIndex": start, "count": 2}).json
        assert page["totalResults"] == 5
        assert page["startIndex"] == start
        assert page["itemsPerPage"] == len(page["Resources"]) == (2 if start < 5 else 1)
        seen += [r["id"] for r in page["Resources"]]
    assert seen == ids  # each once, in the order they were made

    beyond = scim_a.get("/Users", query_string={"startIndex": 9, "count": 2}).json
    assert (beyond["totalResults"], beyond["itemsPerPage"], beyond.get("Resources", [])) == (5, 0, [])
    everyone = scim_a.get("/Users").json
    assert (everyone["totalResults"], everyone["itemsPerPage"], everyone["startIndex"]) == (5, 5, 1)
    assert scim_a.get("/Users", query_string={"startIndex": 0, "count": 2}).json["startIndex"] == 1
    counted = scim_a.get("/Users", query_string={"count": 0}).json
    assert (counted["totalResults"], counted.get("Resources", [])) == (5, [])


def test_a_put_replaces_and_keeps_active(app, scim_a, kari):
    path = f"/Users/{kari['id']}"
    replaced = scim_a.put(path, okta_put(kari, name={"givenName": "Kari", "familyName": "Berg"}, title="Lønn"))
    assert replaced.status_code == 200, replaced.json
    assert replaced.json["name"] == {"givenName": "Kari", "familyName": "Berg"}  # "": no value
    assert replaced.json["title"] == "Lønn"
    assert "externalId" not in replaced.json  # a replacement: what it leaves out is gone
    assert "groups" not in replaced.json

    off = scim_a.put(path, okta_put(kari, active=False))
    assert off.status_code == 200 and off.json["active"] is False
    assert roles(app, kari["id"]) is None
    without = okta_put(kari)
    del without["active"]
    assert scim_a.put(path, without).json["active"] is False  # left out: kept as stored
    got = scim_a.get(path)
    assert got.status_code == 200 and got.json["active"] is False
    assert roles(app, kari["id"]) is None

    on = scim_a.put(path, okta_put(kari, active=True))
    assert on.json["active"] is True
    assert roles(app, kari["id"]) == []
    assert scim_a.put(path, without).json["active"] is True


def test_reactivation_brings_the_membership_back_with_its_roles(app, scim_a, kari):
    group = scim_a.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Expense Approvers",
                                    "members": [{"value": kari["id"], "display": "kari@okta.example"}]})
    assert group.status_code == 201, group.json
    assert roles(app, kari["id"]) == ["expense-approvers"]
    path = f"/Users/{kari['id']}"

    deactivated = scim_a.patch(path, patch_body({"op": "replace", "value": {"active": False}}))
    assert deactivated.status_code in (200, 204)
    assert roles(app, kari["id"]) is None
    assert scim_a.get(path).json["active"] is False

    reactivated = scim_a.patch(path, patch_body({"op": "replace", "value": {"active": True}}))
    assert reactivated.status_code in (200, 204)
    assert roles(app, kari["id"]) == ["expense-approvers"]

    assert scim_a.put(path, okta_put(kari, active=False)).status_code == 200
    assert roles(app, kari["id"]) is None
    assert scim_a.put(path, okta_put(kari, active=True)).status_code == 200
    assert roles(app, kari["id"]) == ["expense-approvers"]


def test_okta_renames_a_group_with_its_id_in_the_value(app, scim_a, kari):
    group = scim_a.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Approvers", "members": []}).json
    path = f"/Groups/{group['id']}"
    renamed = scim_a.patch(path, patch_body({"op": "replace", "value": {"id": group["id"], "displayName": "Lønn"}}))
    assert renamed.status_code in (200, 204), renamed.json
    added = scim_a.patch(path, patch_body({"op": "add", "path": "members",
                                           "value": [{"value": kari["id"], "display": "kari@okta.example"}]}))
    assert added.status_code in (200, 204), added.json
    assert scim_a.get(path).json["displayName"] == "Lønn"
    assert roles(app, kari["id"]) == ["l-nn"]
    replaced = scim_a.put(path, {"schemas": [GROUP_SCHEMA], "id": group["id"], "displayName": "Lønn", "members": []})
    assert replaced.status_code == 200, replaced.json
    assert roles(app, kari["id"]) == []


def test_etags(scim_a, kari):
    path = f"/Users/{kari['id']}"
    current = scim_a.get(path)
    etag = current.headers["ETag"]
    assert etag == current.json["meta"]["version"] == kari["meta"]["version"]

    assert scim_a.get(path, headers={"If-None-Match": etag}).status_code == 304
    same = scim_a.put(path, okta_put(kari, externalId="00u1kari", name={"givenName": "Kari", "familyName": "Nordmann"},
                                     emails=[{"value": "kari@acme.no", "type": "work", "primary": True}],
                                     groups=None, meta=None), headers={"If-Match": etag})
    assert same.status_code == 200, same.json
    assert same.headers["ETag"] == etag  # the same data: the same version
    assert same.json["meta"]["lastModified"] == current.json["meta"]["lastModified"]

    changed = scim_a.patch(path, patch_body({"op": "replace", "path": "title", "value": "Lønn"}),
                           headers={"If-Match": etag})
    assert changed.status_code in (200, 204)
    assert changed.headers["ETag"] != etag
    newer = scim_a.get(path).headers["ETag"]
    assert newer == changed.headers["ETag"]

    stale = scim_a.patch(path, patch_body({"op": "replace", "path": "title", "value": "Sjef"}),
                         headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.json["status"] == "412"
    assert scim_a.put(path, okta_put(kari), headers={"If-Match": etag}).status_code == 412
    assert scim_a.delete(path, headers={"If-Match": etag}).status_code == 412
    assert scim_a.get(path).json["title"] == "Lønn"
    assert scim_a.delete(path, headers={"If-Match": newer}).status_code == 204


def test_the_enterprise_extension_round_trips(idp, scim_a):
    manager = scim_a.post("/Users", user_body("boss@okta.example", "boss@acme.no")).json
    extension = {"employeeNumber": "1042", "department": "Lønn", "costCenter": "4100",
                 "manager": {"value": manager["id"]}}
    body = user_body("kari@okta.example", "kari@acme.no", **{ENTERPRISE: extension})
    body["schemas"] = [USER_SCHEMA, ENTERPRISE]
    created = scim_a.post("/Users", body)
    assert created.status_code == 201, created.json
    got = scim_a.get(f"/Users/{created.json['id']}").json
    assert ENTERPRISE in got["schemas"]
    assert {k: got[ENTERPRISE][k] for k in ("employeeNumber", "department", "costCenter")} == {
        "employeeNumber": "1042", "department": "Lønn", "costCenter": "4100"}
    assert got[ENTERPRISE]["manager"] == {"value": manager["id"], "$ref": f"{idp.issuer}/scim/v2/Users/{manager['id']}"}

    patched = scim_a.patch(f"/Users/{created.json['id']}", patch_body(
        {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "HR"}))
    assert patched.status_code in (200, 204)
    assert scim_a.get(f"/Users/{created.json['id']}").json[ENTERPRISE]["department"] == "HR"
    found = scim_a.get("/Users", query_string={"filter": f'{ENTERPRISE}:employeeNumber eq "1042"'}).json
    assert [r["id"] for r in found["Resources"]] == [created.json["id"]]


def test_filters(scim_a, kari):
    scim_a.post("/Users", user_body("ola@okta.example", "ola@acme.no", family="Hansen"))
    for expression, who in (
        ('userName eq "KARI@okta.example"', ["kari"]),
        ('externalId eq "00u1kari"', ["kari"]),
        ('externalId eq "00U1KARI"', []),  # caseExact
        ('emails[type eq "work" and value eq "ola@acme.no"]', ["ola"]),
        ('emails[type eq "work"].value eq "ola@acme.no"', ["ola"]),
        ('emails.value eq "OLA@acme.no"', ["ola"]),
        ('userName eq "kari@okta.example" and active eq true', ["kari"]),
        ('userName eq "kari@okta.example" and active eq false', []),
        ('name.familyName eq "Hansen" or externalId eq "00u1kari"', ["kari", "ola"]),
        ('userName sw "ola"', ["ola"]),
        ('not (userName eq "ola@okta.example")', ["kari"]),
        ("externalId pr", ["kari"]),
    ):
        response = scim_a.get("/Users", query_string={"filter": expression})
        assert response.status_code == 200, (expression, response.json)
        found = sorted(r["userName"].split("@")[0] for r in response.json.get("Resources", []))
        assert (found, response.json["totalResults"]) == (who, len(who)), expression
