"""Change email address (the username): request with the current password,
confirm from the new mailbox, "this wasn't me" from the old one; expiry,
reuse, enumeration, the race for one address, and what relying apps see."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import event, update

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
from tests.helpers import csrf, path_of
from tests.mailbox import Mailbox

OLD = "kari@example.no"
NEW = "kari.nordmann@example.com"


def request_change(client, new=NEW, password=PASSWORD):
    return post(client, "/account/email", email=new, current_password=password)


def link_in(mailbox, to: str, path: str) -> str:
    """The link to ``path`` in the newest message to ``to`` that has one."""
    messages = mailbox.to(to)
    links = [link for m in reversed(messages) for link in Mailbox.links(m) if f"{path}?token=" in link]
    assert links, [m["Subject"] for m in messages]
    assert links[0].startswith(ISSUER + path)
    return path_of(links[0])


def confirm(client, link: str):
    """Open a confirmation (or cancel) link and press its button."""
    shown = client.get(link)
    if shown.status_code != 200:
        return shown
    token = re.search(r'name="token" value="([^"]+)"', shown.text).group(1)
    return client.post(link.split("?")[0], data={"token": token, "csrf_token": csrf(shown.text)})


def press(client, link: str, *, via=None):
    """POST a link's form from a page fetched by ``via`` (another page with a CSRF token)."""
    token = link.split("token=")[1]
    html = (via or client).get("/login").text
    return client.post(link.split("?")[0], data={"token": token, "csrf_token": csrf(html)})


# -- the request ------------------------------------------------------------------------

def test_request_sends_a_link_to_the_new_address_and_a_notice_to_the_old(app, make_user, mailbox):
    uid = make_user()
    client = signed_in_browser(app)
    resp = request_change(client, new="  Kari.Nordmann@Example.COM ")
    assert resp.status_code == 303 and resp.headers["Location"] == ISSUER + "/account#email-title"
    html = page(client)
    assert "We sent a link to kari.nordmann@example.com." in html and "within 24 hours" in html

    confirm_mail = mailbox.last(NEW)
    assert confirm_mail["Subject"] == "Confirm your new email address"
    assert "Kari Nordmann" not in Mailbox.text(confirm_mail)  # the new mailbox learns nothing about the account
    assert "/account/email/confirm?token=" in Mailbox.html(confirm_mail)
    notice = mailbox.last(OLD)
    assert notice["Subject"] == "A change of your email address was requested"
    assert NEW in Mailbox.text(notice) and "/account/email/cancel?token=" in Mailbox.text(notice)
    assert "This wasn&#39;t me" in Mailbox.html(notice) or "This wasn't me" in Mailbox.html(notice)
    # nothing has changed yet
    assert user_row(app).email == OLD
    assert sign_in(app.test_client(), OLD).status_code == 302
    assert [e.event for e in audit_events(app, "email_change_requested", uid)] == ["email_change_requested"]


def test_bad_requests_are_refused_next_to_the_field(app, make_user, mailbox):
    make_user()
    client = signed_in_browser(app)
    for value, text in (("not-an-address", "Enter the new email address"), ("", "Enter the new email address"),
                        ("a b@example.com", "Enter the new email address"), ("KARI@example.no", "already your")):
        resp = request_change(client, new=value)
        assert resp.status_code == 400, value
        error = re.search(r'id="email-new-error" role="alert">(.*?)</p>', resp.text).group(1)
        assert text in error, value
        assert re.search(r'<input id="email-new"[^>]*aria-describedby="email-new-hint email-new-error"', resp.text)
    resp = request_change(client, password="")
    assert resp.status_code == 400 and 'id="email-current-error"' in resp.text
    assert mailbox.to(OLD) == []


def test_wrong_current_password_is_refused_and_audited(app, make_user, mailbox):
    uid = make_user()
    client = signed_in_browser(app)
    resp = request_change(client, password="guessing wrong")
    assert resp.status_code == 400
    assert "The current password is not right." in resp.text
    assert f'value="{NEW}"' in resp.text  # the typed address is kept
    assert audit_events(app, "email_change_failed", uid)[0].outcome == "failure"
    for _ in range(3):
        request_change(client, password="guessing wrong")
    assert request_change(client, password="guessing wrong").status_code == 429
    assert mailbox.to(NEW) == [] and mailbox.to(OLD) == []


