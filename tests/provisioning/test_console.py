"""Conflicts between the sources of a person's details, as the people concerned meet them:
the email to the agreement's admins (once per conflict), their conflicts page
(provisioning/console.py: who may use it, resolving, refusals, the link on the
members page, the audit log's labels), an email address resolved in favour of
another source (the person confirms it first), and My details (the person's own
change wins over payroll; a configured authority's details are read-only)."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import func, select

from tests.helpers import csrf, path_of, query
from tests.mailbox import Mailbox
from tests.password.recovery import audit, sign_in
from tests.provisioning.conftest import Scim, patch_body, user_body

ISSUER = "http://127.0.0.1:5000"
PASSWORD = "correct horse battery"
ADMIN = "anne.admin@acme.no"  # admin of A
PER = "per.plain@acme.no"  # a plain member of A
BERIT = "berit.admin@beta.no"  # admin of B
KARI = "kari.nordmann@acme.no"  # the person both payroll systems push


@pytest.fixture
def people(app, agreements, make_user):
    from visma_idp.agreements import service
    from visma_idp.storage import db, queries

    make_user(ADMIN, PASSWORD, "Anne Admin")
    make_user(PER, PASSWORD, "Per Plain")
    make_user(BERIT, PASSWORD, "Berit Beta")
    with app.app_context():
        a, b = service.find(agreements["a"]), service.find(agreements["b"])
        service.add_member(a, queries.user_by_email(ADMIN), ["admin"])
        service.add_member(a, queries.user_by_email(PER), ["employee"])
        service.add_member(b, queries.user_by_email(BERIT), ["admin"])
        db.session.commit()
    return agreements


@pytest.fixture
def hr(app, make_provisioning, people) -> Scim:
    """Agreement A's first payroll system (it pushes Kari first)."""
    return Scim(app.test_client(), make_provisioning("payroll-hr", "a"))


@pytest.fixture
def travel(app, make_provisioning, people) -> Scim:
    """Agreement A's second system: a different family name for Kari."""
    return Scim(app.test_client(), make_provisioning("payroll-travel", "a"))


def push(scim: Scim, family: str = "Nordmann", *, email: str = KARI, **headers):
    """Push Kari (externalId E01) as a nightly sync does: create her, or replace her resource."""
    body = user_body("E01", email, given="Kari", family=family, external_id="E01", displayName="Kari Nordmann")
    found = scim.get("/Users?filter=" + quote('userName eq "E01"')).get_json()
    if found["totalResults"]:
        resp = scim.put(f"/Users/{found['Resources'][0]['id']}", body, headers=headers)
    else:
        resp = scim.post("/Users", body, headers=headers)
    assert resp.status_code in (200, 201), resp.get_data(as_text=True)
    return resp


def notices(mailbox) -> list:
    """The conflict emails sent (each links the conflicts page)."""
    return [m for m in mailbox.messages if any(path_of(link).endswith("/conflicts") for link in Mailbox.links(m))]


def source_of(app, name: str) -> str:
    from visma_idp.provisioning import clients

    with app.app_context():
        return clients.by_name(name).source


def person(app, email: str = KARI) -> dict:
    from visma_idp.storage import queries

    with app.app_context():
        user = queries.user_by_email(email)
        return {"email": user.email, "family_name": user.family_name, "given_name": user.given_name,
                "name": user.name, "phone_number": user.phone_number, "locale": user.locale, "id": user.id}


def owner(app, email: str, attribute: str) -> str | None:
    """The source that owns the person's attribute (``self``, ``scim:<id>``; a configured authority first)."""
    from visma_idp.provisioning import sources
    from visma_idp.storage import queries

    with app.app_context():
        return sources.owner(queries.user_by_email(email).id, attribute)


def conflicts(app) -> list[dict]:
    from visma_idp.storage import ProvisioningConflict, db

    with app.app_context():
        return [{c.name: getattr(row, c.name) for c in ProvisioningConflict.__table__.columns}
                for row in db.session.scalars(select(ProvisioningConflict).order_by(ProvisioningConflict.id))]


