"""What Microsoft Entra ID's provisioning client sends, replayed: the probe
by ``userName``, the creation, PATCHes with capitalised ``op`` values (with
and without ``path``, with a value filter in it), an ``Add`` of what is there
already, deactivation with ``active`` as the string ``"False"``, the hard
delete, and groups whose members come and go (the agreement's roles)."""

from __future__ import annotations

import pytest

from tests.provisioning.conftest import ENTERPRISE, ORG_A, USER_SCHEMA, patch_body

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ENTRA_USER = "kari.nordmann@acme.onmicrosoft.com"
ADDRESS = "kari@acme.no"


def entra_user(user_name: str = ENTRA_USER, address: str = ADDRESS, object_id: str = "0a21f0f2-8d2a-4f8e-bf98") -> dict:
    """A creation as Entra sends it: both schemas, ``meta.resourceType``, an empty ``roles``."""
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": object_id,
        "userName": user_name,
        "active": True,
        "displayName": "Kari Nordmann",
        "emails": [{"primary": True, "type": "work", "value": address}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Kari Nordmann", "familyName": "Nordmann", "givenName": "Kari"},
        "roles": [],
        ENTERPRISE: {"department": "Lønn"},
    }


def person(app, scim_id: str):
    """(the account behind a User resource, its roles in agreement A or None when not a member)."""
    from visma_idp.agreements import service
    from visma_idp.storage import Agreement, ScimResource, User, db

    with app.app_context():
        row = db.session.scalar(db.select(ScimResource).where(ScimResource.scim_id == scim_id))
        assert row is not None and row.user_id is not None, f"no account behind {scim_id}"
        user = db.session.get(User, row.user_id)
        agreement = db.session.scalar(db.select(Agreement).where(Agreement.org_number == ORG_A))
        membership = service.membership(user.id, agreement.id)
        roles = None if membership is None else sorted(r["role"] for r in membership.roles or [])
        db.session.expunge(user)
        db.session.remove()
        return user, roles


def roles(app, scim_id: str) -> list[str] | None:
    return person(app, scim_id)[1]


def audit_rows(app) -> int:
    from visma_idp.storage import AuditEvent, db

    with app.app_context():
        count = db.session.scalar(db.select(db.func.count(AuditEvent.id)))
        db.session.remove()
        return count


def version(app, scim_id: str) -> tuple[int, int]:
    from visma_idp.storage import ScimResource, db

    with app.app_context():
        row = db.session.scalar(db.select(ScimResource).where(ScimResource.scim_id == scim_id))
        out = (row.version, row.updated_at)
        db.session.remove()
        return out


@pytest.fixture
def created(scim_a):
    """Entra's first sync of Kari: the probe finds nobody, the POST creates her."""
    probe = scim_a.get("/Users", query_string={"filter": f'userName eq "{ENTRA_USER}"'})
    assert probe.status_code == 200
    assert probe.json["schemas"] == [LIST_SCHEMA]
    assert probe.json["totalResults"] == 0
    assert probe.json.get("Resources", []) == []
    response = scim_a.post("/Users", entra_user())
    assert response.status_code == 201, response.json
    return response.json


def test_the_probe_then_finds_the_created_user_whatever_the_case(scim_a, created):
    for spelling in (ENTRA_USER, ENTRA_USER.upper()):
        found = scim_a.get("/Users", query_string={"filter": f'userName eq "{spelling}"'})
        assert found.status_code == 200
        assert found.json["totalResults"] == 1
        assert [r["id"] for r in found.json["Resources"]] == [created["id"]]
    by_object_id = scim_a.get("/Users", query_string={"filter": 'externalId eq "0a21f0f2-8d2a-4f8e-bf98"'})
    assert [r["id"] for r in by_object_id.json["Resources"]] == [created["id"]]


def test_the_creation_is_answered_as_entra_reads_it(app, scim_a, created):
    assert created["userName"] == ENTRA_USER
    assert created["active"] is True
    assert created["meta"]["resourceType"] == "User"
    assert created["meta"]["location"] == f"{app.extensions['visma_idp'].issuer}/scim/v2/Users/{created['id']}"
    assert created[ENTERPRISE] == {"department": "Lønn"}
    assert "password" not in created
    user, agreement_roles = person(app, created["id"])
    assert user.email == ADDRESS and user.status == "pending"
    assert agreement_roles == []  # a member of the agreement, without roles yet


