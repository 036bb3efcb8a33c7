"""/admin/api/agreements: agreements, members, roles, invitations, audit log
and one-time codes over the admin REST API, for system admins, agreement
admins and client_credentials services; and the isolation between agreements."""

from __future__ import annotations

import re

import pytest

from tests.admin.conftest import (
    ADMIN_A,
    ADMIN_B,
    API,
    MEMBER_A,
    MEMBER_B,
    ORG_A,
    ORG_B,
    ORG_NEW,
    PLAIN,
    SYS,
    bearer,
)


def events(app, name):
    from sqlalchemy import select

    from visma_idp.storage import AuditEvent, db

    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)))


# -- who sees what ---------------------------------------------------------------------------


def test_a_system_admin_lists_every_agreement_an_agreement_admin_only_theirs(client, world, token):
    resp = client.get(API, headers=bearer(token(SYS)))
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    assert [a["org_number"] for a in resp.get_json()["agreements"]] == [ORG_A, ORG_B]
    mine = client.get(API, headers=bearer(token(ADMIN_A))).get_json()["agreements"]
    assert [(a["id"], a["name"], a["domains"]) for a in mine] == [(world["a"], "Acme AS", ["acme.no"])]
    assert client.get(API, headers=bearer(token(PLAIN))).get_json() == {"agreements": [], "total": 0}
    found = client.get(API, query_string={"q": "bet"}, headers=bearer(token(SYS))).get_json()["agreements"]
    assert [a["org_number"] for a in found] == [ORG_B]


def test_members_of_the_own_agreement_and_not_of_another(client, world, token):
    resp = client.get(f"{API}/{world['a']}/members", headers=bearer(token(ADMIN_A)))
    assert resp.status_code == 200
    members = {m["email"]: m["roles"] for m in resp.get_json()["members"]}
    assert members == {ADMIN_A: [{"role": "admin", "client": None}],
                       MEMBER_A: [{"role": "approver", "client": None}],
                       PLAIN: [{"role": "employee", "client": None}]}
    by_org = client.get(f"{API}/{ORG_A}/members", headers=bearer(token(ADMIN_A)))
    assert by_org.status_code == 200 and by_org.get_json() == resp.get_json()
    other = client.get(f"{API}/{world['b']}/members", headers=bearer(token(ADMIN_A)))
    unknown = client.get(f"{API}/00000000-0000-0000-0000-000000000000/members", headers=bearer(token(ADMIN_A)))
    assert other.status_code == unknown.status_code == 404
    assert other.get_json() == unknown.get_json()  # an outsider learns nothing


def test_a_service_with_the_agreements_scope_manages_every_agreement(client, world, service_token):
    token = service_token()
    assert client.get(f"{API}/{world['b']}/members", headers=bearer(token)).status_code == 200
    created = client.post(API, json={"name": "Gamma AS", "org_number": ORG_NEW, "domains": ["gamma.no"],
                                     "require": "mfa"}, headers=bearer(token))
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["require"] == "mfa" and created.get_json()["domains"] == ["gamma.no"]


def test_a_service_without_an_admin_scope_is_refused(client, world, service_token):
    token = service_token("read:expenses")
    resp = client.get(API, headers=bearer(token))
    assert resp.status_code == 403 and resp.get_json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]


def test_a_service_token_of_a_removed_client_stops_working(app, client, world, service_token):
    from visma_idp.storage import Client, db

    token = service_token()
    with app.app_context():
        db.session.delete(db.session.query(Client).filter_by(client_id="provisioner").one())
        db.session.commit()
    assert client.get(API, headers=bearer(token)).status_code == 401


