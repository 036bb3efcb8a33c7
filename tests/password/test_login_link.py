"""The one-time login link of the forgot-password email.

- GET shows a confirm button and does not use the link (mail scanners fetch
  links); the POST signs in (amr "email"), sends the "login_link_used"
  notice, is audited, and voids the reset link of the same email.
- Single use, 30 minutes, voided by a newer request; refused for a locked,
  disabled or never-activated account; CSRF required.
- Started at an app, the login link goes back to it.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.helpers import csrf, query
from tests.mailbox import Mailbox
from tests.password.recovery import EASY_POW, audit, forgot, post_new_password, reset_links, signed_in

KARI = "kari@example.no"


@pytest.fixture
def settings(settings):
    settings["POW_DIFFICULTY"] = EASY_POW
    return settings


@pytest.fixture
def kari(make_user):
    make_user(email=KARI)
    return KARI


def links(client, mailbox, email=KARI, tx=None):
    assert forgot(client, email, tx=tx).status_code == 200
    return reset_links(mailbox.last(email))


def confirm(client, link):
    page = client.get(link)
    assert page.status_code == 200, page.status_code
    return client.post(link, data={"csrf_token": csrf(page.get_data(as_text=True))})


def set_user(app, **values):
    from visma_idp.storage import db, queries

    with app.app_context():
        user = queries.user_by_email(KARI)
        for key, value in values.items():
            setattr(user, key, value)
        db.session.commit()


def test_the_link_signs_in_after_a_confirm(app, client, kari, mailbox):
    _reset, login = links(client, mailbox)
    for _ in range(2):  # a scanner and the user both open it: still fine
        page = client.get(login)
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert KARI in html and 'type="submit"' in html
    assert not signed_in(client)

    resp = confirm(client, login)
    assert resp.status_code == 302
    assert signed_in(client)
    notice = mailbox.last(KARI)
    assert notice["Subject"] == "You signed in with a one-time login link"
    assert "127.0.0.1" in Mailbox.text(notice)
    assert len(audit(app, "login_link_used")) == 1
    assert audit(app, "login_succeeded")[-1]["details"] == {"amr": ["email"], "via": "login_link"}


def test_the_link_works_once(client, kari, mailbox):
    _reset, login = links(client, mailbox)
    page = client.get(login).get_data(as_text=True)
    assert client.post(login, data={"csrf_token": csrf(page)}).status_code == 302
    other = client.application.test_client()
    again = other.post(login, data={"csrf_token": csrf(other.get("/password/forgot").get_data(as_text=True))})
    assert again.status_code == 410
    assert "The link was already used." in again.get_data(as_text=True)
    assert not signed_in(other)
    refused = audit(client.application, "link_refused")
    assert [(r["details"], r["outcome"]) for r in refused] == [({"kind": "login_link", "reason": "used"}, "failure")]
    assert refused[0]["user_id"] is not None


def test_using_it_voids_the_reset_link(client, kari, mailbox):
    reset, login = links(client, mailbox)
    assert confirm(client, login).status_code == 302
    resp = client.get(reset)
    assert resp.status_code == 410


def test_using_the_reset_link_voids_it(client, kari, mailbox):
    reset, login = links(client, mailbox)
    assert post_new_password(client, reset).status_code == 302
    assert client.get(login).status_code == 410


def test_a_newer_request_voids_it(client, kari, mailbox):
    _old_reset, old_login = links(client, mailbox)
    _new_reset, new_login = links(client, mailbox)
    assert client.get(old_login).status_code == 410
    assert confirm(client, new_login).status_code == 302


def test_the_link_expires_after_30_minutes(client, idp, kari, mailbox):
    _reset, login = links(client, mailbox)
    page = client.get(login).get_data(as_text=True)
    idp.clock.advance(30 * 60 + 1)
    resp = client.post(login, data={"csrf_token": csrf(page)})
    assert resp.status_code == 410
    assert "The link has expired." in resp.get_data(as_text=True)
    assert not signed_in(client)


@pytest.mark.parametrize(("change", "shows"), [
    ({"locked_at": 1}, "Your account is locked"),
    ({"is_active": False}, "This account is disabled"),
    ({"password_hash": None, "activated_at": None}, "Your account is not activated yet"),  # pending: never activated
])
def test_refused_for_accounts_that_may_not_sign_in(app, client, kari, mailbox, change, shows):
    _reset, login = links(client, mailbox)
    page = client.get(login).get_data(as_text=True)
    set_user(app, **change)
    for resp in (client.get(login), client.post(login, data={"csrf_token": csrf(page)})):
        assert resp.status_code == 403
        assert shows in resp.get_data(as_text=True)
    assert not signed_in(client)
    assert audit(app, "login_link_used") == []


def test_csrf_is_required(client, kari, mailbox):
    _reset, login = links(client, mailbox)
    for data in ({}, {"csrf_token": "forged"}):
        assert client.post(login, data=data).status_code == 400
    assert not signed_in(client)
    assert confirm(client, login).status_code == 302  # not used up


def test_unknown_links_are_404(client):
    assert client.get("/login/link/" + "y" * 43).status_code == 404


def test_from_an_app_back_to_the_app(flow, mailbox):
    start = flow.start()
    tx = query(start.headers["Location"])["tx"]
    _reset, login = links(flow.client, mailbox, flow.email, tx=tx)
    resp = confirm(flow.client, login)
    callback = flow.until_callback(resp)
    params = query(callback.headers["Location"])
    tokens = flow.token(params["code"]).get_json()
    payload = tokens["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["amr"] == ["email"]


def test_the_link_never_skips_the_second_factor(app, client, kari, mailbox, idp):
    """The link replaces the password only: a user with an authenticator app
    still has to pass it, and no session exists before that."""
    from tests.factors.test_totp import add_totp, code_at, mid_step
    from visma_idp.storage import SsoSession, db

    secret = add_totp(app, 1)
    _reset, login = links(client, mailbox)
    resp = confirm(client, login)
    assert resp.status_code == 302 and "/login/verify" in resp.headers["Location"]
    assert not signed_in(client)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(SsoSession)) == 0
    mid_step(idp)
    page = client.get("/login/verify")
    resp = client.post("/login/verify", data={"csrf_token": csrf(page.get_data(as_text=True)), "method": "totp",
                                              "code": code_at(secret, idp)})
    assert resp.status_code == 302 and signed_in(client)
    assert audit(app, "login_succeeded")[-1]["details"]["amr"] == ["email", "otp", "mfa"]