def test_patch_with_capitalised_ops_and_a_value_filter_path(app, scim_a, created):
    path = f"/Users/{created['id']}"
    response = scim_a.patch(path, patch_body(
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "kari.nordmann@acme.no"},
        {"op": "Replace", "path": "name.familyName", "value": "Nordmann-Berg"},
        {"op": "Add", "path": "phoneNumbers", "value": [{"type": "work", "value": "+47 22 33 44 55"}]},
        {"op": "Replace", "value": {"displayName": "Kari Nordmann-Berg", "title": "Lønnsansvarlig"}},
        {"op": "Add", "value": {"nickName": "Kari N."}},
    ))
    assert response.status_code in (200, 204), response.json

    user = scim_a.get(path).json
    assert user["emails"] == [{"primary": True, "type": "work", "value": "kari.nordmann@acme.no"}]
    assert user["name"]["familyName"] == "Nordmann-Berg"
    assert user["name"]["givenName"] == "Kari"
    assert user["phoneNumbers"] == [{"type": "work", "value": "+47 22 33 44 55"}]
    assert (user["displayName"], user["title"], user["nickName"]) == ("Kari Nordmann-Berg", "Lønnsansvarlig", "Kari N.")

    user = person(app, created["id"])[0]
    assert user.email == "kari.nordmann@acme.no"  # pending: the activation goes to the new address
    assert (user.family_name, user.name) == ("Nordmann-Berg", "Kari Nordmann-Berg")
    assert user.phone_number == "+4722334455"


def test_an_add_of_what_is_there_changes_nothing(app, scim_a, created):
    path = f"/Users/{created['id']}"
    before = scim_a.get(path)
    rows = audit_rows(app)
    stored = version(app, created["id"])

    response = scim_a.patch(path, patch_body(
        {"op": "Add", "path": "emails", "value": [{"primary": True, "type": "work", "value": ADDRESS}]},
        {"op": "Add", "path": "externalId", "value": "0a21f0f2-8d2a-4f8e-bf98"},
        {"op": "Add", "value": {"active": True, "displayName": "Kari Nordmann"}},
        {"op": "Replace", "path": "name.givenName", "value": "Kari"},
    ))
    assert response.status_code in (200, 204), response.json

    after = scim_a.get(path)
    assert after.json["emails"] == [{"primary": True, "type": "work", "value": ADDRESS}]
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.json["meta"] == before.json["meta"]
    assert version(app, created["id"]) == stored
    assert audit_rows(app) == rows


def test_deactivation_with_the_string_false_ends_the_membership(app, scim_a, created):
    path = f"/Users/{created['id']}"
    response = scim_a.patch(path, patch_body({"op": "Replace", "path": "active", "value": "False"}))
    assert response.status_code in (200, 204), response.json
    assert roles(app, created["id"]) is None

    got = scim_a.get(path)
    assert got.status_code == 200
    assert got.json["active"] is False
    listed = scim_a.get("/Users", query_string={"filter": f'userName eq "{ENTRA_USER}"'})
    assert listed.json["Resources"][0]["active"] is False

    again = scim_a.patch(path, patch_body({"op": "Replace", "value": {"active": "True"}}))
    assert again.status_code in (200, 204), again.json
    assert scim_a.get(path).json["active"] is True
    assert roles(app, created["id"]) == []


def test_only_the_hard_delete_deletes(app, scim_a, created):
    path = f"/Users/{created['id']}"
    assert scim_a.patch(path, patch_body({"op": "Replace", "path": "active", "value": "False"})).status_code in (200, 204)
    assert scim_a.get(path).status_code == 200

    deleted = scim_a.delete(path)
    assert deleted.status_code == 204
    assert deleted.data == b""
    gone = scim_a.get(path)
    assert gone.status_code == 404
    assert gone.json["status"] == "404"
    assert scim_a.get("/Users", query_string={"filter": f'userName eq "{ENTRA_USER}"'}).json["totalResults"] == 0
    assert scim_a.delete(path).status_code == 404


