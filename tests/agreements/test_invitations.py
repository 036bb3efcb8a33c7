"""Invitations to an agreement (agreements/invitations.py, views.py): the
mail and its link, a new person making their account from it, an existing
account signing in to accept, another account that may not, dead links,
who may invite, the CLI, and two accepts racing."""

from __future__ import annotations

import json

import pytest

from tests import test_cli as cli_tests
from tests.helpers import csrf
from tests.mailbox import Mailbox
from tests.password.recovery import STRONG, audit, links_of, path, sign_in, signed_in

# the CLI's fixtures (tests/test_cli.py), named here so pytest finds them
env, run, migrated = cli_tests.env, cli_tests.run, cli_tests.migrated

ISSUER = "http://127.0.0.1:5000"
NORDLYS = "974760673"
KARI = "kari@example.no"  # the agreement's admin, who invites
OLA = "ola@example.no"  # has an account, not a member
PER = "per@example.no"  # has no account
PASSWORD = "correct horse battery"
DAY = 24 * 3600


@pytest.fixture
def nordlys(app, make_user):
    """Nordlys Regnskap AS, with Kari as its admin; Ola has an account of his own."""
    from visma_idp.agreements import service
    from visma_idp.storage import User, db

    make_user(KARI, PASSWORD, "Kari Nordmann")
    make_user(OLA, PASSWORD, "Ola Nordmann")
    with app.app_context():
        agreement = service.create("Nordlys Regnskap AS", NORDLYS)
        service.add_member(agreement, db.session.scalar(db.select(User).where(User.email == KARI)), ["admin"])
        db.session.commit()
        return agreement.id


def invite(app, email=PER, roles=("employee",), *, by=KARI, client_id=None):
    """Invite ``email`` to Nordlys (as ``by``, or the operator with None); returns the invitation's id."""
    from visma_idp.agreements import invitations, service
    from visma_idp.storage import db, queries

    with app.app_context():
        inviter = queries.user_by_email(by) if by else None
        row = invitations.invite(service.find(NORDLYS), email, roles, invited_by=inviter, client_id=client_id)
        db.session.commit()
        return row.id


def invitation_link(mailbox, email=PER) -> str:
    """The path of the newest invitation link mailed to ``email``."""
    found = links_of(mailbox.last(email), "/invitations/")
    assert len(found) == 1 and found[0].startswith(ISSUER + "/invitations/")
    return path(found[0])


def roles_of(app, email):
    """The member's roles in Nordlys, or None when ``email`` is not a member."""
    from visma_idp.agreements import service
    from visma_idp.storage import queries

    with app.app_context():
        user = queries.user_by_email(email)
        row = service.membership(user.id, service.find(NORDLYS).id) if user is not None else None
        return None if row is None else row.roles


def agreement_id(app) -> str:
    """Nordlys's public id (what its audit rows name)."""
    from visma_idp.agreements import service

    with app.app_context():
        return service.find(NORDLYS).public_id


def create_account(client, link, name="Per Hansen", password=STRONG, password2=None):
    page = client.get(link)
    assert page.status_code == 200
    return client.post(link, data={"name": name, "password": password,
                                   "password2": password if password2 is None else password2,
                                   "csrf_token": csrf(page.get_data(as_text=True))})


def accept(client, link):
    page = client.get(link)
    assert page.status_code == 200
    return client.post(link, data={"csrf_token": csrf(page.get_data(as_text=True))})


# -- the mail and its link -------------------------------------------------------------


