"""Forgot password, the request: the email with both links, who gets which
links, the silent quotas, the pending authorization carried along, CSRF.

(The reset and login-link pages: test_reset.py, test_login_link.py; the
human check: test_challenge.py; equal answers: tests/security/test_recovery_enumeration.py.)
"""

from __future__ import annotations

import pytest

from tests.helpers import csrf, query
from tests.mailbox import Mailbox
from tests.password.recovery import (
    EASY_POW,
    STRONG,
    audit,
    forgot,
    links_of,
    post_new_password,
    reset_links,
    solve,
)
from visma_idp.account.recovery import FORGOT_WINDOW

FORGOT_PER_EMAIL, FORGOT_PER_IP = 3, 30  # the settings' defaults

ISSUER = "http://127.0.0.1:5000"
KARI = "kari@example.no"


@pytest.fixture
def settings(settings):
    settings["POW_DIFFICULTY"] = EASY_POW
    return settings


@pytest.fixture
def kari(make_user):
    make_user(email=KARI)
    return KARI


def set_user(app, email, **values):
    from visma_idp.storage import db, queries

    with app.app_context():
        user = queries.user_by_email(email)
        for key, value in values.items():
            setattr(user, key, value)
        db.session.commit()


def test_the_form(client):
    resp = client.get("/password/forgot")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert '<label for="email">' in html and 'id="email" name="email" type="email"' in html
    assert 'name="csrf_token"' in html and 'name="pow_challenge"' in html


def test_the_email_offers_both_links(app, client, kari, mailbox):
    resp = forgot(client, kari)
    assert resp.status_code == 200
    assert "Check your email" in resp.get_data(as_text=True)
    message = mailbox.last(kari)
    assert message["Subject"] == "Reset your password"
    text, html = Mailbox.text(message), Mailbox.html(message)
    assert "Reset password" in html and "One-time login link" in html
    assert "30 minutes" in text
    reset, login = reset_links(message)
    assert login is not None
    # links from the configured issuer, in both parts
    for link in links_of(message, "/password/reset/") + links_of(message, "/login/link/"):
        assert link.startswith(ISSUER + "/")
        assert link in html
    assert [r["user_id"] is not None for r in audit(app, "password_reset_requested")] == [True]


def test_the_address_is_matched_without_case_and_spaces(client, kari, mailbox):
    assert forgot(client, "  KARI@Example.NO ").status_code == 200
    assert mailbox.last(kari)


def test_the_links_are_stored_as_digests(app, client, kari, mailbox):
    from visma_idp.crypto import digest
    from visma_idp.storage import AccountToken, db

    forgot(client, kari)
    reset, login = reset_links(mailbox.last(kari))
    raw = {reset.rsplit("/", 1)[1], login.rsplit("/", 1)[1]}
    with app.app_context():
        rows = db.session.scalars(db.select(AccountToken)).all()
    assert {r.kind for r in rows} == {"reset", "login_link"}
    assert {r.digest for r in rows} == {digest(v) for v in raw}
    assert all(r.expires_at - r.created_at == 1800 for r in rows)


def test_a_bad_address_is_refused(client, mailbox):
    page = client.get("/password/forgot").get_data(as_text=True)
    for bad in ("", "no-at-sign", "a b@example.no", "x" * 330 + "@example.no"):
        resp = client.post("/password/forgot", data={"email": bad, "csrf_token": csrf(page), **solve(page)})
        assert resp.status_code == 400
        html = resp.get_data(as_text=True)
        assert "Enter your email address, like name@example.com." in html
        assert 'aria-invalid="true"' in html and 'role="alert"' in html
    assert mailbox.messages == [] and mailbox.deliver().sent == 0


def test_no_email_for_no_account_or_a_disabled_one(app, client, kari, make_user, mailbox):
    make_user(email="off@example.no")
    set_user(app, "off@example.no", is_active=False)
    for email in ("nobody@example.no", "off@example.no"):
        assert forgot(client, email).status_code == 200
    assert mailbox.deliver().sent == 0


def test_a_pending_or_locked_account_gets_only_the_reset_link(app, client, idp, make_user, mailbox):
    from visma_idp.admin.service import invite_user
    from visma_idp.storage import db

    with app.app_context():
        invite_user("nina@example.no", "Nina Berg")
        db.session.commit()
    make_user(email="locked@example.no")
    set_user(app, "locked@example.no", locked_at=idp.clock.now())
    for email in ("nina@example.no", "locked@example.no"):
        forgot(client, email)
        message = mailbox.last(email)
        reset, login = reset_links(message)
        assert login is None
        assert "One-time login link" not in Mailbox.html(message)