def snapshot(app) -> dict:
    """Everything resolving a conflict could change."""
    from visma_idp.storage import AttributeSource, AuditEvent, MailOutbox, ProvisioningConflict, User, db

    def rows(model):
        return sorted(tuple(repr(getattr(r, c.name)) for c in model.__table__.columns)
                      for r in db.session.scalars(select(model)))

    with app.app_context():
        return {"users": rows(User), "sources": rows(AttributeSource), "conflicts": rows(ProvisioningConflict),
                "audit": db.session.scalar(select(func.count()).select_from(AuditEvent)),
                "mail": db.session.scalar(select(func.count()).select_from(MailOutbox))}


def browser(app, email: str):
    client = app.test_client()
    assert sign_in(client, email, PASSWORD).status_code == 302
    return client


def url(agreement_id: str, conflict_id: int | None = None) -> str:
    return f"/agreements/{agreement_id}/conflicts" + (f"/{conflict_id}" if conflict_id is not None else "")


def page(client, agreement_id: str) -> str:
    resp = client.get(url(agreement_id))
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    return resp.get_data(as_text=True)


def choose(client, agreement_id: str, conflict_id: int, source: str, **extra):
    """Post one of the page's forms (its CSRF token from the page)."""
    token = csrf(page(client, agreement_id))
    return client.post(url(agreement_id, conflict_id), data={"source": source, "csrf_token": token, **extra})


@pytest.fixture
def conflict(app, hr, travel) -> dict:
    """One open conflict: payroll-hr made Kari (family name Nordmann), payroll-travel says Nordfjord."""
    push(hr)
    push(travel, "Nordfjord")
    [row] = conflicts(app)
    return row


@pytest.fixture
def anne(app, people):
    return browser(app, ADMIN)


# -- the email to the admins -----------------------------------------------------------------


def test_the_admins_hear_of_a_conflict_once(app, idp, people, hr, travel, mailbox):
    push(hr)
    push(travel, "Nordfjord", Host="evil.example")  # the link never comes from the request's host
    mailbox.deliver()
    [notice] = notices(mailbox)
    assert notice["To"] == ADMIN
    text = Mailbox.text(notice)
    assert "Nordmann" in text and "Nordfjord" in text and KARI in text
    assert "payroll-hr" in text and "payroll-travel" in text
    link = f"{ISSUER}/agreements/{people['a']}/conflicts"
    assert link in Mailbox.links(notice) and "evil.example" not in text
    assert link in Mailbox.html(notice)
    # the same again, tonight and tomorrow: nothing more (neither to Per, a plain member, nor to Berit of B)
    for _night in range(2):
        idp.clock.advance(86400)
        push(hr)
        push(travel, "Nordfjord")
        mailbox.deliver()
    assert notices(mailbox) == [notice]
    [row] = conflicts(app)
    assert (row["attribute"], row["current_value"], row["other_value"]) == ("family_name", "Nordmann", "Nordfjord")
    assert person(app)["family_name"] == "Nordmann"
    assert len(audit(app, "provisioning_conflict")) == 1


# -- the page --------------------------------------------------------------------------------


def test_the_page_lists_the_open_conflicts(app, anne, people, conflict):
    html = page(anne, people["a"])
    assert "Provisioning conflicts of Acme AS" in html and "974760673" in html
    assert f"Family name of {KARI}" in html
    assert "Nordmann" in html and "Nordfjord" in html
    assert "Keep the value from payroll-hr" in html and "Use the value from payroll-travel" in html
    assert html.count('name="csrf_token"') == 2
    assert f'action="{ISSUER}{url(people["a"], conflict["id"])}"' in html
    assert f'value="{source_of(app, "payroll-hr")}"' in html and f'value="{source_of(app, "payroll-travel")}"' in html
    assert "<time datetime=" in html
    assert "<script" not in html and "onclick" not in html.lower()