def test_the_mail_carries_a_link_stored_as_a_digest(app, client, mailbox, nordlys):
    from visma_idp.crypto import digest
    from visma_idp.storage import AgreementInvitation, db

    invite(app, roles=("employee", "approver"))
    message = mailbox.last(PER)
    assert message["Subject"] == "Invitation to join Nordlys Regnskap AS"
    text = Mailbox.text(message).replace("\r\n", "\n")
    assert "Kari Nordmann (kari@example.no) invited you to join Nordlys Regnskap AS." in text
    assert "- approver\n- employee" in text and "7 days" in text
    assert "Accept invitation" in Mailbox.html(message)
    link = invitation_link(mailbox)

    with app.app_context():
        row = db.session.scalar(db.select(AgreementInvitation))
        assert row.digest == digest(link.rsplit("/", 1)[1]) and row.email == PER
        assert row.expires_at - row.created_at == 7 * DAY
        assert row.roles == [{"role": "approver", "client": None}, {"role": "employee", "client": None}]
    [sent] = audit(app, "agreement_invitation_sent")
    assert sent["subject"] == PER and sent["details"]["invitation"] == row.id

    page = client.get(link)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Kari Nordmann (kari@example.no) invited you to Nordlys Regnskap AS as approver, employee." in html
    assert 'name="password2"' in html  # no account: the form to make one
    assert client.get(link).status_code == 200  # looking does not use it


def test_an_address_is_parsed_and_a_member_is_not_invited_again(app, nordlys):
    from visma_idp.errors import InvalidInput

    with pytest.raises(InvalidInput, match="not a valid email address"):
        invite(app, "Per <per@example.no>")
    with pytest.raises(InvalidInput, match="a short word"):
        invite(app, roles=("no spaces",))
    with pytest.raises(InvalidInput, match="kari@example.no is a member of Nordlys Regnskap AS already"):
        invite(app, KARI)
    invite(app, "PER@Example.NO")
    assert audit(app, "agreement_invitation_sent")[0]["subject"] == PER  # the stored spelling


# -- a new person ----------------------------------------------------------------------


def test_a_new_person_makes_their_account_and_joins(app, client, mailbox, nordlys):
    invitation_id = invite(app)
    link = invitation_link(mailbox)
    for name, password, password2, message in (
        ("", STRONG, STRONG, "Enter your name."),
        ("Per Hansen", "short", "short", "Use at least 12 characters."),
        ("Per Hansen", "per hansen is my password", "per hansen is my password",
         "Do not use your name in the password."),
        ("Per Hansen", STRONG, STRONG + "!", "The two passwords are not the same."),
    ):
        resp = create_account(client, link, name, password, password2)
        assert resp.status_code == 400
        assert message in resp.get_data(as_text=True)
    assert roles_of(app, PER) is None and len(audit(app, "user_created")) == 2  # Kari's and Ola's

    resp = create_account(client, link)
    assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + "/invitations/done"
    done = client.get("/invitations/done").get_data(as_text=True)
    assert "Your account is ready" in done and 'href="http://127.0.0.1:5000/login/password"' in done
    assert not signed_in(client)

    from visma_idp.storage import db, queries

    with app.app_context():
        user = queries.user_by_email(PER)
        assert user.status == "active" and user.email_verified and user.name == "Per Hansen"
        db.session.expunge(user)
    assert roles_of(app, PER) == [{"role": "employee", "client": None}]
    created = audit(app, "user_created")[-1]
    assert created["details"] == {"invitation": invitation_id, "by": user.id}  # they made it themselves
    assert created["agreement"] == agreement_id(app)  # in the agreement's audit log
    [accepted] = audit(app, "agreement_invitation_accepted")
    assert accepted["user_id"] == user.id and accepted["agreement"] == agreement_id(app)
    assert sign_in(client, PER, STRONG).status_code == 302 and signed_in(client)

    used = client.get(link)
    assert used.status_code == 410 and "The invitation was already used." in used.get_data(as_text=True)


