"""Password reset through the emailed link.

- The form (GET does not use the link), the new password under the policy
  (violations shown, 400, nothing changes), the mismatch.
- Success: the new password works and the old does not; every session,
  access and refresh token of the user is revoked; a lock is lifted; a
  pending account becomes active; the "password_changed" notice is sent;
  the user is sent to sign in (not signed in).
- The link lives 30 minutes, works once, is voided by a newer request and
  by using the login link of the same email; unknown links are 404.
"""

from __future__ import annotations

import pytest

from tests.helpers import csrf
from tests.mailbox import Mailbox
from tests.password.recovery import (
    EASY_POW,
    STRONG,
    audit,
    forgot,
    post_new_password,
    reset_links,
    sign_in,
    signed_in,
)

KARI = "kari@example.no"
OLD = "correct horse battery"


@pytest.fixture
def settings(settings):
    settings["POW_DIFFICULTY"] = EASY_POW
    return settings


@pytest.fixture
def kari(make_user):
    make_user(email=KARI, password=OLD)
    return KARI


def reset_link(client, mailbox, email=KARI) -> str:
    assert forgot(client, email).status_code == 200
    return reset_links(mailbox.last(email))[0]


def user_row(app, email=KARI):
    from visma_idp.storage import db, queries

    with app.app_context():
        user = queries.user_by_email(email)
        db.session.expunge(user)
        return user


def test_reset_sets_the_new_password(app, client, kari, mailbox):
    link = reset_link(client, mailbox)
    page = client.get(link)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'autocomplete="new-password"' in html and 'name="password2"' in html
    assert '<label for="password">' in html and '<label for="password2">' in html
    assert client.get(link).status_code == 200  # looking does not use the link

    resp = post_new_password(client, link)
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/password/reset/done")
    done = client.get("/password/reset/done").get_data(as_text=True)
    assert "Your password was reset" in done
    assert 'href="http://127.0.0.1:5000/login/password"' in done  # the address is kept for the sign-in
    assert not signed_in(client)  # a reset does not sign in

    assert sign_in(app.test_client(), KARI, OLD).status_code == 401
    assert sign_in(client, KARI, STRONG).status_code == 302
    assert signed_in(client)

    notice = mailbox.last(KARI)
    assert notice["Subject"] == "Your password was changed"
    assert "was reset" in Mailbox.text(notice)
    assert [r["user_id"] for r in audit(app, "password_reset")] == [user_row(app).id]


def test_reset_revokes_sessions_and_tokens(app, flow, mailbox):
    tokens = flow.tokens(scope="openid offline_access", prompt="consent")
    assert "refresh_token" in tokens
    assert signed_in(flow.client)
    assert flow.client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).status_code == 200
    elsewhere = app.test_client()
    assert sign_in(elsewhere, flow.email, flow.password).status_code == 302

    phone = app.test_client()  # the reset happens on another device
    link = reset_link(phone, mailbox, flow.email)
    assert post_new_password(phone, link).status_code == 302

    assert not signed_in(flow.client) and not signed_in(elsewhere)
    refused = flow.client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                               headers=flow.basic())
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert flow.client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).status_code == 401
    revoked = audit(app, "sessions_revoked")
    assert revoked[-1]["details"]["reason"] == "password_reset"
    assert revoked[-1]["details"]["sessions"] == 2 and revoked[-1]["details"]["tokens"] >= 2
    assert mailbox.last(flow.email)["Subject"] == "Your password was changed"


def test_the_browser_signed_in_as_that_user_is_signed_out(client, kari, mailbox):
    assert sign_in(client, KARI, OLD).status_code == 302
    link = reset_link(client, mailbox)
    assert post_new_password(client, link).status_code == 302
    assert not signed_in(client)


@pytest.mark.parametrize(("password", "password2", "message"), [
    ("short", "short", "Use at least 12 characters."),
    ("", "", "Enter a new password."),
    (STRONG, STRONG + "x", "The two passwords are not the same."),
    ("x" * 1025, "x" * 1025, "Use at most 1024 characters."),
])
def test_policy_violations_are_shown_and_nothing_changes(app, client, kari, mailbox, password, password2, message):
    link = reset_link(client, mailbox)
    mailbox.capture.clear()
    before = user_row(app).password_hash
    resp = post_new_password(client, link, password, password2)
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert message in html
    assert 'aria-invalid="true"' in html
    assert user_row(app).password_hash == before
    assert mailbox.to(KARI) == []
    assert audit(app, "password_reset") == []
    # the link still works
    assert post_new_password(client, link).status_code == 302


def test_the_link_expires_after_30_minutes(client, idp, kari, mailbox):
    link = reset_link(client, mailbox)
    idp.clock.advance(30 * 60 - 5)
    assert client.get(link).status_code == 200
    idp.clock.advance(10)
    resp = client.get(link)
    assert resp.status_code == 410
    html = resp.get_data(as_text=True)
    assert "The link has expired." in html
    assert 'href="http://127.0.0.1:5000/password/forgot"' in html  # a way to a new link


