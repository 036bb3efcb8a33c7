"""The agreement admins' members page (agreements/console.py), over HTTP:
who may see and use it (the isolation table: every endpoint by every kind
of actor), inviting, revoking, changing roles, removing, the rules that keep
an admin from locking themselves out, the CSRF token, and the link on My
details."""

from __future__ import annotations

import re

import pytest

from tests.agreements import any_org_number
from tests.helpers import csrf, path_of
from tests.mailbox import Mailbox
from tests.password.recovery import audit, sign_in

ISSUER = "http://127.0.0.1:5000"
PASSWORD = "correct horse battery"
KARI = "kari@example.no"  # admin of Nordlys (the flow's user)
OLA = "ola@example.no"  # member of Nordlys: employee, approver in the expense app
PER = "per@example.no"  # member of Nordlys: employee (a plain member)
BERIT = "berit@example.no"  # admin of Fjord
NILS = "nils@example.no"  # member of Fjord only
NINA = "nina@example.no"  # no account


@pytest.fixture
def world(app, flow, make_user):
    """Nordlys (A): Kari admin, Ola and Per members, an invitation to Nina.
    Fjord (B): Berit admin, Nils member, an invitation to Nina too."""
    from visma_idp.agreements import invitations, service
    from visma_idp.storage import db, queries

    for email, name in ((OLA, "Ola Nordmann"), (PER, "Per Hansen"), (BERIT, "Berit Fjeld"), (NILS, "Nils Fjord")):
        make_user(email, PASSWORD, name)
    with app.test_request_context():
        user = queries.user_by_email
        nordlys = service.create("Nordlys Regnskap AS", "974760673")
        fjord = service.create("Fjord Transport AS", any_org_number("91234567"))
        service.add_member(nordlys, user(KARI), ["admin", "employee"])
        service.add_member(nordlys, user(OLA), ["employee"])
        service.add_member(nordlys, user(OLA), ["approver"], client_id="expense")
        service.add_member(nordlys, user(PER), ["employee"])
        service.add_member(fjord, user(BERIT), ["admin"])
        service.add_member(fjord, user(NILS), ["employee"])
        a_inv = invitations.invite(nordlys, NINA, ["employee"], invited_by=user(KARI))
        b_inv = invitations.invite(fjord, NINA, ["driver"], invited_by=user(BERIT))
        db.session.commit()
        return {
            "A": nordlys.public_id, "B": fjord.public_id, "a_inv": a_inv.id, "b_inv": b_inv.id,
            "sub": {email: user(email).sub for email in (KARI, OLA, PER, BERIT, NILS)},
        }


def _signed_in_client(app, email):
    client = app.test_client()
    assert sign_in(client, email, PASSWORD).status_code == 302
    return client


def _members_url(agreement_id: str) -> str:
    return f"/agreements/{agreement_id}/members"


def _token(client) -> str:
    """A CSRF token of this browser (from a page anyone may open)."""
    return csrf(client.get("/login").get_data(as_text=True))


def _snapshot(app) -> dict:
    """Everything a post of the page could change."""
    from visma_idp.storage import AgreementInvitation, AuditEvent, MailOutbox, Membership, db

    with app.app_context():
        return {
            "memberships": sorted((m.agreement_id, m.user_id, repr(m.roles))
                                  for m in db.session.scalars(db.select(Membership))),
            "invitations": sorted((i.id, i.agreement_id, i.email, i.accepted_at, i.revoked_at)
                                  for i in db.session.scalars(db.select(AgreementInvitation))),
            "audit": db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)
                                       .where(AuditEvent.event.like("agreement%"))),
            "mail": db.session.scalar(db.select(db.func.count()).select_from(MailOutbox)),
        }


def _roles(app, agreement_id, email):
    from visma_idp.agreements import service
    from visma_idp.storage import queries

    with app.app_context():
        row = service.membership(queries.user_by_email(email).id, service.find(agreement_id).id)
        return None if row is None else row.roles