def test_without_a_token_or_with_a_bad_one(client, world):
    assert client.get(API).status_code == 401
    resp = client.get(API, headers=bearer("a.b.c"))
    assert resp.status_code == 401 and 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_only_system_admins_create_agreements(client, world, token):
    body = {"name": "Gamma AS", "org_number": ORG_NEW}
    assert client.post(API, json=body, headers=bearer(token(ADMIN_A))).status_code == 403
    resp = client.post(API, json=body, headers=bearer(token(SYS)))
    assert resp.status_code == 201 and resp.get_json()["org_number"] == ORG_NEW
    again = client.post(API, json=body, headers=bearer(token(SYS)))
    assert again.status_code == 409 and again.get_json()["field"] == "org_number"


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "Gamma AS", "org_number": "914994781"}, "org_number"),  # wrong check digit
    ({"name": "Gamma AS", "org_number": "12345"}, "org_number"),
    ({"name": "", "org_number": ORG_NEW}, "name"),
    ({"name": "Gamma\x00AS", "org_number": ORG_NEW}, "name"),
    ({"name": "Gamma AS", "org_number": ORG_NEW, "domains": ["*.gamma.no"]}, "domains.0"),
    ({"name": "Gamma AS", "org_number": ORG_NEW, "require": "sms"}, "require"),
    ({"name": "Gamma AS", "org_number": ORG_NEW, "owner": "me"}, "owner"),
    ({"org_number": ORG_NEW}, "name"),
])
def test_a_bad_agreement_is_400_naming_the_field(client, world, token, body, field):
    resp = client.post(API, json=body, headers=bearer(token(SYS)))
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.get_json()["error"] == "invalid_request" and resp.get_json()["field"] == field


def test_a_body_that_is_not_json_is_400(client, world, token):
    resp = client.post(API, data="name=x", headers=bearer(token(SYS)))
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"


# -- roles, removal ----------------------------------------------------------------------------


def test_an_admin_changes_roles_audited_with_who_did(app, client, world, token):
    resp = client.put(f"{API}/{world['a']}/members/{world[MEMBER_A]}/roles",
                      json={"roles": ["approver", "accountant"]}, headers=bearer(token(ADMIN_A)))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert [r["role"] for r in resp.get_json()["roles"]] == ["accountant", "approver"]
    (changed,) = [e for e in events(app, "agreement_roles_changed") if (e.details or {}).get("by")]
    assert changed.subject == MEMBER_A


def test_roles_in_one_app_need_a_known_app(client, world, token, make_client):
    resp = client.put(f"{API}/{world['a']}/members/{world[MEMBER_A]}/roles",
                      json={"roles": ["approver"], "client": "no-such-app"}, headers=bearer(token(ADMIN_A)))
    assert resp.status_code == 400 and resp.get_json()["field"] == "client"
    make_client("expense", redirect_uris=["https://expense.example.com/cb"])
    ok = client.put(f"{API}/{world['a']}/members/{world[MEMBER_A]}/roles",
                    json={"roles": ["approver"], "client": "expense"}, headers=bearer(token(ADMIN_A)))
    assert ok.status_code == 200
    assert {"role": "approver", "client": "expense"} in ok.get_json()["roles"]


def test_a_bad_role_name_is_400(client, world, token):
    resp = client.put(f"{API}/{world['a']}/members/{world[MEMBER_A]}/roles",
                      json={"roles": ["no spaces"]}, headers=bearer(token(ADMIN_A)))
    assert resp.status_code == 400 and resp.get_json()["field"] == "roles.0"


def test_an_admin_keeps_their_own_admin_role_and_membership(client, world, token):
    me = f"{API}/{world['a']}/members/{world[ADMIN_A]}"
    resp = client.put(me + "/roles", json={"roles": ["employee"]}, headers=bearer(token(ADMIN_A)))
    assert resp.status_code == 409
    assert client.delete(me, headers=bearer(token(ADMIN_A))).status_code == 409
    members = client.get(f"{API}/{world['a']}/members", headers=bearer(token(ADMIN_A))).get_json()["members"]
    assert {"role": "admin", "client": None} in next(m for m in members if m["email"] == ADMIN_A)["roles"]


def test_removing_a_member(app, client, world, token):
    resp = client.delete(f"{API}/{world['a']}/members/{world[MEMBER_A]}", headers=bearer(token(ADMIN_A)))
    assert resp.status_code == 204 and resp.headers["Cache-Control"] == "no-store"
    members = client.get(f"{API}/{world['a']}/members", headers=bearer(token(ADMIN_A))).get_json()["members"]
    assert MEMBER_A not in {m["email"] for m in members}
    assert client.delete(f"{API}/{world['a']}/members/{world[MEMBER_A]}",
                         headers=bearer(token(ADMIN_A))).status_code == 404


