"""Hostile email addresses on every path that takes one.

An admin whose ``invite_users`` right covers ``example.no`` could invite
``x@evil.test>@example.no`` (the Welcome mail went to ``x@evil.test`` only,
and the account later showed that address as verified) or
``a@evil.test,b@example.no`` (both got it), because the domain was cut out of
the text after its last ``@``. Every address is now parsed in one place
(``addresses.py``, email-validator); these tests send the same hostile
addresses to each way in: the admin API (invite, one-time code), the admin
page, the sign-in page, forgot password, resend activation, change of
address, ``admin.service.create_user`` and the composing of a message. (The
CLI: tests/test_cli_addresses.py.)
"""

from __future__ import annotations

import pytest

from tests.account.test_details import signed_in_browser
from tests.admin import grant
from tests.admin import sign_in as admin_sign_in
from tests.admin.test_admin_api import REDIRECT, tokens_for
from tests.helpers import csrf, path_of
from tests.password.recovery import EASY_POW, solve

ADMIN = "ola@example.no"
HOSTILE = [
    "x@evil.test>@example.no",  # the Welcome mail went to x@evil.test
    "a@evil.test,b@example.no",  # and to both of these
    "a@evil.example.com, b@example.no",
    "a@evil.example.com;b@example.no",
    "Kari <kari@example.no>",  # a display name
    "<kari@example.no>",  # angle brackets
    '"x@evil.example.com"@example.no',  # a quoted local part
    '"kari"@example.no',
    "kari@example.no (x@evil.example.com)",  # a comment
    "kari(x)@example.no",
    "kari@example.no\r\nBcc: x@evil.example.com",  # header injection
    "kari@example.no\n",
    "kari\r@example.no",
    "ka\x00ri@example.no",  # NUL
    "kari\u2028@example.no",  # a line separator
    "kari\u200b@example.no",  # a zero-width space
    "kari@[127.0.0.1]",  # a domain literal
    "kari@example.no.",  # a trailing dot
    "kari@example.no.evil.test",  # a special-use name
    "kari@localhost",
    "a" * 65 + "@example.no",  # over 64 before the @
    "kari@" + ("a" * 62 + ".") * 4 + "no",  # over 254 in all
    "x" * 330 + "@example.no",  # over 320 typed
]
# addresses that parse, in a domain that is NOT example.no: refused by the rights
OUTSIDE = ["kari@example.no.evil.com", "kari@evil-example.no", "kari@xn--exmple-cua.no", "kari@exämple.no",
           "kari@sub.example.no"]


@pytest.fixture
def settings(settings):
    settings["POW_DIFFICULTY"] = EASY_POW
    return settings


def user_emails(app) -> list[str]:
    from visma_idp.storage import User, db

    with app.app_context():
        return sorted(db.session.scalars(db.select(User.email)))


def outbox_recipients(app) -> list[str]:
    from visma_idp.storage import MailOutbox, db

    with app.app_context():
        return sorted(db.session.scalars(db.select(MailOutbox.to_addr)))


# -- the admin API ------------------------------------------------------------------------------

@pytest.fixture
def admin_token(app, make_user, make_client):
    from visma_idp.admin import rights
    from visma_idp.storage import db, queries

    make_user(email=ADMIN, name="Ola Admin")
    make_user(email="kari@example.no", name="Kari Nordmann")
    with app.app_context():
        ola = queries.user_by_email(ADMIN)
        rights.grant(ola, rights.INVITE_USERS, ["example.no", "xn--blle-gra.no"])
        rights.grant(ola, rights.ISSUE_ONE_TIME_CODES, ["example.no"])
        db.session.commit()
    make_client("admin-tool", redirect_uris=[REDIRECT], scope="openid idp:admin",
                secret="admin-tool-secret-0123456789", skip_consent=True)
    return tokens_for(app, ADMIN)["access_token"]


def api(client, token, path, body):
    return client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("email", HOSTILE)
def test_the_invitation_api_refuses_a_hostile_address(app, client, admin_token, mailbox, email):
    before = user_emails(app)
    resp = api(client, admin_token, "/admin/api/users", {"email": email, "name": "Eve"})
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.get_json()["error"] == "bad_email" and resp.get_json()["message"]
    assert resp.headers["Cache-Control"] == "no-store"
    assert user_emails(app) == before
    assert mailbox.deliver().sent == 0