@pytest.fixture
def kari(flow, world):
    """Kari's browser, signed in through an authorization request."""
    assert "code" in flow.authorize()
    return flow.client


def _page(client, agreement_id):
    resp = client.get(_members_url(agreement_id))
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    return resp.get_data(as_text=True)


def _post(client, path, data=None, *, page_of=None):
    """Post a form of the members page (its CSRF token from the page, or from the sign-in page)."""
    token = csrf(_page(client, page_of)) if page_of else _token(client)
    return client.post(path, data={**(data or {}), "csrf_token": token})


# -- the page --------------------------------------------------------------------------------


def test_the_page_shows_members_invitations_and_forms(kari, world):
    html = _page(kari, world["A"])
    assert "Members of Nordlys Regnskap AS" in html and "974760673" in html
    emails = re.findall(r'<p class="factor-name"><strong>([^<]+)</strong>', html)
    assert emails == [KARI, OLA, PER, NINA]  # the members by email, then the pending invitation
    assert "approver (expense), employee" not in html  # every app's roles first
    assert "employee, approver (expense)" in html  # Ola: the app's role names its id
    assert "admin, employee" in html
    assert NILS not in html and BERIT not in html and "driver" not in html  # nothing of Fjord
    assert html.count('name="csrf_token"') >= 6
    assert "<script" not in html and "onclick" not in html.lower() and "<table" not in html
    # every input has its label
    ids = re.findall(r'<input id="([^"]+)"', html)
    assert ids and all(f'<label for="{fid}">' in html for fid in ids)
    # Kari is not offered to remove herself; the others are
    assert f"/members/{world['sub'][KARI]}/remove" not in html
    assert f"/members/{world['sub'][OLA]}/remove" in html
    assert f"/invitations/{world['a_inv']}/revoke" in html and f"/invitations/{world['b_inv']}/" not in html


def test_not_signed_in_goes_to_sign_in_and_comes_back(app, client, world):
    resp = client.get(_members_url(world["A"]))
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + "/login"
    resp = sign_in(client, KARI, PASSWORD)
    assert resp.status_code == 302 and path_of(resp.headers["Location"]) == _members_url(world["A"])


def test_the_same_404_for_everyone_else(app, world):
    per, berit = _signed_in_client(app, PER), _signed_in_client(app, BERIT)
    unknown = per.get(_members_url("00000000-0000-0000-0000-000000000000"))
    plain = per.get(_members_url(world["A"]))
    other = berit.get(_members_url(world["A"]))
    by_number = berit.get(_members_url("974760673"))  # only the public id names the page
    for resp in (unknown, plain, other, by_number):
        assert resp.status_code == 404
    def text(resp, agreement_id):  # the page, but for the address it was asked at (the language links)
        return resp.get_data(as_text=True).replace(agreement_id, "ID")

    assert text(plain, world["A"]) == text(unknown, "00000000-0000-0000-0000-000000000000") == text(other, world["A"])
    assert "Nordlys" not in plain.get_data(as_text=True)
    assert berit.get(_members_url(world["B"])).status_code == 200  # her own


def test_an_app_role_named_admin_is_not_enough(app, world):
    from visma_idp.agreements import service
    from visma_idp.storage import db, queries

    with app.app_context():
        service.add_member(service.find(world["A"]), queries.user_by_email(PER), ["admin"], client_id="expense")
        db.session.commit()
    assert _signed_in_client(app, PER).get(_members_url(world["A"])).status_code == 404


# -- isolation: every endpoint by every actor ------------------------------------------------------


def _endpoints(world, agreement="A"):
    """(name, path, form) of every post of the page, on agreement A's URL, aimed at A's own targets."""
    a = world[agreement]
    return {
        "invite": (f"/agreements/{a}/invitations", {"email": "new@example.no", "roles": "employee"}),
        "revoke": (f"/agreements/{a}/invitations/{world['a_inv']}/revoke", {}),
        "roles": (f"/agreements/{a}/members/{world['sub'][OLA]}/roles", {"roles": "employee auditor", "client": ""}),
        "remove": (f"/agreements/{a}/members/{world['sub'][OLA]}/remove", {}),
    }