@pytest.mark.parametrize("limit", [None, 2])  # the default (5), or EMAIL_CHANGES_PER_HOUR
def test_requests_are_limited_per_hour(app, idp, make_user, limit):
    if limit:
        idp.settings["EMAIL_CHANGES_PER_HOUR"] = limit
    make_user()
    client = signed_in_browser(app)
    for i in range(limit or 5):
        assert request_change(client, new=f"kari{i}@example.com").status_code == 303
    resp = request_change(client, new="kari9@example.com")
    assert resp.status_code == 429 and "too many times" in resp.text
    idp.clock.advance(3601)
    assert request_change(client, new="kari9@example.com").status_code == 303


def test_the_answer_is_the_same_for_a_free_and_a_taken_address(app, make_user, mailbox):
    """The requester cannot learn that an address has an account: same
    status, same headers, same page, and a mail goes out either way."""
    make_user()
    make_user(email="taken@example.com", name="Someone Else")
    client = signed_in_browser(app)

    def answer(new):
        resp = request_change(client, new=new)
        html = page(client)
        message = re.search(r'<p class="done" role="status">(.*?)</p>', html).group(1).replace(new, "ADDR")
        headers = {k: v for k, v in resp.headers.items() if k not in ("Set-Cookie", "Date", "X-Request-Id")}
        return resp.status_code, headers, resp.get_data(), message

    assert answer("free@example.com") == answer("taken@example.com")
    assert mailbox.last("free@example.com")["Subject"] == mailbox.last("taken@example.com")["Subject"]


# -- confirming --------------------------------------------------------------------------------

def test_confirming_changes_the_address_and_keeps_the_password(flow, app, mailbox):
    from visma_idp.oidc.tokens import verify

    tokens = flow.tokens(scope="openid email")
    other = signed_in_browser(app, user_agent=SAFARI_IPHONE)
    request_change(flow.client)
    link = link_in(mailbox, NEW, "/account/email/confirm")

    reader = app.test_client()  # the new mailbox may be read in any browser, signed in or not
    shown = reader.get(link)
    assert shown.status_code == 200 and "Confirm your new email address" in shown.text
    assert user_row(app).email == OLD  # opening the link changes nothing
    resp = confirm(reader, link)
    assert resp.status_code == 200 and "Your email address is changed" in resp.text
    user = user_row(app, NEW)
    assert user is not None and user.email_verified is True

    # the username is the new address, the password is the same
    assert sign_in(app.test_client(), NEW).status_code == 302
    assert sign_in(app.test_client(), OLD).status_code == 401
    # sessions keep working (see email_change.py)
    assert flow.client.get("/account").status_code == 200 and other.get("/account").status_code == 200
    for to in (OLD, NEW):
        message = mailbox.last(to)
        assert message["Subject"] == "Your email address was changed"
        assert OLD in Mailbox.text(message) and NEW in Mailbox.text(message)
    [changed] = audit_events(app, "email_changed")
    assert changed.subject == NEW and changed.details == {"from": OLD}

    # relying apps see the new address: UserInfo at once, and a new ID token
    info = flow.client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert info.get_json()["email"] == NEW
    flow.email = NEW
    fresh = flow.tokens(scope="openid email", claims=json.dumps({"id_token": {"email": None, "email_verified": None}}))
    with app.app_context():
        _, claims = verify(app.extensions["visma_idp"].keys, fresh["id_token"], issuer=ISSUER)
    assert claims["email"] == NEW and claims["email_verified"] is True


def test_a_confirmation_link_works_once(app, make_user, mailbox):
    make_user()
    client = signed_in_browser(app)
    request_change(client)
    link = link_in(mailbox, NEW, "/account/email/confirm")
    assert confirm(client, link).status_code == 200
    again = client.get(link)
    assert again.status_code == 410 and "already used" in again.text
    assert press(client, link).status_code == 410


def test_a_confirmation_link_expires(app, idp, make_user, mailbox):
    make_user()
    client = signed_in_browser(app)
    request_change(client)
    link = link_in(mailbox, NEW, "/account/email/confirm")
    idp.clock.advance(idp.settings["EMAIL_CHANGE_LIFETIME"] + 1)
    resp = client.get(link)
    assert resp.status_code == 410 and "expired" in resp.text
    assert press(client, link).status_code == 410
    assert user_row(app).email == OLD


