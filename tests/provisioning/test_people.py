"""The accounts behind pushed people (provisioning/people.py, sources.py):
whom a push links to and whom it never does, people without an address, the
address as the sign-in name (confirmed, never swapped), and who owns an
attribute."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.account.test_change_email import confirm, link_in
from tests.provisioning.conftest import Scim, patch_body, user_body

ORG_A = "974760673"


def account(app, email):
    from visma_idp.storage import queries

    with app.app_context():
        return queries.user_by_email(email)


def member_of_a(app, agreements, email) -> bool:
    from visma_idp.agreements import service

    with app.app_context():
        user = account(app, email)
        return user is not None and service.membership(user.id, service.find(agreements["a"]).id) is not None


def linked_user(app, resource_id):
    from visma_idp.storage import ScimResource, db

    with app.app_context():
        return db.session.scalar(select(ScimResource.user_id).where(ScimResource.scim_id == resource_id))


def subjects(mailbox, to):
    return [m["Subject"] for m in mailbox.to(to)]


def test_a_new_person_gets_a_pending_account_in_the_agreement_and_the_activation_email(app, agreements, scim_a,
                                                                                        mailbox):
    created = scim_a.post("/Users", user_body("E1", "kari@acme.no", phoneNumbers=[{"value": "+47 912 34 567",
                                                                                      "type": "mobile"}]))
    assert created.status_code == 201
    user = account(app, "kari@acme.no")
    assert user.status == "pending" and (user.given_name, user.family_name, user.name) == (
        "Kari", "Nordmann", "Kari Nordmann")
    assert user.phone_number == "+4791234567" and not user.phone_number_verified
    assert member_of_a(app, agreements, "kari@acme.no")
    assert any("activate" in s.lower() for s in subjects(mailbox, "kari@acme.no"))


def test_a_person_without_an_address_is_kept_until_one_arrives(app, agreements, scim_a, mailbox):
    created = scim_a.post("/Users", user_body("E2", None))
    assert created.status_code == 201
    rid = created.get_json()["id"]
    assert linked_user(app, rid) is None
    assert scim_a.get(f"/Users/{rid}").get_json()["userName"] == "E2"
    scim_a.patch(f"/Users/{rid}", patch_body({"op": "Add", "path": "emails",
                                              "value": [{"value": "ola@acme.no", "type": "work", "primary": True}]}))
    assert linked_user(app, rid) == account(app, "ola@acme.no").id
    assert member_of_a(app, agreements, "ola@acme.no")
    assert any("activate" in s.lower() for s in subjects(mailbox, "ola@acme.no"))


def test_a_verified_account_in_the_agreements_domain_is_linked(app, agreements, scim_a, make_user, mailbox):
    make_user(email="siri@acme.no", name="Siri Berg")
    created = scim_a.post("/Users", user_body("E3", "siri@acme.no", given="Siri", family="Berg"))
    assert created.status_code == 201
    assert linked_user(app, created.get_json()["id"]) == account(app, "siri@acme.no").id
    assert member_of_a(app, agreements, "siri@acme.no")


def test_an_account_outside_the_agreements_domains_is_invited_never_taken_over(app, agreements, scim_a, make_user,
                                                                                mailbox):
    from visma_idp.agreements import service
    from visma_idp.storage import db

    make_user(email="per@gmail.com", name="Per Privat")
    before = account(app, "per@gmail.com")
    created = scim_a.post("/Users", user_body("E4", "per@gmail.com", given="Peder", family="Ålesund"))
    unknown = scim_a.post("/Users", user_body("E5", "nobody.here@gmail.com"))
    # the answer is the same as for an address nobody has
    assert created.status_code == unknown.status_code == 201
    assert set(created.get_json()) == set(unknown.get_json())
    rid = created.get_json()["id"]
    assert linked_user(app, rid) is None
    after = account(app, "per@gmail.com")
    assert (after.name, after.given_name, after.family_name) == (before.name, before.given_name, before.family_name)
    assert not member_of_a(app, agreements, "per@gmail.com")
    assert [s for s in subjects(mailbox, "per@gmail.com") if "Acme AS" in s or "invit" in s.lower()]
    # pushing again does not invite again
    count = len(mailbox.to("per@gmail.com"))
    scim_a.put(f"/Users/{rid}", user_body("E4", "per@gmail.com", given="Peder", family="Ålesund", title="Boss"))
    assert len(mailbox.to("per@gmail.com")) == count
    # once they have joined (accepting the invitation), the next push links them
    with app.app_context():
        service.add_member(service.find(agreements["a"]), account(app, "per@gmail.com"))
        db.session.commit()
    scim_a.put(f"/Users/{rid}", user_body("E4", "per@gmail.com", given="Peder", family="Ålesund"))
    assert linked_user(app, rid) == before.id


def test_an_unverified_account_in_the_domain_is_not_linked(app, agreements, scim_a, mailbox):
    from visma_idp.admin.service import create_user
    from visma_idp.storage import db

    with app.app_context():
        create_user("nils@acme.no", "Nils", invite=False)  # pending: nobody proved the address
        db.session.commit()
    created = scim_a.post("/Users", user_body("E6", "nils@acme.no"))
    assert created.status_code == 201
    assert linked_user(app, created.get_json()["id"]) is None
    assert not member_of_a(app, agreements, "nils@acme.no")


def test_a_second_system_links_by_external_id(app, agreements, scim_a, make_provisioning, client):
    first = scim_a.post("/Users", user_body("E7", "liv@acme.no", external_id="emp-7"))
    other = Scim(client, make_provisioning("travel", "a"))
    second = other.post("/Users", user_body("liv.moe", None, external_id="emp-7"))
    assert second.status_code == 201
    assert linked_user(app, second.get_json()["id"]) == linked_user(app, first.get_json()["id"]) is not None


def test_a_new_address_for_an_active_person_is_confirmed_first_and_asked_once(app, agreements, scim_a, client,
                                                                             make_user, mailbox):
    make_user(email="kari@acme.no", name="Kari Nordmann", given_name="Kari", family_name="Nordmann")
    created = scim_a.post("/Users", user_body("E8", "kari@acme.no"))
    rid = created.get_json()["id"]
    moved = patch_body({"op": "Replace", "path": 'emails[type eq "work"].value', "value": "kari.nordmann@acme.no"})
    assert scim_a.patch(f"/Users/{rid}", moved).status_code in (200, 204)
    # not swapped: the person confirms from the new mailbox first
    assert account(app, "kari@acme.no") is not None and account(app, "kari.nordmann@acme.no") is None
    link = link_in(mailbox, "kari.nordmann@acme.no", "/account/email/confirm")
    assert mailbox.to("kari@acme.no")  # the old address is told
    # the same address again asks nothing more
    count = len(mailbox.messages)
    scim_a.put(f"/Users/{rid}", {**scim_a.get(f"/Users/{rid}").get_json(), "title": "Controller"})
    mailbox.deliver()
    assert len(mailbox.messages) == count
    confirm(client, link)
    assert account(app, "kari.nordmann@acme.no") is not None and account(app, "kari@acme.no") is None


def test_a_new_address_for_a_pending_person_moves_the_activation(app, agreements, scim_a, mailbox):
    created = scim_a.post("/Users", user_body("E9", "per@acme.no"))
    rid = created.get_json()["id"]
    scim_a.patch(f"/Users/{rid}", patch_body({"op": "Replace", "path": 'emails[type eq "work"].value',
                                              "value": "per.dahl@acme.no"}))
    assert account(app, "per@acme.no") is None
    assert account(app, "per.dahl@acme.no").status == "pending"
    assert any("activate" in s.lower() for s in subjects(mailbox, "per.dahl@acme.no"))


def test_the_persons_own_change_wins_over_payroll(app, agreements, scim_a, mailbox):
    from visma_idp.provisioning import sources
    from visma_idp.storage import ProvisioningConflict, db

    created = scim_a.post("/Users", user_body("E10", "anne@acme.no", given="Anne", family="Lie"))
    rid = created.get_json()["id"]
    with app.app_context():
        user = account(app, "anne@acme.no")
        user = db.session.merge(user)
        user.family_name = "Lie-Berg"
        sources.person_changed(user, ["family_name"])
        db.session.commit()
    scim_a.put(f"/Users/{rid}", user_body("E10", "anne@acme.no", given="Anne", family="Lie", title="Again"))
    assert account(app, "anne@acme.no").family_name == "Lie-Berg"
    with app.app_context():
        row = db.session.scalars(select(ProvisioningConflict)).one()
        assert (row.current_source, row.current_value, row.other_value) == ("self", "Lie-Berg", "Lie")


def test_a_configured_authority_wins_over_the_person(app, agreements, make_provisioning, client):
    from visma_idp.provisioning import sources
    from visma_idp.storage import ProvisioningConflict, db

    scim = Scim(client, make_provisioning("hr", "a", authoritative_for=["family_name"]))
    rid = scim.post("/Users", user_body("E11", "ida@acme.no", given="Ida", family="Holm")).get_json()["id"]
    with app.app_context():
        user = db.session.merge(account(app, "ida@acme.no"))
        sources.person_changed(user, ["family_name"])
        db.session.commit()
    scim.put(f"/Users/{rid}", user_body("E11", "ida@acme.no", given="Ida", family="Holm-Dahl"))
    assert account(app, "ida@acme.no").family_name == "Holm-Dahl"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ProvisioningConflict)) == 0


def test_a_leaver_in_one_system_stays_while_another_system_of_the_agreement_holds_them(
        app, agreements, scim_a, make_provisioning, client):
    first = scim_a.post("/Users", user_body("E12", "tor@acme.no", external_id="emp-12")).get_json()["id"]
    other = Scim(client, make_provisioning("travel", "a"))
    second = other.post("/Users", user_body("tor", "tor@acme.no", external_id="emp-12")).get_json()["id"]
    off = patch_body({"op": "Replace", "path": "active", "value": False})
    scim_a.patch(f"/Users/{first}", off)
    assert member_of_a(app, agreements, "tor@acme.no")
    other.patch(f"/Users/{second}", off)
    assert not member_of_a(app, agreements, "tor@acme.no")
    assert not account(app, "tor@acme.no").is_active  # in no agreement now
    # the system that did not disable the account brings the person back
    scim_a.patch(f"/Users/{first}", patch_body({"op": "Replace", "path": "active", "value": True}))
    assert member_of_a(app, agreements, "tor@acme.no") and account(app, "tor@acme.no").is_active


def test_payroll_sending_the_same_old_value_after_the_persons_change_is_one_conflict(app, agreements, scim_a):
    from visma_idp.provisioning import sources
    from visma_idp.storage import AuditEvent, ProvisioningConflict, ScimResource, db

    body = user_body("E13", "eva@acme.no", given="Eva", family="Lund")
    rid = scim_a.post("/Users", body).get_json()["id"]
    with app.app_context():
        user = db.session.merge(account(app, "eva@acme.no"))
        user.family_name = "Lund-Holm"
        sources.person_changed(user, ["family_name"])
        db.session.commit()
    for _night in range(3):  # the resource itself does not change: scim2-server stores nothing
        assert scim_a.put(f"/Users/{rid}", body).status_code == 200
    with app.app_context():
        assert account(app, "eva@acme.no").family_name == "Lund-Holm"
        rows = db.session.scalars(select(ProvisioningConflict)).all()
        assert [(r.attribute, r.current_source, r.other_value) for r in rows] == [("family_name", "self", "Lund")]
        assert db.session.scalar(select(ScimResource.version).where(ScimResource.scim_id == rid)) == 1
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.event == "provisioning_conflict")) == 1


def test_a_scim_request_keeps_no_cookie_and_mails_in_the_persons_language(app, agreements, scim_a, mailbox):
    created = scim_a.post("/Users?lang=sv", user_body("E14", "mari@acme.no", preferredLanguage="nb-NO"),
                          headers={"Accept-Language": "da"})
    assert created.status_code == 201
    assert "Set-Cookie" not in created.headers and "Cookie" not in created.headers.get("Vary", "")
    assert account(app, "mari@acme.no").locale == "nb"
    [welcome] = mailbox.to("mari@acme.no")
    assert welcome["Subject"] == "Velkommen – aktiver kontoen din"
    # a person without a language gets the deployment's default, not the payroll system's
    scim_a.post("/Users?lang=sv", user_body("E15", "jon@acme.no"), headers={"Accept-Language": "da"})
    [other] = mailbox.to("jon@acme.no")
    assert other["Subject"] == "Welcome: activate your account"