def test_no_conflicts(app, anne, people, hr):
    push(hr)
    html = page(anne, people["a"])
    assert "No open conflicts: every source agrees." in html and "<form" not in html


def test_the_members_page_links_the_conflicts_while_there_are_some(app, anne, people, hr, travel):
    members = f"/agreements/{people['a']}/members"
    push(hr)
    assert "/conflicts" not in anne.get(members).get_data(as_text=True)
    push(travel, "Nordfjord")
    html = anne.get(members).get_data(as_text=True)
    assert f'<a href="{ISSUER}{url(people["a"])}">1 provisioning conflict to resolve</a>' in html
    push(travel, "Nordfjord", email="kari.n@acme.no")  # the address differs too: a second conflict
    assert "2 provisioning conflicts to resolve" in anne.get(members).get_data(as_text=True)
    for row in conflicts(app):
        assert choose(anne, people["a"], row["id"], row["current_source"]).status_code == 303
    assert "/conflicts" not in anne.get(members).get_data(as_text=True)


# -- resolving ----------------------------------------------------------------------------------


def test_use_the_other_value(app, anne, people, conflict, hr, travel, mailbox):
    travel_source = source_of(app, "payroll-travel")
    resp = choose(anne, people["a"], conflict["id"], travel_source)
    assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + url(people["a"])
    assert person(app)["family_name"] == "Nordfjord"
    assert owner(app, KARI, "family_name") == travel_source
    [row] = conflicts(app)
    assert row["resolved_at"] is not None and row["chosen"] == travel_source
    assert row["resolved_by"] == person(app, ADMIN)["id"]
    [resolved] = audit(app, "provisioning_conflict_resolved")
    assert resolved["agreement"] == people["a"] and resolved["details"]["by"] == person(app, ADMIN)["id"]
    assert resolved["details"]["changed"] is True
    html = page(anne, people["a"])
    assert f"Family name of {KARI} now comes from payroll-travel." in html and 'role="status"' in html
    assert "No open conflicts" in html
    assert "now comes from" not in page(anne, people["a"])  # the confirmation is shown once
    # from now on the chosen source's value is applied, and the other's is the conflict
    push(travel, "Nordfjord-Berg")
    assert person(app)["family_name"] == "Nordfjord-Berg"
    push(hr, "Nordmann-Hansen")
    assert person(app)["family_name"] == "Nordfjord-Berg"
    assert [(c["current_source"], c["other_value"], c["resolved_at"]) for c in conflicts(app)][1:] == [
        (travel_source, "Nordmann-Hansen", None)]


def test_keep_the_current_value(app, anne, people, conflict):
    hr_source = source_of(app, "payroll-hr")
    assert choose(anne, people["a"], conflict["id"], hr_source).status_code == 303
    assert person(app)["family_name"] == "Nordmann"
    assert conflicts(app)[0]["chosen"] == hr_source
    assert audit(app, "provisioning_conflict_resolved")[0]["details"]["changed"] is False
    assert f"Family name of {KARI} now comes from payroll-hr." in page(anne, people["a"])


def test_a_conflict_resolved_already(app, anne, people, conflict):
    hr_source = source_of(app, "payroll-hr")
    token = csrf(page(anne, people["a"]))
    assert anne.post(url(people["a"], conflict["id"]), data={"source": hr_source, "csrf_token": token}).status_code == 303
    page(anne, people["a"])
    before = snapshot(app)
    resp = anne.post(url(people["a"], conflict["id"]), data={"source": source_of(app, "payroll-travel"),
                                                             "csrf_token": token})
    assert resp.status_code == 303
    assert "This conflict was resolved already." in page(anne, people["a"])
    assert snapshot(app) == before


