"""Attacks on account recovery and activation.

- Enumeration: the answer to a valid forgot-password post is the same --
  status, body, header names and values -- for an active account, no
  account, a disabled, pending or locked one, and an account over its
  quota; only the CSRF token, the new challenge and the CSP nonce differ.
  The same for "send a new activation link" (pending, active, unknown,
  disabled, locked, over its quota), which has the same human check; what
  depends on the address runs after the answer (the timing:
  test_recovery_timing.py).
- Links in the emails come from the configured issuer, never the Host header.
- Form posts from another origin are refused (403); without the CSRF token
  nothing happens (400).
"""

from __future__ import annotations

import re

import pytest

from tests.helpers import csrf
from tests.mailbox import Mailbox
from tests.password.recovery import EASY_POW, answered, forgot, resend_activation, reset_links, solve

FORGOT_PER_EMAIL = 3  # the setting's default

ISSUER = "http://127.0.0.1:5000"
EVIL_ORIGIN = "https://evil.example"
VOLATILE = [
    (re.compile(r'name="csrf_token" value="[^"]*"'), 'name="csrf_token" value="X"'),
    (re.compile(r'name="pow_challenge" value="[^"]*"'), 'name="pow_challenge" value="X"'),
    (re.compile(r'nonce="[^"]*"'), 'nonce="X"'),
    (re.compile(r"'nonce-[^']*'"), "'nonce-X'"),
]


@pytest.fixture
def settings(settings):
    settings["POW_DIFFICULTY"] = EASY_POW
    return settings


def normal(text: str) -> str:
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def shape(resp) -> tuple:
    headers = sorted((name, normal(value)) for name, value in resp.headers.items()
                     if name not in ("Set-Cookie", "X-Request-Id"))  # a new id per response, whatever the address
    cookies = sorted(value.split("=", 1)[0] for name, value in resp.headers.items() if name == "Set-Cookie")
    return resp.status_code, normal(resp.get_data(as_text=True)), headers, cookies


@pytest.fixture
def accounts(app, idp, make_user):
    from visma_idp.admin.service import invite_user
    from visma_idp.storage import db, queries

    make_user(email="active@example.no")
    make_user(email="off@example.no")
    make_user(email="locked@example.no")
    make_user(email="busy@example.no")
    with app.app_context():
        invite_user("pending@example.no", "Per Pending")
        queries.user_by_email("off@example.no").is_active = False
        queries.user_by_email("locked@example.no").locked_at = idp.clock.now()
        db.session.commit()


def test_forgot_password_answers_the_same_for_every_address(app, accounts, mailbox):
    for _ in range(FORGOT_PER_EMAIL):  # use up busy@'s quota from elsewhere
        other = app.test_client()
        other.environ_base["REMOTE_ADDR"] = "10.1.1.1"
        forgot(other, "busy@example.no")
    mailbox.deliver()
    mailbox.capture.clear()

    shapes = {}
    for email in ("active@example.no", "nobody@example.no", "off@example.no", "pending@example.no",
                  "locked@example.no", "busy@example.no"):
        shapes[email] = shape(forgot(app.test_client(), email))
    reference = shapes["active@example.no"]
    assert reference[0] == 200
    for email, found in shapes.items():
        assert found == reference, email

    # what differs is only who got an email
    mailbox.deliver()
    assert sorted(m["To"] for m in mailbox.messages) == ["active@example.no", "locked@example.no",
                                                          "pending@example.no"]


def test_the_same_browser_gets_the_same_answer_too(app, client, accounts):
    a = forgot(client, "active@example.no")
    b = forgot(client, "nobody@example.no")
    assert shape(a) == shape(b)


def test_the_form_page_does_not_depend_on_the_address_either(app, accounts):
    pages = [app.test_client().get("/password/forgot") for _ in range(2)]
    assert shape(pages[0]) == shape(pages[1])


def test_resend_activation_answers_the_same_for_every_address(app, accounts, mailbox):
    from visma_idp.admin.service import invite_user
    from visma_idp.storage import db

    with app.app_context():
        invite_user("busy-pending@example.no", "Bo Busy")
        db.session.commit()
    for _ in range(3):  # use up busy-pending@'s quota (ACTIVATION_RESEND_PER_EMAIL) from elsewhere
        other = app.test_client()
        other.environ_base["REMOTE_ADDR"] = "10.1.1.2"
        resend_activation(other, "busy-pending@example.no")
    mailbox.deliver()
    mailbox.capture.clear()

    shapes = {}
    for email in ("pending@example.no", "active@example.no", "nobody@example.no", "off@example.no",
                  "locked@example.no", "busy-pending@example.no"):
        shapes[email] = shape(resend_activation(app.test_client(), email))
    reference = shapes["pending@example.no"]
    assert reference[0] == 302
    for email, found in shapes.items():
        assert found == reference, email
    # what differs is only who got an email
    mailbox.deliver()
    assert [m["To"] for m in mailbox.messages] == ["pending@example.no"]


