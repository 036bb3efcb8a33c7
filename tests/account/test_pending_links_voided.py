"""A pending email change (and every other pending link that changes the
account) dies with a password reset, a password change, "sign out of all
other sessions", an account lock and an admin action on the account.

The story that made this rule: someone who once knew the password asks to
move the account to their own address; the owner notices and resets the
password; the old confirmation link must not move the account afterwards
(else "forgot password" on the new address completes the takeover).
"""

from __future__ import annotations

import pytest

from tests.account.test_change_email import confirm, link_in, press, request_change
from tests.account.test_details import (
    PASSWORD,
    SAFARI_IPHONE,
    audit_events,
    page,
    post,
    sign_in,
    signed_in_browser,
    user_row,
)
from tests.helpers import path_of
from tests.mailbox import Mailbox
from tests.password.recovery import EASY_POW, forgot, post_new_password, reset_links

OWNER = "kari@example.no"
THIEF = "mallory@evil.example.com"
NEW_PASSWORD = "a new password that is long enough"
CANCELLED = "A pending change of your email address to mallory@evil.example.com was cancelled."


@pytest.fixture
def settings(settings):
    settings["POW_DIFFICULTY"] = EASY_POW
    return settings


def thief_asks_to_move_the_account(app, mailbox) -> str:
    """The thief signs in with the known password and asks to move the account
    to their own address; returns the confirmation link from their mailbox."""
    thief = signed_in_browser(app, user_agent=SAFARI_IPHONE, ip="203.0.113.9")
    assert request_change(thief, new=THIEF).status_code == 303
    return link_in(mailbox, THIEF, "/account/email/confirm")


def assert_refused(app, link: str) -> None:
    """The confirmation link no longer moves the account, opened or pressed."""
    thief = app.test_client()
    shown = thief.get(link)
    assert shown.status_code == 410, shown.status_code
    assert "no longer works" in shown.text
    assert press(thief, link).status_code == 410
    assert user_row(app, OWNER) is not None and user_row(app, THIEF) is None


def test_the_takeover_story_ends_at_the_owners_password_reset(app, make_user, mailbox):
    make_user(email=OWNER)
    link = thief_asks_to_move_the_account(app, mailbox)

    # the owner reads the notice, asks for a reset and sets a new password (every session ends)
    owner = app.test_client()
    assert forgot(owner, OWNER).status_code == 200
    reset, _login = reset_links(mailbox.last(OWNER))
    resp = post_new_password(owner, reset, NEW_PASSWORD)
    assert resp.status_code == 302
    done = owner.get(path_of(resp.headers["Location"])).text

    # the old confirmation link no longer moves the account ...
    assert_refused(app, link)
    # ... so "forgot password" on the thief's address finds no account
    assert forgot(app.test_client(), THIEF).status_code == 200
    assert [m["Subject"] for m in mailbox.to(THIEF)] == ["Confirm your new email address"]
    # the owner's new password works and the address is theirs
    assert sign_in(app.test_client(), OWNER, NEW_PASSWORD).status_code == 302

    # and the owner is told, on the page and in the notice
    assert CANCELLED in done
    notice = [m for m in mailbox.to(OWNER) if m["Subject"] == "Your password was changed"][-1]
    assert CANCELLED in Mailbox.text(notice) and CANCELLED in Mailbox.html(notice)
    [cancelled] = audit_events(app, "email_change_cancelled")
    assert cancelled.details["reason"] == "password_reset" and cancelled.details["to"] == THIEF


def test_a_password_change_voids_the_pending_change(app, make_user, mailbox):
    make_user(email=OWNER)
    link = thief_asks_to_move_the_account(app, mailbox)
    owner = signed_in_browser(app)
    resp = post(owner, "/account/password", current_password=PASSWORD, password=NEW_PASSWORD, password2=NEW_PASSWORD)
    assert resp.status_code == 303
    assert CANCELLED in owner.get(path_of(resp.headers["Location"])).text
    assert_refused(app, link)
    notice = [m for m in mailbox.to(OWNER) if m["Subject"] == "Your password was changed"][-1]
    assert CANCELLED in Mailbox.text(notice)


def test_signing_out_of_all_other_sessions_voids_the_pending_change(app, make_user, mailbox):
    make_user(email=OWNER)
    link = thief_asks_to_move_the_account(app, mailbox)
    owner = signed_in_browser(app)
    assert post(owner, "/account/sessions/others/end").status_code == 303
    html = page(owner)
    assert "You are now signed out everywhere except on this device." in html and CANCELLED in html
    assert_refused(app, link)


def test_an_admin_one_time_code_voids_the_pending_change(app, make_user, mailbox):
    from tests.admin import grant, issue

    make_user(email=OWNER)
    make_user(email="ola@example.no", name="Ola Admin")
    grant(app, "ola@example.no", "example.no")
    link = thief_asks_to_move_the_account(app, mailbox)
    issue(app, "ola@example.no", OWNER)
    assert_refused(app, link)
    message = [m for m in mailbox.to(OWNER) if "one-time code" in m["Subject"].lower()][-1]
    assert CANCELLED in Mailbox.text(message)
    [cancelled] = audit_events(app, "email_change_cancelled")
    assert cancelled.details["reason"] == "one_time_code_issued"