def test_a_newer_request_voids_the_older_link(app, make_user, mailbox):
    make_user()
    client = signed_in_browser(app)
    request_change(client, new="first@example.com")
    first = link_in(mailbox, "first@example.com", "/account/email/confirm")
    request_change(client, new="second@example.com")
    assert client.get(first).status_code == 410
    assert confirm(client, link_in(mailbox, "second@example.com", "/account/email/confirm")).status_code == 200
    assert user_row(app, "second@example.com") is not None


def test_unknown_and_malformed_links_are_refused(app, make_user):
    make_user()
    client = app.test_client()
    for url in ("/account/email/confirm?token=" + "x" * 43, "/account/email/confirm",
                "/account/email/cancel?token=" + "y" * 43, "/account/email/cancel?token=short"):
        assert client.get(url).status_code == 404, url
    assert press(client, "/account/email/confirm?token=" + "x" * 43).status_code == 404


def test_confirming_needs_the_csrf_token(app, make_user, mailbox):
    make_user()
    client = signed_in_browser(app)
    request_change(client)
    link = link_in(mailbox, NEW, "/account/email/confirm")
    resp = client.post("/account/email/confirm", data={"token": link.split("token=")[1]})
    assert resp.status_code == 400
    assert user_row(app).email == OLD
    assert confirm(client, link).status_code == 200  # the link was not spent


# -- the race for one address -----------------------------------------------------------------------

def test_two_accounts_racing_for_one_address_first_confirmation_wins(app, make_user, mailbox):
    make_user()
    make_user(email="ola@example.no", name="Ola Nordmann")
    kari = signed_in_browser(app)
    ola = signed_in_browser(app, email="ola@example.no")
    shared = "shared@example.com"
    assert request_change(kari, new=shared).status_code == 303
    assert request_change(ola, new=shared).status_code == 303  # neither learns of the other
    kari_link, ola_link = [path_of(link) for m in mailbox.to(shared) for link in Mailbox.links(m)
                           if "/account/email/confirm?token=" in link]

    assert confirm(app.test_client(), ola_link).status_code == 200  # first confirmation wins
    assert user_row(app, shared).name == "Ola Nordmann"
    reader = app.test_client()
    shown = reader.get(kari_link)
    assert shown.status_code == 409 and "already in use" in shown.text
    resp = press(reader, kari_link)
    assert resp.status_code == 409
    assert "Another account uses shared@example.com now, so your address was not changed." in resp.text
    assert user_row(app).email == OLD
    assert audit_events(app, "email_change_conflict")[0].outcome == "failure"

    # the losing link is not spent: when the address becomes free it works
    ola_again = signed_in_browser(app, email=shared)
    request_change(ola_again, new="ola.elsewhere@example.com")
    assert confirm(app.test_client(), link_in(mailbox, "ola.elsewhere@example.com",
                                              "/account/email/confirm")).status_code == 200
    assert confirm(app.test_client(), kari_link).status_code == 200
    assert user_row(app, shared).name == "Kari Nordmann"


def test_the_unique_index_decides_when_the_check_comes_too_late(app, make_user, mailbox):
    """Another transaction takes the address between our check and our
    write (simulated: it happens inside the flush that writes ours): the
    unique index refuses ours, the answer is 409 and the link is not spent."""
    from sqlalchemy.orm import Session

    from visma_idp.storage import User

    make_user()
    other_id = make_user(email="ola@example.no", name="Ola Nordmann")
    client = signed_in_browser(app)
    request_change(client)
    link = link_in(mailbox, NEW, "/account/email/confirm")
    fired = []

    def take_it_first(session, _context, _instances):
        if not fired and any(isinstance(o, User) and o.email == NEW for o in session.dirty):
            fired.append(True)
            session.connection().execute(update(User).where(User.id == other_id).values(email=NEW))

    event.listen(Session, "before_flush", take_it_first)
    try:
        resp = confirm(app.test_client(), link)
    finally:
        event.remove(Session, "before_flush", take_it_first)
    assert fired and resp.status_code == 409
    assert user_row(app).email == OLD
    assert app.test_client().get(link).status_code == 200  # still usable


# -- "this wasn't me" ------------------------------------------------------------------------------------

def _cancel_link(mailbox) -> str:
    return link_in(mailbox, OLD, "/account/email/cancel")