def test_a_pending_account_is_activated_not_made_twice(app, client, mailbox, nordlys):
    from visma_idp.admin.service import invite_user
    from visma_idp.storage import db, queries

    with app.app_context():
        pending_id = invite_user(PER, "Per").id
        db.session.commit()
    welcome = path(links_of(mailbox.last(PER), "/activate/")[0])
    invitation_id = invite(app)
    link = invitation_link(mailbox)
    assert 'value="Per"' in client.get(link).get_data(as_text=True)  # the form, with the name it has

    assert create_account(client, link).status_code == 303
    with app.app_context():
        user = queries.user_by_email(PER)
        assert (user.id, user.status, user.email_verified, user.name) == (pending_id, "active", True, "Per Hansen")
    [activated] = audit(app, "account_activated")
    assert activated["details"] == {"invitation": invitation_id, "by": pending_id}
    assert activated["agreement"] == agreement_id(app)
    assert client.get(welcome).status_code == 410  # the Welcome link has nothing left to do
    assert roles_of(app, PER) == [{"role": "employee", "client": None}]


def test_the_forms_need_the_csrf_token(app, client, mailbox, nordlys):
    invite(app)
    link = invitation_link(mailbox)
    resp = client.post(link, data={"name": "Per Hansen", "password": STRONG, "password2": STRONG})
    assert resp.status_code == 400 and "This page has expired" in resp.get_data(as_text=True)
    assert roles_of(app, PER) is None

    invite(app, OLA)
    link = invitation_link(mailbox, OLA)
    assert sign_in(client, OLA, PASSWORD).status_code == 302
    assert client.post(link).status_code == 400
    assert roles_of(app, OLA) is None


# -- an existing account -----------------------------------------------------------------


def test_an_existing_account_signs_in_then_accepts(app, client, mailbox, nordlys):
    invite(app, OLA, roles=("approver",))
    link = invitation_link(mailbox, OLA)
    html = client.get(link).get_data(as_text=True)
    assert "Sign in to accept" in html and 'name="password"' not in html  # no second account
    # posting the account form anyway makes nothing
    page_csrf = csrf(client.get("/login").get_data(as_text=True))
    refused = client.post(link, data={"name": "Ola", "password": STRONG, "password2": STRONG, "csrf_token": page_csrf})
    assert refused.status_code == 400 and "Sign in as ola@example.no first." in refused.get_data(as_text=True)

    to_sign_in = client.get(link + "/sign-in")
    assert to_sign_in.status_code == 302 and to_sign_in.headers["Location"] == ISSUER + "/login"
    login_page = client.get("/login").get_data(as_text=True)
    assert 'value="ola@example.no"' in login_page  # the invited address, filled in
    client.post("/login", data={"email": OLA, "csrf_token": csrf(login_page)})
    page = client.get("/login/password").get_data(as_text=True)
    resp = client.post("/login/password", data={"password": PASSWORD, "csrf_token": csrf(page)})
    assert resp.status_code == 302 and resp.headers["Location"] == ISSUER + link  # back to the invitation

    html = client.get(link).get_data(as_text=True)
    assert "Accept invitation" in html and "You are signed in as ola@example.no." in html
    assert roles_of(app, OLA) is None  # looking is not accepting
    resp = accept(client, link)
    assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + "/invitations/done"
    assert "You have joined Nordlys Regnskap AS" in client.get("/invitations/done").get_data(as_text=True)
    assert roles_of(app, OLA) == [{"role": "approver", "client": None}]

    again = client.post(link, data={"csrf_token": csrf(html)})  # the same form once more
    assert again.status_code == 410
    assert roles_of(app, OLA) == [{"role": "approver", "client": None}]
    assert len(audit(app, "agreement_invitation_accepted")) == 1


def test_another_signed_in_account_cannot_accept(app, client, mailbox, nordlys):
    from visma_idp.storage import AgreementInvitation, db

    invite(app, PER)
    link = invitation_link(mailbox)
    assert sign_in(client, OLA, PASSWORD).status_code == 302
    page = client.get(link)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "This invitation is for per@example.no, but you are signed in as ola@example.no." in html
    assert 'href="http://127.0.0.1:5000/signout"' in html and "Accept invitation" not in html
    token = csrf(client.get("/signout").get_data(as_text=True))  # the page has no form: a token from another
    resp = client.post(link, data={"csrf_token": token})
    assert resp.status_code == 403
    assert roles_of(app, OLA) is None and roles_of(app, PER) is None
    with app.app_context():
        assert db.session.scalar(db.select(AgreementInvitation)).accepted_at is None  # still Per's to accept