# -- invitations --------------------------------------------------------------------------------


def test_inviting_listing_and_revoking(app, client, world, token, mailbox):
    resp = client.post(f"{API}/{world['a']}/invitations", json={"email": "new@acme.no", "roles": ["employee"]},
                       headers=bearer(token(ADMIN_A)))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    invitation = resp.get_json()
    assert invitation["email"] == "new@acme.no" and invitation["roles"] == [{"role": "employee", "client": None}]
    listed = client.get(f"{API}/{world['a']}/invitations", headers=bearer(token(ADMIN_A))).get_json()
    assert [i["id"] for i in listed["invitations"]] == [invitation["id"]]
    # another agreement's admin cannot see or revoke it
    assert client.delete(f"{API}/{world['b']}/invitations/{invitation['id']}",
                         headers=bearer(token(ADMIN_B))).status_code == 404
    assert client.delete(f"{API}/{world['a']}/invitations/{invitation['id']}",
                         headers=bearer(token(ADMIN_B))).status_code == 404
    assert client.delete(f"{API}/{world['a']}/invitations/{invitation['id']}",
                         headers=bearer(token(ADMIN_A))).status_code == 204
    assert client.get(f"{API}/{world['a']}/invitations", headers=bearer(token(ADMIN_A))).get_json() == {
        "invitations": []}


def test_inviting_a_member_again_or_a_bad_address(client, world, token):
    again = client.post(f"{API}/{world['a']}/invitations", json={"email": MEMBER_A}, headers=bearer(token(ADMIN_A)))
    assert again.status_code == 409 and again.get_json()["field"] == "email"
    bad = client.post(f"{API}/{world['a']}/invitations", json={"email": "Kari <kari@acme.no>"},
                      headers=bearer(token(ADMIN_A)))
    assert bad.status_code == 400 and bad.get_json()["error"] == "bad_email"


# -- audit log ----------------------------------------------------------------------------------


def test_the_audit_log_names_who_did_what_and_pages(client, world, token):
    for roles in (["a1"], ["a2"], ["a3"]):
        assert client.put(f"{API}/{world['a']}/members/{world[MEMBER_A]}/roles", json={"roles": roles},
                          headers=bearer(token(ADMIN_A))).status_code == 200
    first = client.get(f"{API}/{world['a']}/audit", query_string={"limit": 2},
                       headers=bearer(token(ADMIN_A))).get_json()
    assert len(first["events"]) == 2 and first["next_before"] == first["events"][-1]["id"]
    newest = first["events"][0]
    assert newest["event"] == "agreement_roles_changed" and newest["by"] == ADMIN_A and newest["subject"] == MEMBER_A
    rest = client.get(f"{API}/{world['a']}/audit", query_string={"before": first["next_before"], "limit": 200},
                      headers=bearer(token(ADMIN_A))).get_json()
    ids = [e["id"] for e in first["events"] + rest["events"]]
    assert ids == sorted(ids, reverse=True) and rest["next_before"] is None
    subjects = {e["subject"] for e in first["events"] + rest["events"]}
    assert ADMIN_B not in subjects and MEMBER_B not in subjects  # B's rows are not A's
    assert client.get(f"{API}/{world['b']}/audit", headers=bearer(token(ADMIN_A))).status_code == 404


# -- one-time codes -------------------------------------------------------------------------------


def test_a_code_for_a_member_needs_the_right_for_their_domain(app, client, world, token):
    from visma_idp.admin import rights
    from visma_idp.storage import db, queries

    url = f"{API}/{world['a']}/members/{world[MEMBER_A]}/one-time-code"
    assert client.post(url, headers=bearer(token(ADMIN_A))).status_code == 403
    with app.app_context():
        rights.grant(queries.user_by_email(ADMIN_A), rights.ISSUE_ONE_TIME_CODES, ["acme.no"])
        db.session.commit()
    resp = client.post(url, headers=bearer(token(ADMIN_A)))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert re.fullmatch(r"[A-Z0-9-]{8,}", resp.get_json()["code"]) and resp.get_json()["email"] == MEMBER_A
    # siri@acme.no is in the right's domain but only in agreement B: not through A's URL, not through B's
    assert client.post(f"{API}/{world['a']}/members/{world[MEMBER_B]}/one-time-code",
                       headers=bearer(token(ADMIN_A))).status_code == 404
    assert client.post(f"{API}/{world['b']}/members/{world[MEMBER_B]}/one-time-code",
                       headers=bearer(token(ADMIN_A))).status_code == 404


