"""Change password on My details: current password (throttled, audited),
the new one twice, the policy; on success every other session and every
token is revoked, this session ends, the user signs in again, a mail goes out."""

from __future__ import annotations

import re

from tests.account.test_details import (
    ISSUER,
    PASSWORD,
    SAFARI_IPHONE,
    audit_events,
    page,
    post,
    sign_in,
    signed_in_browser,
    user_row,
)
from tests.helpers import csrf
from tests.mailbox import Mailbox

NEW = "a much longer passphrase 2024"


def change(client, current=PASSWORD, new=NEW, again=None):
    return post(client, "/account/password", current_password=current, password=new,
                password2=new if again is None else again)


def field_error(html: str, field_id: str) -> str:
    tag = re.search(rf'<input id="{field_id}"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in tag and re.search(rf'aria-describedby="[^"]*{field_id}-error', tag), tag
    return re.search(rf'id="{field_id}-error" role="alert">(.*?)</(p|ul)>', html, re.S).group(1)


def test_change_password_signs_out_everywhere_and_asks_to_sign_in_again(flow, app, idp, mailbox):
    from visma_idp.storage import SsoSession, Token, db

    tokens = flow.tokens(scope="openid email offline_access")  # an app holds a refresh token
    other = signed_in_browser(app, user_agent=SAFARI_IPHONE)  # another browser
    client = flow.client
    before = user_row(app).password_changed_at

    idp.clock.advance(10)
    resp = change(client)
    assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + "/account/password/changed"
    done = client.get("/account/password/changed")
    assert done.status_code == 200 and "Sign in again with your new password" in done.text
    assert 'href="http://127.0.0.1:5000/login"' in done.text

    # this browser is signed out (its cookie is cleared), and so is the other one
    assert client.get("/account").status_code == 302
    assert other.get("/account").status_code == 302
    with app.app_context():
        assert db.session.scalars(db.select(SsoSession).where(SsoSession.ended_at.is_(None))).all() == []
        assert all(t.revoked_at is not None for t in db.session.scalars(db.select(Token)))
    # the app's refresh token and access token are dead
    resp = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                       headers=flow.basic())
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    resp = client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert resp.status_code == 401

    # the old password no longer works, the new one does; the email is filled in
    assert 'value="kari@example.no"' in client.get("/login").text
    assert sign_in(client, password=PASSWORD).status_code == 401
    assert sign_in(client, password=NEW).status_code == 302
    assert user_row(app).password_changed_at > (before or 0)

    message = mailbox.last("kari@example.no")
    assert message["Subject"] == "Your password was changed"
    assert "was changed" in Mailbox.text(message) and "was reset" not in Mailbox.text(message)
    [event] = audit_events(app, "password_changed")
    assert event.details == {"via": "change"}
    assert audit_events(app, "sessions_revoked")[-1].details["reason"] == "password_changed"


def test_wrong_current_password_is_refused_audited_and_throttled(app, make_user, mailbox):
    uid = make_user()
    client = signed_in_browser(app)
    resp = change(client, current="not my password")
    assert resp.status_code == 400
    assert field_error(resp.text, "password-current") == "The current password is not right."
    [event] = audit_events(app, "password_change_failed", uid)
    assert event.outcome == "failure"
    for _ in range(3):
        change(client, current="not my password")
    resp = change(client, current="not my password")  # past the free attempts: a growing delay
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert "Wait" in field_error(resp.text, "password-current")
    # the budget is the login's: signing in with this address waits as well
    other = app.test_client()
    assert sign_in(other).status_code == 429
    assert client.get("/account").status_code == 200  # still signed in, nothing changed
    assert mailbox.to("kari@example.no") == []