ACTORS = ("nobody", "plain member of A", "admin of B", "admin of A on B's targets")


def _actor_client(app, actor):
    return {
        "nobody": lambda: app.test_client(),
        "plain member of A": lambda: _signed_in_client(app, PER),
        "admin of B": lambda: _signed_in_client(app, BERIT),
        "admin of A on B's targets": lambda: _signed_in_client(app, KARI),
    }[actor]()


def _aimed(world, actor, name, path, form):
    """Admin of A aims at Fjord's member or invitation through Nordlys's URL."""
    if actor != "admin of A on B's targets":
        return path, form
    return {
        "revoke": (path.replace(f"/invitations/{world['a_inv']}/", f"/invitations/{world['b_inv']}/"), form),
        "roles": (path.replace(world["sub"][OLA], world["sub"][NILS]), form),
        "remove": (path.replace(world["sub"][OLA], world["sub"][NILS]), form),
    }[name]


TABLE = [(actor, name) for actor in ACTORS for name in ("page", "invite", "revoke", "roles", "remove")
         if actor != "admin of A on B's targets" or name in ("revoke", "roles", "remove")]  # those have a target


@pytest.mark.parametrize("actor, name", TABLE)
def test_isolation_table(app, world, actor, name):
    client = _actor_client(app, actor)
    before = _snapshot(app)
    if name == "page":
        resp = client.get(_members_url(world["A"]))
    else:
        path, form = _aimed(world, actor, name, *_endpoints(world)[name])
        resp = client.post(path, data={**form, "csrf_token": _token(client)})
    if actor == "nobody":
        assert resp.status_code in (302, 303) and resp.headers["Location"] == ISSUER + "/login"
    else:
        assert resp.status_code == 404, (resp.status_code, resp.get_data(as_text=True)[:300])
        assert "There is no such page, or you cannot use it." in resp.get_data(as_text=True)
    assert _snapshot(app) == before


@pytest.mark.parametrize("name", ["invite", "revoke", "roles", "remove"])
def test_isolation_table_the_admin_may(app, world, name):
    """The same posts by A's admin, on A's own targets: done (303 back to the page)."""
    client = _signed_in_client(app, KARI)
    before = _snapshot(app)
    path, form = _endpoints(world)[name]
    resp = client.post(path, data={**form, "csrf_token": _token(client)})
    assert resp.status_code == 303 and path_of(resp.headers["Location"]).startswith(_members_url(world["A"]))
    assert _snapshot(app) != before


def test_fjord_is_untouched_by_nordlys_admin_through_fjord_urls(app, world):
    """Kari is no admin of Fjord: every post on Fjord's URLs is 404 and changes nothing."""
    client = _signed_in_client(app, KARI)
    before = _snapshot(app)
    b = world["B"]
    for path in (f"/agreements/{b}/invitations", f"/agreements/{b}/invitations/{world['b_inv']}/revoke",
                 f"/agreements/{b}/members/{world['sub'][NILS]}/roles",
                 f"/agreements/{b}/members/{world['sub'][NILS]}/remove"):
        resp = client.post(path, data={"email": "x@example.no", "roles": "", "csrf_token": _token(client)})
        assert resp.status_code == 404, path
    assert _snapshot(app) == before


# -- inviting and revoking ----------------------------------------------------------------------------


def test_invite_through_the_page(app, kari, world, mailbox):
    resp = _post(kari, f"/agreements/{world['A']}/invitations",
                 {"email": " Guro@Example.NO ", "roles": "employee, approver", "client": "expense"}, page_of=world["A"])
    assert resp.status_code == 303
    assert resp.headers["Location"] == ISSUER + _members_url(world["A"]) + "#invitations"
    message = mailbox.last("guro@example.no")
    assert message["Subject"] == "Invitation to join Nordlys Regnskap AS"
    assert "Kari Nordmann (kari@example.no) invited you" in Mailbox.text(message)
    html = _page(kari, world["A"])
    assert "We sent an invitation to guro@example.no." in html
    assert "approver (expense), employee (expense)" in html
    assert "We sent an invitation" not in _page(kari, world["A"])  # once
    [sent] = [r for r in audit(app, "agreement_invitation_sent") if r["subject"] == "guro@example.no"]
    assert sent["user_id"] is not None and sent["details"]["agreement"] == world["A"]


