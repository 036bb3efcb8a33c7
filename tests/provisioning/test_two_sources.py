"""Two payroll systems of one agreement push the same people every night
with data that differs in one place: after the first night nothing changes,
the admins hear of the difference exactly once, and nobody gets a "your
details have changed" email (issue: no flip-flops)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from tests.provisioning.conftest import ENTERPRISE, Scim, patch_body, user_body

NIGHTS = 30
DAY = 86400
ADMIN = "anne.admin@acme.no"
PEOPLE = [  # (employee number, email, given, family, phone); the first three have accounts already
    ("E01", "kari.nordmann@acme.no", "Kari", "Nordmann", "+4791000001"),
    ("E02", "ola.hansen@acme.no", "Ola", "Hansen", "+4791000002"),
    ("E03", "siri.berg@acme.no", "Siri", "Berg", "+4791000003"),
    ("E04", "per.dahl@acme.no", "Per", "Dahl", "+4791000004"),
    ("E05", "liv.moe@acme.no", "Liv", "Moe", "+4791000005"),
    ("E06", "nils.lie@acme.no", "Nils", "Lie", "+4791000006"),
]
# the second system spells one family name differently: the one conflict
SECOND_SYSTEM_FAMILY = {"E05": "Moen"}


class Payroll:
    """A provisioning client that syncs its people each night, like a real one:
    look each person up by userName, create the missing, send the rest again."""

    def __init__(self, scim: Scim, *, style: str):
        self.scim, self.style = scim, style  # "put": full PUTs (Okta); "patch": PATCH replace (Entra)

    def body(self, number: str, email: str, given: str, family: str, phone: str) -> dict:
        if self.style == "put":
            key, external = number, number
        else:  # keyed by the address, like a UPN; the last person without an employee number
            key, external = email, (None if number == "E06" else number)
            family = SECOND_SYSTEM_FAMILY.get(number, family)
        return user_body(key, email, given=given, family=family, external_id=external,
                         displayName=f"{given} {family}", phoneNumbers=[{"value": phone, "type": "work"}],
                         **{ENTERPRISE: {"employeeNumber": number, "department": "Finance"}})

    def night(self) -> None:
        for person in PEOPLE:
            body = self.body(*person)
            probe = f"userName eq \"{body['userName']}\""
            found = self.scim.get(f"/Users?filter={quote(probe)}")
            assert found.status_code == 200, found.get_data(as_text=True)
            resources = found.get_json()["Resources"] if found.get_json()["totalResults"] else []
            if not resources:
                created = self.scim.post("/Users", body)
                assert created.status_code == 201, created.get_data(as_text=True)
                continue
            rid = resources[0]["id"]
            if self.style == "put":
                answer = self.scim.put(f"/Users/{rid}", body)
            else:
                answer = self.scim.patch(f"/Users/{rid}", patch_body(
                    {"op": "Replace", "path": "name.givenName", "value": body["name"]["givenName"]},
                    {"op": "Replace", "path": "name.familyName", "value": body["name"]["familyName"]},
                    {"op": "Replace", "path": 'emails[type eq "work"].value', "value": body["emails"][0]["value"]},
                    {"op": "Add", "path": "displayName", "value": body["displayName"]},
                    {"op": "Replace", "path": "active", "value": "True"},
                ))
            assert answer.status_code in (200, 204), answer.get_data(as_text=True)


def snapshot(app) -> dict:
    """Everything a push could change, row by row (a conflict's last_seen may move)."""
    from visma_idp.storage import (
        AttributeSource,
        AuditEvent,
        MailOutbox,
        Membership,
        ProfileChangeNotice,
        ProvisioningConflict,
        ScimResource,
        User,
        db,
    )

    def rows(model, skip=()):
        return sorted(tuple((c.name, repr(getattr(r, c.name))) for c in model.__table__.columns if c.name not in skip)
                      for r in db.session.scalars(select(model)))

    with app.app_context():
        return {
            "users": rows(User),
            "memberships": rows(Membership, skip=("last_used_at",)),
            "sources": rows(AttributeSource),
            "resources": rows(ScimResource),
            "conflicts": rows(ProvisioningConflict, skip=("last_seen",)),
            "notices": rows(ProfileChangeNotice),
            "audit": db.session.scalar(select(func.count()).select_from(AuditEvent)),
            "mail": db.session.scalar(select(func.count()).select_from(MailOutbox)),
        }


@pytest.fixture
def admin_and_people(app, agreements, make_user):
    from visma_idp.agreements import service
    from visma_idp.storage import db, queries

    make_user(email=ADMIN, name="Anne Admin")
    for _number, email, given, family, phone in PEOPLE[:3]:
        make_user(email=email, name=f"{given} {family}", given_name=given, family_name=family, phone_number=phone)
    with app.app_context():
        agreement = service.find(agreements["a"])
        service.add_member(agreement, queries.user_by_email(ADMIN), ["admin"])
        db.session.commit()


def test_thirty_nights_of_two_systems_change_nothing_after_the_first(app, idp, client, admin_and_people,
                                                                      make_provisioning, mailbox):
    first = Payroll(Scim(client, make_provisioning("payroll-hr", "a")), style="put")
    second = Payroll(Scim(client, make_provisioning("payroll-travel", "a")), style="patch")
    idp.clock.advance(idp.settings["NOTIFY_BATCH_SECONDS"] + 1)
    mailbox.deliver()  # the admin's own "your roles have changed", from the setup

    first.night()
    second.night()
    mailbox.deliver()
    after_first = snapshot(app)
    # the family name differs, and with it the display name: two attributes, one person, one source
    assert len(after_first["conflicts"]) == 2
    for night in range(2, NIGHTS + 1):
        idp.clock.advance(DAY)
        first.night()
        second.night()
        mailbox.deliver()
        assert snapshot(app) == after_first, (f"night {night} changed something",
                                              [(m["To"], m["Subject"]) for m in mailbox.messages])

    # one notice of the one conflict, to the admin
    notices = [m for m in mailbox.messages if m["To"] == ADMIN and "Conflicting details" in m["Subject"]]
    assert len(notices) == 1
    text = mailbox.text(notices[0])
    assert "Moe" in text and "Moen" in text and "liv.moe@acme.no" in text
    assert f"{idp.issuer}/agreements/" in text and "/conflicts" in text
    # nobody was told their details changed, and the pushed people are members with their own account each
    from visma_idp.agreements import service
    from visma_idp.storage import ProvisioningConflict, db, queries

    subjects = [m["Subject"] for m in mailbox.messages]
    assert "Your account details were changed" not in subjects, subjects
    with app.app_context():
        for _number, email, given, family, phone in PEOPLE:
            user = queries.user_by_email(email)
            assert user is not None and (user.given_name, user.family_name, user.phone_number) == (given, family, phone)
            assert len(service.memberships_of(user.id)) == 1
        conflicts = db.session.scalars(select(ProvisioningConflict).order_by(ProvisioningConflict.attribute)).all()
        assert [(c.attribute, c.current_value, c.other_value) for c in conflicts] == [
            ("family_name", "Moe", "Moen"), ("name", "Liv Moe", "Liv Moen")]
        for c in conflicts:  # seen again every night (the pushes themselves take a few seconds)
            assert (NIGHTS - 1) * DAY <= c.last_seen - c.first_seen < (NIGHTS - 1) * DAY + 600