def test_the_new_passwords_must_match(app, make_user):
    make_user()
    client = signed_in_browser(app)
    resp = change(client, again=NEW + "x")
    assert resp.status_code == 400
    tag = re.search(r'<input id="password-new2"[^>]*>', resp.text).group(0)
    assert 'aria-invalid="true"' in tag and 'aria-describedby="password-new2-error"' in tag
    assert re.search(r'id="password-new2-error"[^>]*>The two passwords are not the same.</p>', resp.text)
    assert 'id="password-new-error"' not in resp.text  # the new one itself is fine
    resp = change(client, new="short", again="shorter")  # every problem at once
    assert resp.status_code == 400
    assert field_error(resp.text, "password-new") and "The two passwords are not the same.</p>" in resp.text
    assert sign_in(app.test_client()).status_code == 302  # the old password still works


def test_the_policy_is_enforced_with_every_violation(app, make_user):
    make_user()
    client = signed_in_browser(app)
    resp = change(client, new="short")
    assert resp.status_code == 400
    errors = re.findall(r"<li>(.*?)</li>", field_error(resp.text, "password-new"), re.S)
    errors = [e.strip() for e in errors]
    assert errors and any("12" in e for e in errors), errors
    resp = change(client, new="")
    assert resp.status_code == 400 and "Enter a new password." in resp.text
    resp = change(client, current="")
    assert resp.status_code == 400 and field_error(resp.text, "password-current") == "Enter your current password."
    assert client.get("/account").status_code == 200
    assert sign_in(app.test_client()).status_code == 302


def test_a_policy_error_is_shown_in_the_users_language(app, make_user):
    make_user(locale="nb")
    client = signed_in_browser(app)
    resp = change(client, new="short")
    assert resp.status_code == 400 and '<html lang="nb">' in resp.text


def test_change_password_needs_the_csrf_token(app, make_user):
    make_user()
    client = signed_in_browser(app)
    page(client)
    resp = client.post("/account/password", data={"current_password": PASSWORD, "password": NEW, "password2": NEW})
    assert resp.status_code == 400
    assert client.get("/account").status_code == 200
    token = csrf(page(client))
    resp = client.post("/account/password", headers={"Origin": "https://evil.example"},
                       data={"current_password": PASSWORD, "password": NEW, "password2": NEW, "csrf_token": token})
    assert resp.status_code == 403
    assert sign_in(app.test_client()).status_code == 302


def test_only_the_current_password_itself_passes_never_a_longer_text(app, idp, make_user, mailbox):
    """The current password is checked whole, never cut at MAX_LENGTH: a
    longer text that starts with it is wrong, as on the sign-in page."""
    from tests.account.test_change_email import request_change
    from tests.account.test_details import signed_in_with_the_longest_password

    client, longest = signed_in_with_the_longest_password(app, idp, make_user)
    resp = change(client, current=longest + "and more")
    assert resp.status_code == 400
    assert field_error(resp.text, "password-current") == "The current password is not right."
    resp = request_change(client, password=longest + "and more")
    assert resp.status_code == 400 and "The current password is not right." in resp.text
    assert mailbox.to("kari@example.no") == []
    assert request_change(client, password=longest).status_code == 303


def test_the_failure_that_pauses_the_account_is_audited_as_at_sign_in(app, idp, make_user):
    uid = make_user()
    client = signed_in_browser(app)
    most, pause = idp.settings["THROTTLE_MAX_FAILURES"], idp.settings["THROTTLE_LOCK_SECONDS"]
    statuses = []
    for _ in range(most):
        resp = change(client, current="not my password")
        if resp.status_code == 429 and int(resp.headers["Retry-After"]) < pause:
            idp.clock.advance(int(resp.headers["Retry-After"]))  # the growing delay
            resp = change(client, current="not my password")
        statuses.append(resp.status_code)
    assert statuses == [400] * (most - 1) + [429]
    assert int(resp.headers["Retry-After"]) == pause and "Try again in 15 minute(s)" in resp.text
    [paused] = audit_events(app, "account_locked", uid)
    assert paused.outcome == "failure" and paused.details == {"seconds": pause}
    assert len(audit_events(app, "password_change_failed", uid)) == most