@pytest.mark.parametrize("source", ["self", "scim:999", "", "x" * 5000])
def test_a_source_that_is_neither_is_refused(app, anne, people, conflict, source):
    before = snapshot(app)
    resp = choose(anne, people["a"], conflict["id"], source)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Choose one of the two values." in html and 'role="alert"' in html
    assert f'id="conflict-{conflict["id"]}-error"' in html  # next to its conflict
    assert snapshot(app) == before


def test_a_configured_authority_cannot_be_overruled(app, anne, people, make_provisioning):
    hr = Scim(app.test_client(), make_provisioning("payroll-hr", "a", authoritative_for=["family_name"]))
    travel = Scim(app.test_client(), make_provisioning("payroll-travel", "a"))
    push(hr)
    push(travel, "Nordfjord")
    [row] = conflicts(app)
    html = page(anne, people["a"])
    assert "payroll-hr is set up as the authority for this detail, so its value is always kept." in html
    assert "Keep the value from payroll-hr" in html and "Use the value from payroll-travel" not in html
    before = snapshot(app)
    resp = choose(anne, people["a"], row["id"], source_of(app, "payroll-travel"))
    assert resp.status_code == 400
    assert "payroll-hr is set up as the authority for this detail" in resp.get_data(as_text=True)
    assert snapshot(app) == before
    assert choose(anne, people["a"], row["id"], source_of(app, "payroll-hr")).status_code == 303


# -- who may use it -------------------------------------------------------------------------------


ACTORS = ("nobody", "plain member of A", "admin of B", "admin of B through B's URL", "admin of A, unknown id")
# the last two aim a post at a conflict their own list does not have (their GET is their own page)
TABLE = [(actor, method) for actor in ACTORS for method in ("GET", "POST") if method == "POST" or actor in ACTORS[:3]]


@pytest.mark.parametrize(("actor", "method"), TABLE)
def test_everyone_else_gets_the_same_404(app, people, conflict, actor, method):
    client = {"nobody": lambda: app.test_client(), "plain member of A": lambda: browser(app, PER),
              "admin of B": lambda: browser(app, BERIT), "admin of B through B's URL": lambda: browser(app, BERIT),
              "admin of A, unknown id": lambda: browser(app, ADMIN)}[actor]()
    agreement = people["b"] if actor == "admin of B through B's URL" else people["a"]
    conflict_id = 999999 if actor == "admin of A, unknown id" else conflict["id"]
    before = snapshot(app)
    token = csrf(client.get("/login").get_data(as_text=True))
    if method == "GET":
        resp = client.get(url(agreement))
    else:
        resp = client.post(url(agreement, conflict_id),
                           data={"source": source_of(app, "payroll-travel"), "csrf_token": token})
    if actor == "nobody":
        assert resp.status_code == (302 if method == "GET" else 303)
        assert resp.headers["Location"] == ISSUER + "/login"
    else:
        assert resp.status_code == 404
        assert "There is no such page, or you cannot use it." in resp.get_data(as_text=True)
        assert "Nordfjord" not in resp.get_data(as_text=True)
    assert snapshot(app) == before


def test_other_agreements_see_nothing_of_the_conflict(app, people, conflict):
    html = page(browser(app, BERIT), people["b"])
    assert "No open conflicts" in html and KARI not in html and "Nordfjord" not in html


def test_not_signed_in_comes_back_after_signing_in(app, people, conflict):
    client = app.test_client()
    assert client.get(url(people["a"])).headers["Location"] == ISSUER + "/login"
    resp = sign_in(client, ADMIN, PASSWORD)
    assert resp.status_code == 302 and path_of(resp.headers["Location"]) == url(people["a"])


def test_every_post_needs_the_csrf_token(app, anne, people, conflict):
    before = snapshot(app)
    path, form = url(people["a"], conflict["id"]), {"source": source_of(app, "payroll-travel")}
    resp = anne.post(path, data=form)
    assert resp.status_code == 400 and "This page has expired" in resp.get_data(as_text=True)
    assert anne.post(path, data={**form, "csrf_token": "forged"}).status_code == 400
    assert snapshot(app) == before