def test_this_wasnt_me_stops_a_pending_change_and_locks_the_account(flow, app, mailbox):
    from visma_idp.storage import SsoSession, Token, db

    tokens = flow.tokens(scope="openid email offline_access")
    request_change(flow.client)
    confirm_link = link_in(mailbox, NEW, "/account/email/confirm")
    cancel = _cancel_link(mailbox)

    victim = app.test_client()  # the owner of the old mailbox, not signed in
    shown = victim.get(cancel)
    assert shown.status_code == 200 and NEW in shown.text and "lock" in shown.text
    resp = confirm(victim, cancel)
    assert resp.status_code == 200 and "Your account is locked" in resp.text
    assert 'href="http://127.0.0.1:5000/password/forgot"' in resp.text

    user = user_row(app)
    assert user.email == OLD and user.locked_at is not None and user.status == "locked"
    assert flow.client.get("/account").status_code == 302  # signed out
    with app.app_context():
        assert db.session.scalars(db.select(SsoSession).where(SsoSession.ended_at.is_(None))).all() == []
        assert all(t.revoked_at is not None for t in db.session.scalars(db.select(Token)))
    resp = flow.client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                            headers=flow.basic())
    assert resp.status_code == 400
    # the confirmation link is void, the cancel link spent
    assert victim.get(confirm_link).status_code == 410
    assert victim.get(cancel).status_code == 410
    # a sign-in with the right password meets the locked page
    resp = sign_in(app.test_client())
    assert resp.status_code == 403 and "Your account is locked" in resp.text
    [locked] = audit_events(app, "account_locked_by_user")
    assert locked.details == {"restored": False}


def test_this_wasnt_me_after_the_change_gives_the_old_address_back(app, make_user, mailbox):
    make_user()
    client = signed_in_browser(app)
    request_change(client)
    assert confirm(app.test_client(), link_in(mailbox, NEW, "/account/email/confirm")).status_code == 200
    assert user_row(app, NEW) is not None
    resp = confirm(app.test_client(), _cancel_link(mailbox))
    assert resp.status_code == 200 and "Your email address is kari@example.no." in resp.text
    user = user_row(app)
    assert user is not None and user.locked_at is not None
    assert sign_in(app.test_client(), NEW).status_code == 401
    assert sign_in(app.test_client(), OLD).status_code == 403
    assert audit_events(app, "email_restored")[0].subject == OLD
    assert audit_events(app, "account_locked_by_user")[0].details == {"restored": True}


def test_this_wasnt_me_cannot_take_an_address_another_account_has_now(app, make_user, mailbox):
    make_user()
    client = signed_in_browser(app)
    request_change(client)
    cancel = _cancel_link(mailbox)
    assert confirm(app.test_client(), link_in(mailbox, NEW, "/account/email/confirm")).status_code == 200
    make_user(email=OLD, name="Newcomer")  # the freed address gets a new owner
    resp = confirm(app.test_client(), cancel)
    assert resp.status_code == 200 and "could not give your old address back" in resp.text
    assert user_row(app, OLD).name == "Newcomer"
    assert user_row(app, NEW).locked_at is not None


@pytest.mark.parametrize("lifetime", [None, 7200])  # the default (14 days), or EMAIL_CHANGE_CANCEL_LIFETIME
def test_a_cancel_link_expires(app, idp, make_user, mailbox, lifetime):
    if lifetime:
        idp.settings["EMAIL_CHANGE_CANCEL_LIFETIME"] = lifetime
    make_user()
    client = signed_in_browser(app)
    request_change(client)
    cancel = _cancel_link(mailbox)
    idp.clock.advance((lifetime or 14 * 24 * 3600) + 1)
    assert app.test_client().get(cancel).status_code == 410
    assert user_row(app).locked_at is None


@pytest.mark.parametrize("kind", ["confirm", "cancel"])
def test_a_link_of_one_kind_does_not_work_as_the_other(app, make_user, mailbox, kind):
    make_user()
    client = signed_in_browser(app)
    request_change(client)
    if kind == "confirm":
        link = link_in(mailbox, NEW, "/account/email/confirm").replace("/confirm?", "/cancel?")
    else:
        link = _cancel_link(mailbox).replace("/cancel?", "/confirm?")
    assert app.test_client().get(link).status_code == 404
    user = user_row(app)
    assert user.email == OLD and user.locked_at is None