def test_group_members_come_and_go_as_agreement_roles(app, scim_a, created):
    other = scim_a.post("/Users", entra_user("ola@acme.onmicrosoft.com", "ola@acme.no", "7c1f")).json
    probe = scim_a.get("/Groups", query_string={"filter": 'displayName eq "Expense Approvers"',
                                                "excludedAttributes": "members"})
    assert probe.status_code == 200 and probe.json["totalResults"] == 0

    group = scim_a.post("/Groups", {"schemas": [GROUP_SCHEMA], "externalId": "9e4b", "displayName": "Expense Approvers",
                                    "meta": {"resourceType": "Group"}})
    assert group.status_code == 201, group.json
    path = f"/Groups/{group.json['id']}"

    added = scim_a.patch(path, patch_body({"op": "Add", "path": "members",
                                           "value": [{"$ref": None, "value": created["id"]},
                                                     {"$ref": None, "value": other["id"]}]}))
    assert added.status_code in (200, 204), added.json
    assert roles(app, created["id"]) == ["expense-approvers"]
    assert roles(app, other["id"]) == ["expense-approvers"]

    members = scim_a.get(path).json["members"]
    assert sorted(m["value"] for m in members) == sorted([created["id"], other["id"]])
    assert {m["$ref"] for m in members} == {f"{app.extensions['visma_idp'].issuer}/scim/v2/Users/{created['id']}",
                                            f"{app.extensions['visma_idp'].issuer}/scim/v2/Users/{other['id']}"}
    without = scim_a.get(path, query_string={"excludedAttributes": "members"}).json
    assert "members" not in without and without["displayName"] == "Expense Approvers"

    rows, etag = audit_rows(app), scim_a.get(path).headers["ETag"]
    again = scim_a.patch(path, patch_body({"op": "Add", "path": "members", "value": [{"value": created["id"]}]}))
    assert again.status_code in (200, 204)
    assert len(scim_a.get(path).json["members"]) == 2
    assert scim_a.get(path).headers["ETag"] == etag
    assert audit_rows(app) == rows

    removed = scim_a.patch(path, patch_body({"op": "Remove", "path": f'members[value eq "{created["id"]}"]'}))
    assert removed.status_code in (200, 204), removed.json
    assert roles(app, created["id"]) == []
    assert roles(app, other["id"]) == ["expense-approvers"]
    assert [m["value"] for m in scim_a.get(path).json["members"]] == [other["id"]]

    # Entra's other spelling of a removal: the members to remove as the value
    removed = scim_a.patch(path, patch_body({"op": "Remove", "path": "members", "value": [{"value": other["id"]}]}))
    assert removed.status_code in (200, 204), removed.json
    assert roles(app, other["id"]) == []
    assert scim_a.get(path).json.get("members", []) == []


def test_a_renamed_group_renames_the_role(app, scim_a, created):
    group = scim_a.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Payroll",
                                    "members": [{"value": created["id"]}]}).json
    assert roles(app, created["id"]) == ["payroll"]
    response = scim_a.patch(f"/Groups/{group['id']}",
                            patch_body({"op": "Replace", "path": "displayName", "value": "Payroll Admins"}))
    assert response.status_code in (200, 204), response.json
    assert roles(app, created["id"]) == ["payroll-admins"]

    assert scim_a.delete(f"/Groups/{group['id']}").status_code == 204
    assert roles(app, created["id"]) == []


def test_what_entra_sends_besides_the_rfc(app, scim_a):
    """A replace of the work address the person lacks adds it; the manager
    as a bare id; a removal of a member the group does not have."""
    body = entra_user()
    del body["emails"]
    user = scim_a.post("/Users", body).json
    path = f"/Users/{user['id']}"
    manager = scim_a.post("/Users", entra_user("boss@acme.onmicrosoft.com", "boss@acme.no", "5d2e")).json

    response = scim_a.patch(path, patch_body(
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": ADDRESS},
        {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": manager["id"]},
        {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "1042"},
    ))
    assert response.status_code in (200, 204), response.json
    got = scim_a.get(path).json
    assert got["emails"] == [{"type": "work", "value": ADDRESS}]
    assert got[ENTERPRISE]["manager"]["value"] == manager["id"]
    assert got[ENTERPRISE]["employeeNumber"] == "1042"
    assert person(app, user["id"])[0].email == ADDRESS  # the address arrived: the account is made

    group = scim_a.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Payroll"}).json
    removed = scim_a.patch(f"/Groups/{group['id']}", patch_body(
        {"op": "Remove", "path": "members", "value": [{"value": user["id"]}]}))
    assert removed.status_code in (200, 204), removed.json