def test_an_agreement_requiring_mfa_needs_a_session_at_that_level(app, anne, people, conflict):
    from visma_idp.agreements import service
    from visma_idp.storage import db

    with app.app_context():
        service.find(people["a"]).require_acr = service.REQUIRE["mfa"]
        db.session.commit()
    before = snapshot(app)
    resp = anne.get(url(people["a"]))
    assert resp.status_code == 403 and "requires two-step verification" in resp.get_data(as_text=True)
    token = csrf(anne.get("/login").get_data(as_text=True))
    resp = anne.post(url(people["a"], conflict["id"]), data={"source": source_of(app, "payroll-travel"),
                                                             "csrf_token": token})
    assert resp.status_code == 403
    assert snapshot(app) == before
    assert browser(app, BERIT).get(url(people["a"])).status_code == 404  # an outsider still gets the 404


def test_the_confirmation_comes_only_from_the_session(anne, people, conflict):
    html = anne.get(url(people["a"]) + "?done=resolved&person=evil").get_data(as_text=True)
    assert "now comes from" not in html and 'class="done"' not in html


# -- the audit log -----------------------------------------------------------------------------------


def test_the_audit_log_names_the_provisioning_events(app, anne, people, conflict, hr, travel):
    choose(anne, people["a"], conflict["id"], source_of(app, "payroll-travel"))
    for scim in (hr, travel):  # both systems let Kari go
        resp = scim.patch(f"/Users/{scim.get('/Users').get_json()['Resources'][0]['id']}",
                          patch_body({"op": "replace", "path": "active", "value": False}))
        assert resp.status_code in (200, 204)
    html = anne.get(f"/agreements/{people['a']}/audit").get_data(as_text=True)
    for label in ("Provisioning client added", "Provisioning: record added", "Provisioning: record updated",
                  "Provisioning: account created", "Provisioning: record linked to an account",
                  "Provisioning: conflicting value not applied", "Provisioning conflict resolved",
                  "Provisioning: member removed", "Account disabled"):
        assert label in html, label
    assert "Other event" not in html


def test_every_provisioning_event_has_a_label():
    from visma_idp.agreements.console import EVENT_LABELS

    for event in ("provisioning_conflict", "provisioning_conflict_resolved", "scim_created", "scim_updated",
                  "scim_deleted", "provisioning_linked", "provisioning_user_created", "provisioning_deactivated",
                  "provisioning_invited", "provisioning_client_created", "provisioning_token_rotated",
                  "provisioning_client_removed", "provisioning_authority_changed", "user_disabled", "user_enabled",
                  "provisioning_email_taken"):
        assert event in EVENT_LABELS, event


# -- an email address -----------------------------------------------------------------------------------


@pytest.fixture
def kari_active(app, people, make_user):
    """Kari has her own account already (activated, her address verified: the pushes link to it)."""
    make_user(KARI, PASSWORD, "Kari Nordmann")


def activate(app, email: str = KARI) -> None:
    """The person followed the Welcome email's link and chose a password."""
    from visma_idp.password.service import set_password
    from visma_idp.storage import db, queries

    with app.app_context():
        user = queries.user_by_email(email)
        set_password(user, PASSWORD)
        user.activated_at, user.email_verified = app.extensions["visma_idp"].clock.now(), True
        db.session.commit()