@pytest.mark.parametrize("limit", [None, 1])  # the default, or FORGOT_PER_EMAIL
def test_quota_per_address_is_silent(app, client, idp, kari, mailbox, limit):
    if limit:
        idp.settings["FORGOT_PER_EMAIL"] = limit
    per_email = limit or FORGOT_PER_EMAIL
    answers = [forgot(client, kari) for _ in range(per_email + 2)]
    assert {a.status_code for a in answers} == {200}
    assert len({a.get_data(as_text=True).count("Check your email") for a in answers}) == 1
    assert len(mailbox.to(kari)) == per_email
    throttled = [r for r in audit(app, "password_reset_requested") if r["outcome"] == "failure"]
    assert len(throttled) == 2 and all(r["details"]["reason"] == "throttled" for r in throttled)
    # later it works again
    idp.clock.advance(FORGOT_WINDOW + 1)
    forgot(client, kari)
    assert len(mailbox.to(kari)) == per_email + 1


@pytest.mark.parametrize("limit", [None, 4])  # the default, or FORGOT_PER_IP
def test_quota_per_ip_is_silent(app, idp, kari, mailbox, limit):
    if limit:
        idp.settings["FORGOT_PER_IP"] = limit
    spray = app.test_client()
    spray.environ_base["REMOTE_ADDR"] = "10.9.8.7"
    for i in range(limit or FORGOT_PER_IP):
        assert forgot(spray, f"spray{i}@example.no").status_code == 200
    assert forgot(spray, kari).status_code == 200  # over the IP's quota: same answer, no email
    assert mailbox.to(kari) == []
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.9.8.8"
    forgot(other, kari)
    assert len(mailbox.to(kari)) == 1


def test_csrf_is_required(client, kari, mailbox):
    page = client.get("/password/forgot").get_data(as_text=True)
    for token in (None, "forged"):
        data = {"email": kari, **solve(page)}
        if token is not None:
            data["csrf_token"] = token
        resp = client.post("/password/forgot", data=data)
        assert resp.status_code == 400
        assert "This page has expired" in resp.get_data(as_text=True)
    assert mailbox.to(kari) == []


def test_the_pending_authorization_survives_forgot_and_reset(flow, mailbox):
    """Started at an app → forgot → reset → sign in → back at the app."""
    start = flow.start()
    tx = query(start.headers["Location"])["tx"]
    page = flow.client.get(f"/login/password?tx={tx}")  # no email yet: sent to the email page
    assert page.status_code == 302
    login_page = flow.client.get(f"/login?tx={tx}").get_data(as_text=True)
    resp = flow.client.post(f"/login?tx={tx}", data={"email": flow.email, "tx": tx, "csrf_token": csrf(login_page)})
    password_page = flow.client.get(f"/login/password?tx={tx}").get_data(as_text=True)
    assert f"/password/forgot?tx={tx}" in password_page

    assert forgot(flow.client, flow.email, tx=tx).status_code == 200
    reset, _login = reset_links(mailbox.last(flow.email))
    resp = post_new_password(flow.client, reset)
    assert resp.status_code == 302
    done = flow.client.get(resp.headers["Location"].replace(ISSUER, ""))
    html = done.get_data(as_text=True)
    assert f'href="{ISSUER}/login/password?tx={tx}"' in html

    page = flow.client.get(f"/login/password?tx={tx}").get_data(as_text=True)
    resp = flow.client.post(f"/login/password?tx={tx}", data={"password": STRONG, "tx": tx, "csrf_token": csrf(page)})
    callback = flow.until_callback(resp)
    params = query(callback.headers["Location"])
    assert "code" in params and params["state"] == flow.last["state"]


def test_a_tx_of_another_browser_is_ignored(app, client, kari, mailbox):
    resp = forgot(client, kari, tx="not-a-transaction-of-this-browser")
    assert resp.status_code == 200
    assert 'name="tx"' not in resp.get_data(as_text=True)
    from visma_idp.storage import AccountToken, db

    with app.app_context():
        assert all(row.data is None for row in db.session.scalars(db.select(AccountToken)))