def test_the_same_browser_gets_the_same_resend_answer_too(app, accounts):
    c = app.test_client()
    assert shape(resend_activation(c, "pending@example.no")) == shape(resend_activation(c, "nobody@example.no"))


def test_the_work_that_depends_on_the_address_runs_after_the_answer(app, accounts, mailbox):
    """Nothing about the account happens before the answer has gone out (the
    server closes the response after sending it); then the mail is queued."""
    from visma_idp.storage import MailOutbox, db

    def queued() -> int:
        with app.app_context():
            return db.session.scalar(db.select(db.func.count()).select_from(MailOutbox).where(
                MailOutbox.to_addr.in_(["pending@example.no", "active@example.no"]),
                MailOutbox.kind.in_(["welcome", "password_reset"])))

    before = queued()
    c = app.test_client()
    for url, email in (("/activate/" + "q" * 43, "pending@example.no"), ("/password/forgot", "active@example.no")):
        page = c.get(url).get_data(as_text=True)
        action = "/activate/resend" if url.startswith("/activate/") else "/password/forgot"
        resp = c.post(action, data={"email": email, "csrf_token": csrf(page), **solve(page)})
        assert resp.status_code in (200, 302)
        assert queued() == before  # the answer is ready, nothing is queued yet
        resp.close()  # what the WSGI server does once the answer is sent
        before += 1
        assert queued() == before


def test_links_come_from_the_issuer_not_the_host_header(app, accounts, mailbox):
    c = app.test_client()
    page = c.get("/password/forgot", headers={"Host": "evil.example"}).get_data(as_text=True)
    resp = answered(c.post("/password/forgot", headers={"Host": "evil.example"},
                           data={"email": "active@example.no", "csrf_token": csrf(page), **solve(page)}))
    assert resp.status_code == 200
    message = mailbox.last("active@example.no")
    links = Mailbox.links(message)
    assert links and all(link.startswith(ISSUER) for link in links)
    assert "evil.example" not in Mailbox.html(message)


def _targets(app, mailbox):
    """Every recovery form post: (url, fields) with a valid CSRF token of ``c``."""
    c = app.test_client()
    forgot(c, "active@example.no")
    reset, login = reset_links(mailbox.last("active@example.no"))
    activation = [link for link in Mailbox.links(mailbox.last("pending@example.no")) if "/activate/" in link][0]
    activation = activation.replace(ISSUER, "")
    page = c.get("/password/forgot").get_data(as_text=True)
    token = csrf(page)
    resend_page = c.get("/activate/" + "q" * 43).get_data(as_text=True)
    return c, [
        ("/password/forgot", {"email": "active@example.no", **solve(page)}),
        (reset, {"password": "an evil new password 123", "password2": "an evil new password 123"}),
        (login, {}),
        (activation, {"password": "an evil new password 123", "password2": "an evil new password 123"}),
        ("/activate/resend", {"email": "pending@example.no", **solve(resend_page)}),
    ], token


def test_cross_origin_posts_are_refused(app, accounts, mailbox, audit_rows):
    c, targets, token = _targets(app, mailbox)
    before = len(audit_rows())
    for url, fields in targets:
        resp = c.post(url, data={**fields, "csrf_token": token}, headers={"Origin": EVIL_ORIGIN})
        assert resp.status_code == 403, url
    assert len(audit_rows()) == before
    assert "Signed in as" not in c.get("/").get_data(as_text=True)


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_posts_without_the_csrf_token_do_nothing(app, accounts, mailbox, audit_rows, token):
    c, targets, _good = _targets(app, mailbox)
    before = len(audit_rows())
    for url, fields in targets:
        data = dict(fields)
        if token is not None:
            data["csrf_token"] = token
        resp = c.post(url, data=data)
        assert resp.status_code == 400, url
        assert "This page has expired" in resp.get_data(as_text=True)
    assert len(audit_rows()) == before
    assert "Signed in as" not in c.get("/").get_data(as_text=True)
