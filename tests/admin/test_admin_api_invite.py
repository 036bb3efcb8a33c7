"""POST /admin/api/users: an admin of a domain invites a user of that domain
(a pending account and the Welcome email with its activation link)."""

from __future__ import annotations

import pytest

from tests.admin import events
from tests.admin.test_admin_api import REDIRECT, tokens_for
from tests.mailbox import Mailbox

ADMIN = "ola@example.no"
API = "/admin/api/users"


@pytest.fixture
def admin(app, make_user, make_client):
    from visma_idp.admin import rights
    from visma_idp.storage import User, db

    admin_id = make_user(email=ADMIN, name="Ola Admin")
    with app.app_context():
        rights.grant(db.session.get(User, admin_id), rights.INVITE_USERS, ["example.no"])
        db.session.commit()
    make_client("admin-tool", redirect_uris=[REDIRECT], scope="openid idp:admin",
                secret="admin-tool-secret-0123456789", skip_consent=True)
    return tokens_for(app, ADMIN)["access_token"]


def invite(client, token, body):
    return client.post(API, json=body, headers={"Authorization": f"Bearer {token}"})


def test_an_admin_invites_a_user_of_their_domain(app, client, admin, mailbox):
    from visma_idp.storage import User, db

    resp = invite(client, admin, {"email": "Per@Example.no", "name": "Per Hansen", "locale": "nb"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["email"] == "per@example.no" and resp.get_json()["status"] == "pending"
    assert resp.headers["Cache-Control"] == "no-store"
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "per@example.no"))
        assert user.status == "pending" and user.locale == "nb" and user.sub == resp.get_json()["sub"]
    message = mailbox.last("per@example.no")
    assert message["Content-Language"] == "nb"
    assert any("/activate/" in link for link in Mailbox.links(message))
    (event,) = events(app, "user_invited")
    assert event.details["via"] == "api"


@pytest.mark.parametrize("email", ["kari@evil-example.no", "kari@example.no.evil.com", "kari@sub.example.no"])
def test_outside_the_domain_is_refused_and_audited(app, client, admin, email, mailbox):
    resp = invite(client, admin, {"email": email, "name": "Kari"})
    assert resp.status_code == 403 and resp.get_json()["error"] == "forbidden"
    assert events(app, "user_invite_refused")
    assert mailbox.deliver().sent == 0


def test_an_existing_address_is_a_conflict(client, admin, make_user):
    make_user(email="kari@example.no")
    resp = invite(client, admin, {"email": "kari@example.no", "name": "Kari"})
    assert resp.status_code == 409


@pytest.mark.parametrize("body", [None, [], {"email": "per@example.no"}, {"email": 5, "name": "x"},
                                  {"email": "per@example.no", "name": "Per", "locale": "de"}])
def test_bad_bodies_are_400(client, admin, body):
    resp = client.post(API, json=body, headers={"Authorization": f"Bearer {admin}"}) if body is not None else \
        client.post(API, data="not json", headers={"Authorization": f"Bearer {admin}", "Content-Type": "text/plain"})
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"


def test_the_one_time_code_right_does_not_invite(app, client, make_user, make_client):
    from tests.admin import grant

    make_user(email=ADMIN)
    grant(app, ADMIN, "example.no")  # issue_one_time_codes only
    make_client("admin-tool", redirect_uris=[REDIRECT], scope="openid idp:admin",
                secret="admin-tool-secret-0123456789", skip_consent=True)
    token = tokens_for(app, ADMIN)["access_token"]
    assert invite(client, token, {"email": "per@example.no", "name": "Per"}).status_code == 403


def test_without_a_token_it_is_401(client):
    assert client.post(API, json={"email": "per@example.no", "name": "Per"}).status_code == 401