def test_resolving_an_address_asks_the_person_to_confirm_it(app, anne, people, hr, travel, mailbox):
    push(hr)  # payroll-hr made Kari's account: the address is its
    activate(app)
    push(travel, email="kari.n@acme.no")
    [row] = conflicts(app)
    assert (row["attribute"], row["current_value"], row["other_value"]) == ("email", KARI, "kari.n@acme.no")
    mailbox.deliver()
    before = len(mailbox.messages)
    travel_source = source_of(app, "payroll-travel")
    assert choose(anne, people["a"], row["id"], travel_source).status_code == 303
    assert person(app)["email"] == KARI  # not swapped: the person confirms the new address first
    assert owner(app, KARI, "email") == travel_source
    html = page(anne, people["a"])
    assert (f"The email address of {KARI} now comes from payroll-travel. It changes when the person confirms "
            "kari.n@acme.no with the link we sent there.") in html
    confirm = mailbox.last("kari.n@acme.no")
    assert confirm["Subject"] == "Confirm your new email address"
    assert mailbox.last(KARI)["Subject"] == "A change of your email address was requested"
    assert len(audit(app, "email_change_requested")) == 1
    # tomorrow's push of the same address asks nothing more
    push(travel, email="kari.n@acme.no")
    mailbox.deliver()
    assert len(mailbox.messages) == before + 2
    # the person opens the link: now it is their address
    [link] = [link for link in Mailbox.links(confirm) if urlsplit(link).path == "/account/email/confirm"]
    client = app.test_client()
    shown = client.get(link.removeprefix(ISSUER))
    assert shown.status_code == 200
    resp = client.post("/account/email/confirm", data={"token": query(link)["token"],
                                                       "csrf_token": csrf(shown.get_data(as_text=True))})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert person(app, "kari.n@acme.no")["email"] == "kari.n@acme.no"


def test_resolving_the_address_of_a_pending_account_sends_its_activation_there(app, anne, people, hr, travel,
                                                                                  mailbox):
    push(hr)
    push(travel, email="kari.n@acme.no")
    [row] = conflicts(app)
    mailbox.deliver()
    assert choose(anne, people["a"], row["id"], source_of(app, "payroll-travel")).status_code == 303
    assert person(app, "kari.n@acme.no")["email"] == "kari.n@acme.no"  # nobody signs in with it yet
    assert "activat" in mailbox.last("kari.n@acme.no")["Subject"].lower()
    assert "No open conflicts" in page(anne, people["a"])


# -- My details ------------------------------------------------------------------------------------------


def _details(client) -> str:
    resp = client.get("/account")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def _save(client, **fields):
    token = csrf(_details(client))
    return client.post("/account/profile", data={"csrf_token": token, **fields})


FORM = {"given_name": "Kari", "family_name": "Nordmann", "name": "Kari Nordmann", "phone_number": "",
        "locale": "en"}


def test_my_details_wins_over_payroll(app, people, kari_active, hr, mailbox):
    push(hr)
    assert owner(app, KARI, "family_name") == source_of(app, "payroll-hr")
    kari = browser(app, KARI)
    assert _save(kari, **{**FORM, "family_name": "Nordmann-Lie", "phone_number": "+47 912 34 567"}).status_code == 303
    assert owner(app, KARI, "family_name") == "self" and owner(app, KARI, "phone_number") == "self"
    assert owner(app, KARI, "given_name") == source_of(app, "payroll-hr")  # unchanged: still payroll's
    # tonight's push (the payroll's record as it was) does not undo her change: its value is a conflict
    push(hr)
    assert person(app)["family_name"] == "Nordmann-Lie"
    push(hr)  # the same again: nothing new
    push(hr, "Nordmann-Berg")  # nor does a change in payroll
    assert person(app)["family_name"] == "Nordmann-Lie"
    assert [(row["current_source"], row["current_value"], row["other_value"]) for row in conflicts(app)] == [
        ("self", "Nordmann-Lie", "Nordmann"), ("self", "Nordmann-Lie", "Nordmann-Berg")]
    mailbox.deliver()
    first, second = notices(mailbox)  # one per conflict
    text = Mailbox.text(second)
    assert "Nordmann-Lie" in text and "Nordmann-Berg" in text and "the person (My details)" in text
    anne = browser(app, ADMIN)
    assert "Keep the value from the person (My details)" in page(anne, people["a"])