def test_a_service_never_issues_codes(client, world, service_token):
    resp = client.post(f"{API}/{world['a']}/members/{world[MEMBER_A]}/one-time-code",
                       headers=bearer(service_token()))
    assert resp.status_code == 403


# -- the required level -------------------------------------------------------------------------


def test_an_agreement_requiring_two_steps_needs_a_token_from_such_a_sign_in(app, client, world, token):
    from visma_idp.agreements import service
    from visma_idp.storage import db

    with app.app_context():
        service.find(world["a"]).require_acr = service.REQUIRE["mfa"]
        db.session.commit()
    resp = client.get(f"{API}/{world['a']}/members", headers=bearer(token(ADMIN_A)))  # a password-only sign-in
    assert resp.status_code == 403 and resp.get_json()["error"] == "step_up_required"


def test_a_change_over_the_api_names_the_service_or_the_admin_in_the_audit(app, client, world, token,
                                                                          service_token):
    url = f"{API}/{world['a']}/members/{world[MEMBER_A]}/roles"
    assert client.put(url, json={"roles": ["s1"]}, headers=bearer(service_token())).status_code == 200
    assert client.put(url, json={"roles": ["s2"]}, headers=bearer(token(SYS))).status_code == 200
    by_service, by_person = [e.details for e in events(app, "agreement_roles_changed")][-2:]
    assert by_service["via_client"] == "provisioner" and "by" not in by_service
    from visma_idp.storage import queries

    with app.app_context():
        assert by_person["by"] == queries.user_by_email(SYS).id and by_person["via_client"] == "admin-tool"


def test_a_system_admin_changes_the_level_domains_and_status(app, client, world, token):
    url = f"{API}/{world['b']}"
    resp = client.patch(url, json={"require": "mfa", "domains": ["beta.no"]}, headers=bearer(token(SYS)))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["require"] == "mfa" and resp.get_json()["domains"] == ["beta.no"]
    assert client.patch(url, json={"require": None}, headers=bearer(token(SYS))).get_json()["require"] is None
    closed = client.patch(url, json={"status": "closed"}, headers=bearer(token(SYS)))
    assert closed.get_json()["status"] == "closed"
    # B's own admin may not change it (403), and no longer sees the closed agreement at all (404)
    assert client.patch(f"{API}/{world['a']}", json={"status": "closed"},
                        headers=bearer(token(ADMIN_A))).status_code == 403
    assert client.get(url, headers=bearer(token(ADMIN_B))).status_code == 404
    assert client.patch(url, json={"domains": ["*.beta.no"]}, headers=bearer(token(SYS))).status_code == 400
    assert [e.event for e in events(app, "agreement_closed")] == ["agreement_closed"]


@pytest.mark.parametrize(("q", "found"), [("acme", [ORG_A]), ("ACME.NO", [ORG_A]), ("9236", [ORG_B]),
                                          ("%", []), ("_", []), ("\\", []), ("", [ORG_A, ORG_B])])
def test_the_search_runs_in_the_database_and_takes_wildcards_literally(client, world, token, q, found):
    resp = client.get(API, query_string={"q": q}, headers=bearer(token(SYS)))
    assert resp.status_code == 200
    assert [a["org_number"] for a in resp.get_json()["agreements"]] == found
    assert resp.get_json()["total"] == len(found)


def test_the_list_is_cut_at_the_limit_and_says_how_many_there_are(client, world, token):
    resp = client.get(API, query_string={"limit": 1}, headers=bearer(token(SYS))).get_json()
    assert len(resp["agreements"]) == 1 and resp["total"] == 2