def test_the_link_works_once(client, kari, mailbox):
    link = reset_link(client, mailbox)
    page = client.get(link).get_data(as_text=True)
    data = {"password": STRONG, "password2": STRONG, "csrf_token": csrf(page)}
    assert client.post(link, data=data).status_code == 302
    again = client.post(link, data={**data, "password": STRONG + "!", "password2": STRONG + "!"})
    assert again.status_code == 410
    assert "The link was already used." in again.get_data(as_text=True)
    assert client.get(link).status_code == 410
    assert sign_in(client, KARI, STRONG).status_code == 302


def test_a_newer_request_voids_both_older_links(client, kari, mailbox):
    forgot(client, KARI)
    old_reset, old_login = reset_links(mailbox.last(KARI))
    forgot(client, KARI)
    new_reset, new_login = reset_links(mailbox.last(KARI))
    for link in (old_reset, old_login):
        resp = client.get(link)
        assert resp.status_code == 410
        assert "A newer email replaced this link." in resp.get_data(as_text=True)
    assert client.get(new_login).status_code == 200
    assert post_new_password(client, new_reset).status_code == 302


def test_using_the_reset_link_voids_the_login_link(client, kari, mailbox):
    forgot(client, KARI)
    reset, login = reset_links(mailbox.last(KARI))
    assert post_new_password(client, reset).status_code == 302
    assert client.get(login).status_code == 410


def test_unknown_links_are_404(client):
    for token in ("x" * 43, "short", "x" * 200):
        resp = client.get(f"/password/reset/{token}")
        assert resp.status_code == 404
        assert "We do not know this link." in resp.get_data(as_text=True)


def test_a_locked_account_can_reset_and_is_unlocked(app, client, idp, kari, mailbox):
    from visma_idp.storage import db, queries

    with app.app_context():
        queries.user_by_email(KARI).locked_at = idp.clock.now()
        db.session.commit()
    assert sign_in(client, KARI, OLD).status_code == 403  # the lock page
    link = reset_link(client, mailbox)
    assert post_new_password(client, link).status_code == 302
    assert user_row(app).locked_at is None
    assert audit(app, "password_reset")[-1]["details"] == {"unlocked": True}
    assert sign_in(client, KARI, STRONG).status_code == 302


def test_reset_lifts_the_login_throttle(app, make_app, client, idp, kari, mailbox):
    limits = {"THROTTLE_FREE_ATTEMPTS": 1, "THROTTLE_MAX_FAILURES": 2, "THROTTLE_LOCK_SECONDS": 900}
    strict = make_app(**limits, POW_DIFFICULTY=EASY_POW)
    browser = strict.test_client()
    for _ in range(3):
        sign_in(browser, KARI, "wrong password guess")
    assert sign_in(browser, KARI, OLD).status_code == 429
    forgot(browser, KARI)
    link = reset_links(Mailbox(mailbox.capture, strict).last(KARI))[0]
    assert post_new_password(browser, link).status_code == 302
    assert sign_in(browser, KARI, STRONG).status_code == 302


def test_a_pending_account_is_activated_by_a_reset(app, client, mailbox):
    from visma_idp.admin.service import invite_user
    from visma_idp.storage import db

    with app.app_context():
        invite_user("nina@example.no", "Nina Berg")
        db.session.commit()
    link = reset_link(client, mailbox, "nina@example.no")
    assert post_new_password(client, link).status_code == 302
    user = user_row(app, "nina@example.no")
    assert user.status == "active" and user.email_verified and user.activated_at is not None
    assert sign_in(client, "nina@example.no", STRONG).status_code == 302


def test_a_disabled_account_cannot_use_its_link(app, client, kari, mailbox):
    from visma_idp.storage import db, queries

    link = reset_link(client, mailbox)
    with app.app_context():
        queries.user_by_email(KARI).is_active = False
        db.session.commit()
    assert client.get(link).status_code == 403


def test_csrf_is_required(app, client, kari, mailbox):
    link = reset_link(client, mailbox)
    before = user_row(app).password_hash
    for token in (None, "forged"):
        data = {"password": STRONG, "password2": STRONG}
        if token:
            data["csrf_token"] = token
        assert client.post(link, data=data).status_code == 400
    assert user_row(app).password_hash == before
    assert client.get(link).status_code == 200


def test_a_reset_never_bypasses_the_second_factor(app, client, kari, mailbox):
    """After the new password, signing in still asks for the authenticator app."""
    from tests.factors.test_totp import add_totp

    add_totp(app, 1)
    assert post_new_password(client, reset_link(client, mailbox)).status_code in (200, 302)
    assert not signed_in(client)
    resp = sign_in(client, KARI, STRONG)
    assert resp.status_code == 302 and "/login/verify" in resp.headers["Location"]
    assert not signed_in(client)