def test_a_configured_authority_is_read_only_on_my_details(app, people, kari_active, make_provisioning):
    hr = Scim(app.test_client(), make_provisioning("visma-lonn", "a",
                                                   authoritative_for=["family_name", "phone_number", "locale"]))
    push(hr)
    kari = browser(app, KARI)
    html = _details(kari)
    assert html.count("Kept up to date by your employer") == 3
    assert html.count("system visma-lonn. To change it, ask your employer.") == 3
    assert 'id="profile-family_name" type="text" readonly aria-describedby="profile-family_name-kept"' in html
    assert 'name="family_name"' not in html and 'name="phone_number"' not in html and 'name="locale"' not in html
    assert 'name="given_name"' in html and 'name="name"' in html  # the rest stays hers to change
    # a forged post changes nothing the system keeps; the rest is saved
    resp = _save(kari, **{**FORM, "given_name": "Karianne", "family_name": "Forged", "phone_number": "+4799999999",
                          "locale": "sv"})
    assert resp.status_code == 303
    now = person(app)
    assert (now["given_name"], now["family_name"], now["phone_number"]) == ("Karianne", "Nordmann", None)
    assert now["locale"] != "sv"
    assert owner(app, KARI, "family_name") == source_of(app, "visma-lonn")
    assert owner(app, KARI, "given_name") == "self"
    [saved] = audit(app, "profile_updated")[-1:]
    assert saved["details"]["fields"] == ["given_name"]
    # a field the system keeps is not checked either: a bad value posted for it is no error
    assert _save(kari, **{**FORM, "family_name": "<b>", "phone_number": "not a number"}).status_code == 303


def test_with_two_authorities_my_details_names_each_field_s_own(app, people, kari_active, make_provisioning):
    """Both systems hold Kari; the older is the authority where both are configured."""
    older = Scim(app.test_client(), make_provisioning("visma-lonn", "a", authoritative_for=["family_name"]))
    newer = Scim(app.test_client(), make_provisioning("hr-core", "a", authoritative_for=["family_name", "locale"]))
    push(older)
    push(newer)
    html = _details(browser(app, KARI))
    assert html.count("Kept up to date by your employer") == 2
    assert html.count("system visma-lonn. To change it, ask your employer.") == 1
    assert html.count("system hr-core. To change it, ask your employer.") == 1
    kept_by = re.findall(r'id="profile-(\w+)-kept"[^>]*>.*?system ([\w-]+)\.', html, re.S)
    assert sorted(kept_by) == [("family_name", "visma-lonn"), ("locale", "hr-core")]
    assert 'name="given_name"' in html and 'name="phone_number"' in html


def test_my_details_without_provisioning_is_unchanged(app, people, kari_active):
    html = _details(browser(app, KARI))
    assert "Kept up to date" not in html and 'name="family_name"' in html and 'name="locale"' in html


# -- in the admin's language ---------------------------------------------------------------------------------


def test_the_page_and_its_refusals_in_norwegian(app, anne, people, conflict):
    html = anne.get(url(people["a"]) + "?lang=nb").get_data(as_text=True)
    assert "Provisjoneringskonflikter i Acme AS" in html and f"Etternavn for {KARI}" in html
    assert "Behold verdien fra payroll-hr" in html and "Bruk verdien fra payroll-travel" in html
    resp = choose(anne, people["a"], conflict["id"], "self")
    assert resp.status_code == 400 and "Velg en av de to verdiene." in resp.get_data(as_text=True)
    members = anne.get(f"/agreements/{people['a']}/members").get_data(as_text=True)
    assert "1 provisjoneringskonflikt å løse" in members
    assert choose(anne, people["a"], conflict["id"], source_of(app, "payroll-travel")).status_code == 303
    assert f"Etternavn for {KARI} hentes nå fra payroll-travel." in page(anne, people["a"])
    assert "Provisjonering: motstridende verdi ikke tatt i bruk" in anne.get(
        f"/agreements/{people['a']}/audit").get_data(as_text=True)