@pytest.mark.parametrize("form, message", [
    ({"email": "not an address", "roles": "employee"}, "email address"),
    ({"email": OLA, "roles": "employee"}, "ola@example.no is a member of Nordlys Regnskap AS already."),
    ({"email": "guro@example.no", "roles": "no/slashes"}, "A role is a short word"),
    ({"email": "guro@example.no", "roles": "employee", "client": "nosuchapp"}, "There is no app with the id nosuchapp."),
    ({"email": "guro@example.no", "roles": "", "client": "expense"}, "Give at least one role in the app."),
])
def test_refused_invitations_come_back_with_the_message(app, kari, world, mailbox, form, message):
    before = _snapshot(app)
    resp = _post(kari, f"/agreements/{world['A']}/invitations", form, page_of=world["A"])
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and message in html
    assert 'aria-invalid="true"' in html and 'role="alert"' in html
    assert f'value="{form["email"]}"' in html  # what was typed stays
    assert _snapshot(app) == before


def test_revoke_an_invitation(app, kari, world, mailbox):
    path = f"/agreements/{world['A']}/invitations/{world['a_inv']}/revoke"
    resp = _post(kari, path, page_of=world["A"])
    assert resp.status_code == 303
    html = _page(kari, world["A"])
    assert "The invitation of nina@example.no is revoked" in html and "No pending invitations." in html
    [revoked] = audit(app, "agreement_invitation_revoked")
    assert revoked["details"]["invitation"] == world["a_inv"] and revoked["user_id"] is not None
    # Fjord's invitation to the same address still works
    from visma_idp.agreements import invitations
    from visma_idp.storage import AgreementInvitation, db

    with app.app_context():
        assert invitations.state(db.session.get(AgreementInvitation, world["b_inv"])) == invitations.LIVE
    # again: nothing more to do, said so
    assert _post(kari, path).status_code == 303
    assert "was accepted or revoked already" in _page(kari, world["A"])
    assert len(audit(app, "agreement_invitation_revoked")) == 1
    # a number that is no invitation, or not a number
    assert _post(kari, f"/agreements/{world['A']}/invitations/999999/revoke").status_code == 404
    assert _post(kari, f"/agreements/{world['A']}/invitations/x1/revoke").status_code == 404


# -- roles -----------------------------------------------------------------------------------------


def after_the_window(app) -> None:
    """Move the clock past the batch window of the "your roles have changed" notices (the mail worker
    then sends what was gathered: ``mailbox.to`` runs it)."""
    idp = app.extensions["visma_idp"]
    idp.clock.advance(idp.settings["NOTIFY_BATCH_SECONDS"] + 1)