def test_the_account_lock_voids_every_pending_link(app, make_user, mailbox):
    """ "This wasn't me" locks the account: the thief's link and a reset link
    (which may have gone anywhere) stop working."""
    make_user(email=OWNER)
    link = thief_asks_to_move_the_account(app, mailbox)
    forgot(app.test_client(), OWNER)
    reset, login = reset_links(mailbox.last(OWNER))
    cancel = link_in(mailbox, OWNER, "/account/email/cancel")
    assert confirm(app.test_client(), cancel).status_code == 200
    assert_refused(app, link)
    assert app.test_client().get(reset).status_code == 410
    assert app.test_client().get(login).status_code == 410


def test_resending_activation_voids_the_earlier_reset_link(app, mailbox):
    """An admin action on a pending account: the reset link from "forgot
    password" (which would also activate it) stops working with the old
    activation link."""
    from visma_idp.account.activation import resend_activation
    from visma_idp.admin.service import invite_user
    from visma_idp.storage import db, queries

    with app.app_context():
        invite_user("nina@example.no", "Nina Berg")
        db.session.commit()
    forgot(app.test_client(), "nina@example.no")
    reset, _login = reset_links(mailbox.last("nina@example.no"))
    with app.test_request_context("/"):
        resend_activation(queries.user_by_email("nina@example.no"))
        db.session.commit()
    assert app.test_client().get(reset).status_code == 410
    welcome = mailbox.last("nina@example.no")
    activate = [x for x in Mailbox.links(welcome) if "/activate/" in x][0].replace("http://127.0.0.1:5000", "")
    assert app.test_client().get(activate).status_code == 200


def test_a_password_change_voids_a_pending_reset_and_login_link(app, make_user, mailbox):
    """An older reset link would overwrite the password just chosen; a login
    link is a sign-in waiting to happen: both die with the change."""
    make_user(email=OWNER)
    forgot(app.test_client(), OWNER)
    reset, login = reset_links(mailbox.last(OWNER))
    owner = signed_in_browser(app)
    post(owner, "/account/password", current_password=PASSWORD, password=NEW_PASSWORD, password2=NEW_PASSWORD)
    assert app.test_client().get(reset).status_code == 410
    assert app.test_client().get(login).status_code == 410


def test_this_wasnt_me_outlives_a_reset_by_whoever_holds_the_new_address(app, make_user, mailbox):
    """The cancel link is the owner's way back (it goes to the OLD address): a
    reset made by the thief after a confirmed change must not void it."""
    make_user(email=OWNER)
    link = thief_asks_to_move_the_account(app, mailbox)
    assert confirm(app.test_client(), link).status_code == 200  # the owner was too late
    thief = app.test_client()
    forgot(thief, THIEF)
    reset, _login = reset_links(mailbox.last(THIEF))
    assert post_new_password(thief, reset, "the thief's own password 123").status_code == 302
    cancel = link_in(mailbox, OWNER, "/account/email/cancel")
    resp = confirm(app.test_client(), cancel)
    assert resp.status_code == 200
    assert user_row(app, OWNER) is not None and user_row(app, OWNER).locked_at is not None


def test_no_word_of_a_cancelled_change_when_there_was_none(app, make_user, mailbox):
    make_user(email=OWNER)
    owner = signed_in_browser(app)
    resp = post(owner, "/account/password", current_password=PASSWORD, password=NEW_PASSWORD, password2=NEW_PASSWORD)
    assert "pending change of your email address" not in owner.get(path_of(resp.headers["Location"])).text
    notice = mailbox.last(OWNER)
    assert notice["Subject"] == "Your password was changed"
    assert "pending change" not in Mailbox.text(notice) and "pending change" not in Mailbox.html(notice)
    assert audit_events(app, "email_change_cancelled") == []


def test_an_expired_change_is_not_reported_as_cancelled(app, idp, make_user, mailbox):
    make_user(email=OWNER)
    thief_asks_to_move_the_account(app, mailbox)
    idp.clock.advance(idp.settings["EMAIL_CHANGE_LIFETIME"] + 1)
    owner = signed_in_browser(app)
    assert post(owner, "/account/sessions/others/end").status_code == 303
    assert "pending change of your email address" not in page(owner)


def test_every_kind_of_link_has_a_rule():
    """A new kind of link must say whether a security event voids it."""
    from visma_idp.account import tokens

    assert set(tokens.VOIDED_BY_SECURITY_EVENTS) | set(tokens.KEPT_BY_SECURITY_EVENTS) == set(tokens.KINDS)
    assert not set(tokens.VOIDED_BY_SECURITY_EVENTS) & set(tokens.KEPT_BY_SECURITY_EVENTS)
    assert tokens.EMAIL_CHANGE in tokens.VOIDED_BY_SECURITY_EVENTS
    assert tokens.EMAIL_CANCEL in tokens.KEPT_BY_SECURITY_EVENTS