@pytest.mark.parametrize("email", OUTSIDE)
def test_the_invitation_api_compares_the_parsed_domain(app, client, admin_token, mailbox, email):
    resp = api(client, admin_token, "/admin/api/users", {"email": email, "name": "Eve"})
    assert resp.status_code == 403 and resp.get_json()["error"] == "forbidden"
    assert mailbox.deliver().sent == 0


@pytest.mark.parametrize("typed, stored", [
    ("PER@EXAMPLE.NO", "per@example.no"),
    ("  per@Example.No ", "per@example.no"),
    ("per@ｅｘａｍｐｌｅ.no", "per@example.no"),  # full-width letters are example.no after IDNA mapping
    ("per@bølle.no", "per@xn--blle-gra.no"),  # an international domain, granted in its xn-- form
    ("per@XN--BLLE-GRA.NO", "per@xn--blle-gra.no"),
])
def test_the_invitation_api_normalises_the_domain(app, client, admin_token, mailbox, typed, stored):
    resp = api(client, admin_token, "/admin/api/users", {"email": typed, "name": "Per"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["email"] == stored
    assert stored in user_emails(app)
    [message] = mailbox.to(stored)
    assert message["To"] == stored and len(message.get_all("To")) == 1


@pytest.mark.parametrize("email", HOSTILE)
def test_the_one_time_code_api_refuses_a_hostile_address(app, client, admin_token, mailbox, email):
    resp = api(client, admin_token, "/admin/api/one-time-codes", {"email": email})
    assert resp.status_code == 400 and resp.get_json()["error"] == "bad_email"
    assert mailbox.deliver().sent == 0


def test_the_one_time_code_api_compares_the_parsed_domain(app, client, admin_token, make_user):
    make_user(email="kari@example.no.evil.com")
    resp = api(client, admin_token, "/admin/api/one-time-codes", {"email": "kari@example.no.evil.com"})
    assert resp.status_code == 403 and resp.get_json()["error"] == "outside_domain"
    resp = api(client, admin_token, "/admin/api/one-time-codes", {"email": "KARI@EXAMPLE.NO"})
    assert resp.status_code == 201 and resp.get_json()["email"] == "kari@example.no"


# -- the admin page ----------------------------------------------------------------------------

@pytest.mark.parametrize("email", HOSTILE[:12])
def test_the_admin_page_refuses_a_hostile_address(app, make_user, mailbox, email):
    make_user(email=ADMIN, name="Ola Admin")
    make_user(email="kari@example.no")
    grant(app, ADMIN, "example.no")
    client = app.test_client()
    assert path_of(admin_sign_in(client, ADMIN).headers["Location"]) == "/"
    page = client.get("/admin/one-time-codes").get_data(as_text=True)
    resp = client.post("/admin/one-time-codes", data={"email": email, "csrf_token": csrf(page)})
    assert resp.status_code == 400
    assert "Enter the user&#39;s email address, like name@example.no." in resp.get_data(as_text=True)
    assert mailbox.deliver().sent == 0


# -- the public forms ----------------------------------------------------------------------------

@pytest.mark.parametrize("email", HOSTILE)
def test_the_sign_in_page_refuses_a_hostile_address(app, client, email):
    page = client.get("/login").get_data(as_text=True)
    resp = client.post("/login", data={"email": email, "csrf_token": csrf(page)})
    assert resp.status_code == 400
    assert "Enter your email address, like name@example.com." in resp.get_data(as_text=True)


def test_the_sign_in_page_keeps_the_normalised_address(app, client, make_user):
    make_user(email="kari@example.no")
    page = client.get("/login").get_data(as_text=True)
    assert client.post("/login", data={"email": " KARI@Example.NO ", "csrf_token": csrf(page)}).status_code == 302
    assert 'value="kari@example.no"' in client.get("/login/password").get_data(as_text=True)


@pytest.mark.parametrize("email", HOSTILE)
def test_forgot_password_refuses_a_hostile_address(app, client, make_user, mailbox, email):
    make_user(email="kari@example.no")
    page = client.get("/password/forgot").get_data(as_text=True)
    resp = client.post("/password/forgot", data={"email": email, "csrf_token": csrf(page), **solve(page)})
    resp.close()
    assert resp.status_code == 400
    assert "Enter your email address, like name@example.com." in resp.get_data(as_text=True)
    assert mailbox.deliver().sent == 0


@pytest.mark.parametrize("email", HOSTILE)
def test_resend_activation_refuses_a_hostile_address(app, client, mailbox, email):
    page = client.get("/activate/" + "q" * 43).get_data(as_text=True)
    data = {"email": email, "csrf_token": csrf(page)}
    if 'name="pow_challenge"' in page:
        data.update(solve(page))
    resp = client.post("/activate/resend", data=data)
    resp.close()
    assert resp.status_code == 400
    assert "Enter your email address, like name@example.com." in resp.get_data(as_text=True)
    assert mailbox.deliver().sent == 0


@pytest.mark.parametrize("email", HOSTILE)
def test_the_change_of_address_refuses_a_hostile_address(app, make_user, mailbox, email):
    from tests.account.test_details import PASSWORD, post

    make_user(email="kari@example.no")
    client = signed_in_browser(app)
    resp = post(client, "/account/email", email=email, current_password=PASSWORD)
    assert resp.status_code == 400
    assert 'id="email-new-error" role="alert">Enter the new email address' in resp.text
    assert mailbox.deliver().sent == 0


def test_specific_reasons_are_told(app, client):
    page = client.get("/login").get_data(as_text=True)
    for email, reason in (("a@example.no, b@example.no", "Enter one email address only."),
                          ("Kari <kari@example.no>", "without a name, quotes, brackets or comments"),
                          ("x" * 330 + "@example.no", "The email address is too long."),
                          ("kari@example.no.evil.test", "The part after @ must be a domain that can receive email")):
        html = client.post("/login", data={"email": email, "csrf_token": csrf(page)}).get_data(as_text=True)
        assert reason in html, email


# -- the service and the composing of mail -------------------------------------------------------

@pytest.mark.parametrize("email", HOSTILE)
def test_create_user_refuses_a_hostile_address(app, email):
    from visma_idp.admin.service import InvalidInput, create_user, invite_user
    from visma_idp.storage import db

    with app.app_context():
        with pytest.raises(InvalidInput, match="not a valid email address"):
            invite_user(email, "Eve")
        db.session.rollback()
        with pytest.raises(InvalidInput, match="not a valid email address"):
            create_user(email, "Eve", "correct horse battery")
        db.session.rollback()
    assert user_emails(app) == []
    assert outbox_recipients(app) == []


@pytest.mark.parametrize("to", ["x@evil.test>@example.no", "a@evil.example.com,b@example.no",
                                "Kari <kari@example.no>", "kari@example.no\r\nBcc: x@evil.example.com"])
def test_a_message_is_composed_only_for_one_valid_address(app, to):
    from visma_idp.addresses import AddressError
    from visma_idp.notify.messages import queue
    from visma_idp.storage import db

    with app.test_request_context("/"):
        with pytest.raises(AddressError):
            queue("password_changed", to=to, user=None, via="change")
        db.session.rollback()
    assert outbox_recipients(app) == []


def test_the_to_header_is_exactly_the_validated_address(app, make_user, mailbox):
    from visma_idp.notify.messages import queue
    from visma_idp.storage import db, queries

    make_user(email="kari@example.no")
    with app.test_request_context("/"):
        queue("password_changed", to=" KARI@Example.NO", user=queries.user_by_email("kari@example.no"), via="change")
        db.session.commit()
    [message] = mailbox.to("kari@example.no")
    assert message.get_all("To") == ["kari@example.no"]


def test_refusals_are_audited_with_control_characters_escaped(app, client, admin_token, make_user):
    """PostgreSQL refuses NUL in text, and a log reader should see what was sent."""
    from tests.admin import events

    api(client, admin_token, "/admin/api/users", {"email": "ka\x00ri@example.no", "name": "Eve"})
    api(client, admin_token, "/admin/api/one-time-codes", {"email": "kari@example.no\r\nBcc: x@evil.example.com"})
    make_user(email="per@example.no")  # no rights at all: refused on the admin page before the address is parsed
    per = app.test_client()
    admin_sign_in(per, "per@example.no")
    token = csrf(per.get("/login").get_data(as_text=True))
    assert per.post("/admin/one-time-codes", data={"email": "a\x00@example.no", "csrf_token": token}).status_code == 403
    assert [e.subject for e in events(app, "user_invite_refused")] == ["ka\\x00ri@example.no"]
    assert [e.subject for e in events(app, "one_time_code_refused")] == [
        "kari@example.no\\r\\nbcc: x@evil.example.com", "a\\x00@example.no"]