def test_change_roles_sends_one_notice(app, kari, world, mailbox):
    after_the_window(app)
    earlier = len(mailbox.to(OLA))  # the notice of the fixture's changes
    path = f"/agreements/{world['A']}/members/{world['sub'][OLA]}/roles"
    resp = _post(kari, path, {"roles": "employee  auditor,reviewer", "client": ""}, page_of=world["A"])
    assert resp.status_code == 303 and resp.headers["Location"].endswith("#members")
    assert _roles(app, world["A"], OLA) == [
        {"role": "approver", "client": "expense"}, {"role": "auditor", "client": None},
        {"role": "employee", "client": None}, {"role": "reviewer", "client": None}]  # the app's role stays
    assert "The roles of ola@example.no are saved." in _page(kari, world["A"])
    assert len(mailbox.to(OLA)) == earlier  # batched: nothing before the window closes
    after_the_window(app)
    [notice] = mailbox.to(OLA)[earlier:]
    assert notice["Subject"] == "Your roles have changed"
    text = Mailbox.text(notice).replace("\r\n", "\n")
    assert "- auditor\n- reviewer" in text and "no longer have" not in text
    [changed] = audit(app, "agreement_roles_changed")[-1:]
    assert changed["details"]["by"] == changed_by(app, KARI) and changed["details"]["agreement"] == world["A"]

    # the same set again: nothing changes, no mail, no audit row
    count = len(audit(app, "agreement_roles_changed"))
    _post(kari, path, {"roles": "reviewer employee auditor"}, page_of=world["A"])
    assert "Nothing to save: the roles of ola@example.no are as they were." in _page(kari, world["A"])
    after_the_window(app)
    assert len(audit(app, "agreement_roles_changed")) == count and len(mailbox.to(OLA)) == earlier + 1

    # one app's roles: replaced there only, and the mail names the app
    _post(kari, path, {"roles": "", "client": "expense"}, page_of=world["A"])
    assert {r["client"] for r in _roles(app, world["A"], OLA)} == {None}
    after_the_window(app)
    assert "- approver (expense)" in Mailbox.text(mailbox.to(OLA)[-1]).replace("\r\n", "\n")
    assert audit(app, "agreement_roles_changed")[-1]["details"]["client"] == "expense"

    # roles in one more app
    resp = _post(kari, path, {"form": "new", "client": "expense", "roles": "approver"}, page_of=world["A"])
    assert resp.status_code == 303 and {"role": "approver", "client": "expense"} in _roles(app, world["A"], OLA)


def changed_by(app, email):
    from visma_idp.storage import queries

    with app.app_context():
        return queries.user_by_email(email).id


@pytest.mark.parametrize("form, message", [
    ({"roles": "bad role!"}, "A role is a short word"),
    ({"roles": "x", "client": "nosuchapp"}, "There is no app with the id nosuchapp."),
    ({"form": "new", "roles": "approver", "client": ""}, "Enter the id of the app."),
    ({"form": "new", "roles": "approver", "client": "nosuchapp"}, "There is no app with the id nosuchapp."),
])
def test_refused_role_changes(app, kari, world, form, message):
    before = _snapshot(app)
    resp = _post(kari, f"/agreements/{world['A']}/members/{world['sub'][OLA]}/roles", form, page_of=world["A"])
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and message in html and "<details open>" in html
    assert _snapshot(app) == before


def test_an_admin_keeps_their_own_admin_role(app, kari, world):
    path = f"/agreements/{world['A']}/members/{world['sub'][KARI]}/roles"
    before = _snapshot(app)
    resp = _post(kari, path, {"roles": "employee"}, page_of=world["A"])
    assert resp.status_code == 400
    assert "You cannot take away your own admin role. Ask another admin of Nordlys Regnskap AS" in \
        resp.get_data(as_text=True)
    assert _snapshot(app) == before
    # changing their other roles, keeping admin, is fine
    assert _post(kari, path, {"roles": "admin approver"}, page_of=world["A"]).status_code == 303
    assert [r["role"] for r in _roles(app, world["A"], KARI)] == ["admin", "approver"]


def test_another_admin_may_take_the_admin_role_away(app, kari, world):
    from visma_idp.agreements import service
    from visma_idp.storage import db, queries

    with app.app_context():
        service.add_member(service.find(world["A"]), queries.user_by_email(PER), ["admin"])
        db.session.commit()
    path = f"/agreements/{world['A']}/members/{world['sub'][PER]}/roles"
    assert _post(kari, path, {"roles": "employee"}, page_of=world["A"]).status_code == 303
    assert _signed_in_client(app, PER).get(_members_url(world["A"])).status_code == 404  # no longer an admin


# -- removing ------------------------------------------------------------------------------------------