def test_accept_is_for_the_invited_address_only(app, nordlys):
    from visma_idp.agreements import invitations
    from visma_idp.storage import AgreementInvitation, db, queries

    invitation_id = invite(app, PER)
    with app.app_context():
        row = db.session.get(AgreementInvitation, invitation_id)
        with pytest.raises(invitations.InvitationRefused) as refused:
            invitations.accept(row, queries.user_by_email(OLA))
        assert refused.value.reason == "wrong_account"


def test_two_accepts_racing_give_one_membership(app, nordlys):
    from visma_idp.agreements import invitations
    from visma_idp.storage import AgreementInvitation, Membership, db, queries

    invitation_id = invite(app, OLA)
    with app.app_context():
        row = db.session.get(AgreementInvitation, invitation_id)
        ola = queries.user_by_email(OLA)
        invitations.accept(row, ola)
        with pytest.raises(invitations.InvitationRefused) as second:
            invitations.accept(row, ola)
        assert second.value.reason == "used"
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count()).select_from(Membership)
                                 .where(Membership.user_id == ola.id)) == 1
    assert len(audit(app, "agreement_invitation_accepted")) == 1


def test_the_roles_mail_is_sent_once(app, client, mailbox, nordlys):
    invite(app, OLA, roles=("employee", "approver"))
    link = invitation_link(mailbox, OLA)
    assert sign_in(client, OLA, PASSWORD).status_code == 302
    assert accept(client, link).status_code == 303
    idp = app.extensions["visma_idp"]
    idp.clock.advance(idp.settings["NOTIFY_BATCH_SECONDS"] + 1)  # the roles mail is batched
    subjects = [m["Subject"] for m in mailbox.to(OLA)]
    assert subjects == ["Invitation to join Nordlys Regnskap AS", "Your roles have changed"]
    assert "- approver\r\n- employee" in Mailbox.text(mailbox.last(OLA))


# -- dead links --------------------------------------------------------------------------


def test_an_expired_link_is_gone(app, client, idp, mailbox, nordlys):
    invite(app)
    link = invitation_link(mailbox)
    idp.clock.advance(7 * DAY - 60)
    assert client.get(link).status_code == 200
    idp.clock.advance(120)
    resp = client.get(link)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 410 and "The invitation has expired." in html
    assert "Ask Kari Nordmann (kari@example.no) for a new invitation." in html
    assert create_account_status(client, link) == 410
    assert roles_of(app, PER) is None


def create_account_status(client, link) -> int:
    """Post the account form to a dead link (with a token from another page)."""
    token = csrf(client.get("/login").get_data(as_text=True))
    return client.post(link, data={"name": "Per", "password": STRONG, "password2": STRONG,
                                   "csrf_token": token}).status_code


def test_a_new_invitation_revokes_the_older_link(app, client, mailbox, nordlys):
    invite(app)
    older = invitation_link(mailbox)
    invite(app, roles=("approver",))
    newer = invitation_link(mailbox)
    assert older != newer
    resp = client.get(older)
    assert resp.status_code == 410
    assert "The invitation was withdrawn, or a newer invitation replaced it." in resp.get_data(as_text=True)
    assert audit(app, "agreement_invitation_sent")[1]["details"]["replaced"] == 1
    assert create_account(client, newer).status_code == 303
    assert roles_of(app, PER) == [{"role": "approver", "client": None}]


def test_revoke(app, client, mailbox, nordlys):
    from visma_idp.agreements import invitations
    from visma_idp.storage import AgreementInvitation, db, queries

    invitation_id = invite(app)
    link = invitation_link(mailbox)
    with app.app_context():
        row = db.session.get(AgreementInvitation, invitation_id)
        assert invitations.revoke(row, queries.user_by_email(KARI)) is True
        assert invitations.revoke(row, None) is False  # once
        db.session.commit()
    assert client.get(link).status_code == 410
    assert [r["subject"] for r in audit(app, "agreement_invitation_revoked")] == [PER]