def test_remove_a_member(app, kari, world, mailbox):
    after_the_window(app)
    mailbox.deliver()  # the notice of the fixture's changes
    resp = _post(kari, f"/agreements/{world['A']}/members/{world['sub'][OLA]}/remove", page_of=world["A"])
    assert resp.status_code == 303
    assert _roles(app, world["A"], OLA) is None
    html = _page(kari, world["A"])
    assert "ola@example.no is no longer a member of Nordlys Regnskap AS." in html
    assert f"/members/{world['sub'][OLA]}/" not in html
    [removed] = audit(app, "agreement_member_removed")
    assert removed["subject"] == OLA and removed["details"]["agreement"] == world["A"]
    assert removed["details"]["by"] == removed_by_kari(app)  # the admin who did it
    assert removed["agreement"] == world["A"]  # in Nordlys's audit log
    after_the_window(app)
    notice = mailbox.last(OLA)
    assert notice["Subject"] == "Your roles have changed"
    text = Mailbox.text(notice).replace("\r\n", "\n")
    assert "Roles you no longer have:\n- approver (expense)\n- employee" in text
    # removed already: no longer a member of this agreement
    assert _post(kari, f"/agreements/{world['A']}/members/{world['sub'][OLA]}/remove").status_code == 404


def test_an_admin_cannot_remove_themselves(app, kari, world):
    before = _snapshot(app)
    resp = _post(kari, f"/agreements/{world['A']}/members/{world['sub'][KARI]}/remove", page_of=world["A"])
    assert resp.status_code == 400
    assert "You cannot remove yourself from Nordlys Regnskap AS. Ask another admin to do it." in \
        resp.get_data(as_text=True)
    assert _snapshot(app) == before


# -- CSRF -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["invite", "revoke", "roles", "remove"])
def test_every_post_needs_the_csrf_token(app, kari, world, name):
    before = _snapshot(app)
    path, form = _endpoints(world)[name]
    resp = kari.post(path, data=form)
    assert resp.status_code == 400 and "This page has expired" in resp.get_data(as_text=True)
    resp = kari.post(path, data={**form, "csrf_token": "forged"})
    assert resp.status_code == 400
    assert _snapshot(app) == before


def test_a_post_from_another_origin_is_refused(app, kari, world):
    before = _snapshot(app)
    path, form = _endpoints(world)["remove"]
    resp = kari.post(path, data={**form, "csrf_token": _token(kari)}, headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403
    assert _snapshot(app) == before


def test_the_confirmation_comes_only_from_the_session(kari, world):
    html = kari.get(_members_url(world["A"]) + "?done=removed&email=evil").get_data(as_text=True)
    assert "no longer a member" not in html and 'class="done"' not in html


# -- an agreement that requires a second factor -----------------------------------------------------------


def test_an_agreement_requiring_mfa_needs_a_session_at_that_level(app, kari, world):
    from visma_idp.agreements import service
    from visma_idp.storage import db

    with app.app_context():
        service.find(world["A"]).require_acr = service.REQUIRE["mfa"]
        db.session.commit()
    before = _snapshot(app)
    resp = kari.get(_members_url(world["A"]))
    assert resp.status_code == 403 and "requires two-step verification" in resp.get_data(as_text=True)
    path, form = _endpoints(world)["remove"]
    assert kari.post(path, data={**form, "csrf_token": _token(kari)}).status_code == 403
    assert _snapshot(app) == before
    # an outsider still gets the 404, not the level
    assert _signed_in_client(app, BERIT).get(_members_url(world["A"])).status_code == 404


# -- My details --------------------------------------------------------------------------------------------


def test_my_details_links_to_the_agreements_an_admin_manages(app, kari, world):
    html = kari.get("/account").get_data(as_text=True)
    assert "Manage members of Nordlys Regnskap AS" in html
    assert f'href="{ISSUER}{_members_url(world["A"])}"' in html
    assert "Manage members of Fjord" not in html
    per = _signed_in_client(app, PER).get("/account").get_data(as_text=True)
    assert "Manage members of" not in per and 'id="agreement-admin"' not in per



def removed_by_kari(app) -> int:
    from visma_idp.storage import User, db

    with app.app_context():
        return db.session.scalar(db.select(User.id).where(User.email == KARI))