def test_an_unknown_link_is_404(client, nordlys):
    resp = client.get("/invitations/" + "z" * 43)
    assert resp.status_code == 404
    assert "We do not know this link." in resp.get_data(as_text=True)
    assert client.get("/invitations/short").status_code == 404


# -- who may invite ----------------------------------------------------------------------


def test_only_an_agreement_admin_may_invite(app, make_user, nordlys):
    from visma_idp.agreements import service
    from visma_idp.agreements.invitations import may_invite
    from visma_idp.storage import db, queries

    make_user("siri@example.no", PASSWORD, "Siri")
    with app.app_context():
        nordlys_row = service.find(NORDLYS)
        fjord = service.create("Fjord AS", "923456783")
        kari, ola, siri = (queries.user_by_email(e) for e in (KARI, OLA, "siri@example.no"))
        service.add_member(nordlys_row, ola, ["employee"])
        service.add_member(nordlys_row, siri, ["admin"], client_id="some-app")  # an app's admin only
        service.add_member(fjord, ola, ["admin"])
        db.session.commit()
        assert may_invite(kari, nordlys_row) is True
        assert may_invite(ola, nordlys_row) is False  # an employee
        assert may_invite(siri, nordlys_row) is False
        assert may_invite(ola, fjord) is True and may_invite(kari, fjord) is False  # admin of that agreement only
        assert may_invite(None, nordlys_row) is False
        kari.is_active = False
        assert may_invite(kari, nordlys_row) is False


# -- the CLI -----------------------------------------------------------------------------


def test_the_cli_invites_and_refuses_a_member(migrated, make_app):
    from visma_idp.storage import MailOutbox, db

    migrated("users", "create", "--email", KARI, "--name", "Kari Nordmann", "--password", PASSWORD)
    migrated("agreements", "create", "--name", "Nordlys Regnskap AS", "--org-number", NORDLYS)
    migrated("agreements", "add-member", "--agreement", NORDLYS, "--email", KARI, "--role", "admin")

    out = json.loads(migrated("agreements", "invite", "--agreement", NORDLYS, "--email", "Per@Example.no",
                              "--role", "employee").stdout)
    assert out["email"] == PER and out["roles"] == [{"role": "employee", "client": None}]
    assert isinstance(out["id"], int) and out["expires_at"].endswith("Z")
    with make_app().app_context():
        [mail] = db.session.scalars(db.select(MailOutbox).where(MailOutbox.kind == "agreement_invitation")).all()
        assert mail.to_addr == PER and "/invitations/" in mail.text_body
        assert "You are invited to join Nordlys Regnskap AS." in mail.text_body  # the operator names nobody

    refused = migrated("agreements", "invite", "--agreement", NORDLYS, "--email", KARI, expect=1)
    assert "kari@example.no is a member of Nordlys Regnskap AS already" in refused.stderr
    missing = migrated("agreements", "invite", "--agreement", "999999999", "--email", PER, expect=1)
    assert "no agreement" in missing.stderr
    no_role = migrated("agreements", "invite", "--agreement", NORDLYS, "--email", PER, "--client", "x", expect=1)
    assert "--client needs at least one --role" in no_role.stderr


def test_a_role_in_one_app_names_the_app(app, client, mailbox, make_client, nordlys):
    make_client("expense", name="Expenses")
    invite(app, OLA, roles=("approver",), client_id="expense")
    link = invitation_link(mailbox, OLA)
    assert "- approver (Expenses)" in Mailbox.text(mailbox.last(OLA))
    assert sign_in(client, OLA, PASSWORD).status_code == 302
    assert "invited you to Nordlys Regnskap AS as approver (Expenses)." in client.get(link).get_data(as_text=True)
    assert accept(client, link).status_code == 303
    assert roles_of(app, OLA) == [{"role": "approver", "client": "expense"}]
