"""The Expense demo app and the provider in a real browser (chromium), each on
a loopback port, with mail through the real SMTP server and back-channel
logout tokens over real HTTP.

Kari is invited to Nordlys Regnskap AS (employee) by email, makes her account
from the link, adds an authenticator app on My details, then signs in to
Expense (email, password, code, company chooser: she is in Fjord Transport
AS too), files an outlay with a PNG receipt, and switches company. Ola
(approver) signs in with his password only; approving sends him to the
provider for a step-up (the code, no password) and the claim is approved
when he is back. Ola signs out at the provider itself: the logout worker's
token ends his Expense session. Then Kari signs out at the provider while
Expense is down; the token waits, Expense comes back on the same port, the
worker tries again after ``LOGOUT_RETRY_SECONDS`` and her Expense session is
gone too.

Screenshots: build/screenshots/expense-journey-NN-<step>.png.
"""

from __future__ import annotations

import sqlite3
import struct
import time
import zlib
from contextlib import ExitStack
from urllib.parse import urlsplit

import pyotp
import pytest

from tests.browser.conftest import screenshot, serving
from tests.examples import conftest as examples
from tests.examples.conftest import EXPENSE_SECRET, serve
from tests.mailbox import Mailbox, free_port

PASSWORD = "correct horse battery"
KARI = "kari@nordlys.no"
OLA = "ola@nordlys.no"
NORDLYS, FJORD = "974760673", "934567897"


def _png(width: int = 48, height: int = 24) -> bytes:
    """A real (tiny, striped) PNG: Expense recognises a receipt by its first bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes((200, 30 + 6 * y, 60) * width) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = _png()
make_expense = examples.make_expense  # the Expense app fixture of tests/examples


class Steps:
    """Numbered screenshots: expense-journey-NN-<step>."""

    def __init__(self) -> None:
        self.n = 0

    def shot(self, page, step: str) -> None:
        self.n += 1
        screenshot(page, f"expense-journey-{self.n:02d}-{step}")


class Codes:
    """Authenticator-app codes that the provider takes: a code is taken once
    (its 30-second step must be newer than the last one used) and one step
    either side of now is accepted, so pick the next unused step from now on
    (never the step before now: it may fall out of the window before it is
    typed), and wait when both now and the next step are used."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.last = -10**9

    def next(self) -> str:
        while True:
            now = int(time.time()) // 30
            step = max(self.last + 1, now)
            if step <= now + 1:
                self.last = step
                return self.totp.at(step * 30)
            time.sleep(1)  # only after two codes within one step


@pytest.fixture
def world(app, make_app, make_user, make_client, make_expense, mailbox):
    """The provider and Expense served (Expense can be stopped and started on its port);
    Ola is approver in Nordlys; Kari has no account yet."""
    from visma_idp.agreements import service
    from visma_idp.storage import User, db

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    make_client("expense", name="Expense", secret=EXPENSE_SECRET, redirect_uris=[base + "/callback"],
                post_logout_redirect_uris=[base + "/logged-out"], scope="openid profile email agreements",
                skip_consent=True, backchannel_logout_uri=base + "/backchannel-logout")
    ola_id = make_user(OLA, PASSWORD, "Ola Nordmann")
    with app.test_request_context():
        nordlys = service.create("Nordlys Regnskap AS", NORDLYS)
        service.create("Fjord Transport AS", FJORD)
        ola = db.session.get(User, ola_id)
        service.add_member(nordlys, ola, ["employee"])
        service.add_member(nordlys, ola, ["approver"], client_id="expense")
        db.session.commit()
    with ExitStack() as stack:
        provider = stack.enter_context(serving(make_app, "127.0.0.1"))
        expense = make_expense(provider.url, base_url=base)
        world = {"provider": provider, "expense": base, "expense_app": expense, "port": port, "app": app,
                 "ola_id": ola_id, "mailbox": mailbox, "db": expense.config["DATABASE"]}
        world["expense_server"] = stack.enter_context(ExitStack())
        world["expense_server"].enter_context(serve(expense, port))
        yield world


def expense_rows(world, sql: str, *args) -> list[sqlite3.Row]:
    from examples.relying_party import db as expense_db

    conn = expense_db.connect(world["db"])
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def run_logout_worker(world):
    from visma_idp.oidc import backchannel

    live = world["provider"]
    with live.app.app_context():
        return backchannel.run_once(live.idp)


def deliveries(world) -> list[tuple[str, str, int, str | None]]:
    from visma_idp.storage import LogoutDelivery, db

    with world["provider"].app.app_context():
        rows = db.session.scalars(db.select(LogoutDelivery).order_by(LogoutDelivery.id)).all()
        return [(r.sub, r.status, r.attempts, r.last_error) for r in rows]


def deliveries_full(world):
    from visma_idp.storage import LogoutDelivery, SsoSession, db

    with world["provider"].app.app_context():
        rows = db.session.scalars(db.select(LogoutDelivery).order_by(LogoutDelivery.id)).all()
        out = [(r.sub, r.sid, r.reason, r.status, r.created_at) for r in rows]
        sess = [(s.public_id, s.user_id, s.ended_at, getattr(s, "acr", None)) for s in db.session.scalars(db.select(SsoSession))]
        return out, sess


def sub_of(world, email: str) -> str:
    from visma_idp.storage import User, db

    with world["provider"].app.app_context():
        return db.session.scalar(db.select(User.sub).where(User.email == email))


def submit(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def password_sign_in(page, email: str) -> None:
    """The provider's email page, then its password page."""
    assert urlsplit(page.url).path == "/login", page.url
    page.fill("#email", email)
    with page.expect_navigation():
        page.press("#email", "Enter")
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.press("#password", "Enter")


def test_expense_journey(world, browser):
    live, expense, mailbox, steps = world["provider"], world["expense"], world["mailbox"], Steps()
    started = time.monotonic()

    # 1. Kari is invited to Nordlys as employee; the email comes through the SMTP server
    from visma_idp.agreements import invitations, service
    from visma_idp.storage import Agreement, Factor, User, db

    with live.app.test_request_context():
        nordlys = db.session.scalar(db.select(Agreement).where(Agreement.org_number == NORDLYS))
        invitations.invite(nordlys, KARI, ["employee"], invited_by=None)
        db.session.commit()
    message = mailbox.last(KARI)
    assert "Nordlys Regnskap AS" in message["Subject"] + Mailbox.text(message)
    [link] = [u for u in Mailbox.links(message) if "/invitations/" in u]
    assert link.startswith(live.url + "/")

    kari_ctx = browser.new_context(viewport={"width": 1024, "height": 800}, locale="en-GB")
    kari_ctx.set_default_timeout(10_000)
    kari = kari_ctx.new_page()
    kari.goto(link)
    assert "Invitation to Nordlys Regnskap AS" in kari.text_content("h1")
    assert KARI in kari.content()
    kari.fill("#name", "Kari Nordmann")
    kari.fill("#password", PASSWORD)
    kari.fill("#password2", PASSWORD)
    steps.shot(kari, "invitation-create-account")
    submit(kari, "button:has-text('Create account and join')")
    assert kari.text_content("h1") == "Your account is ready", kari.content()[:1500]
    steps.shot(kari, "account-ready")
    with live.app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == KARI))
        assert user.status == "active" and user.name == "Kari Nordmann"
        assert [r["role"] for r in service.membership(user.id, nordlys.id).roles] == ["employee"]
        kari_id = user.id

    # the invitation does not offer an authenticator app: she signs in and adds one on My details
    submit(kari, "a.button:has-text('Sign in')")
    if kari.locator("#email").count():
        kari.fill("#email", KARI)
        submit(kari, "button[type=submit]")
    kari.fill("#password", PASSWORD)
    with kari.expect_navigation():
        kari.press("#password", "Enter")
    kari.goto(live.url + "/account/security")
    submit(kari, "#totp a.button")
    secret = kari.text_content("#totp-key").replace(" ", "")
    kari_codes = Codes(secret)
    steps.shot(kari, "totp-enrol")
    kari.fill("#totp-code", kari_codes.next())
    submit(kari, "button:has-text('Turn on')")
    if kari.is_visible("text=I have saved them, continue"):
        steps.shot(kari, "recovery-codes")
        submit(kari, "text=I have saved them, continue")
    with live.app.app_context():
        [factor] = db.session.scalars(db.select(Factor).where(Factor.user_id == kari_id, Factor.kind == "totp")).all()
        assert factor.confirmed_at is not None

    # she is in a second company too (so Expense can switch)
    with live.app.test_request_context():
        fjord = db.session.scalar(db.select(Agreement).where(Agreement.org_number == FJORD))
        service.add_member(fjord, db.session.get(User, kari_id), ["employee"])
        db.session.commit()
    kari_ctx.clear_cookies()  # a fresh sign-in from Expense: every page of the provider

    # 2. Expense: sign in (email, password, code), choose Nordlys, home shows her and the company
    kari.goto(expense + "/")
    steps.shot(kari, "expense-welcome")
    submit(kari, "#sign-in")
    password_sign_in(kari, KARI)
    assert urlsplit(kari.url).path == "/login/verify", kari.url
    kari.fill("#code", kari_codes.next())
    steps.shot(kari, "second-step")
    with kari.expect_navigation():
        kari.press("#code", "Enter")
    assert "Choose a company" in kari.content(), kari.url
    steps.shot(kari, "company-chooser")
    submit(kari, f"#agreement-list li button:has-text('{NORDLYS}')")
    assert kari.url == expense + "/", kari.url
    assert kari.text_content("#name") == "Kari Nordmann"
    assert kari.text_content("#email") == KARI
    assert kari.text_content("#agreement") == "Nordlys Regnskap AS"
    assert kari.text_content("#org-number") == NORDLYS
    assert kari.text_content("#roles") == "employee"
    assert kari.locator("a:has-text('Claims to approve')").count() == 0
    steps.shot(kari, "expense-home")

    # 3. an outlay with a receipt, then submitted
    outlay = kari.locator("fieldset", has_text="outlay").first
    outlay.locator("input[name=amount]").fill("249.90")
    outlay.locator("input[name=spent_on]").fill("2026-03-14")
    outlay.locator("input[name=purpose]").fill("Taxi to Nordlys")
    outlay.locator("input[name=receipt]").set_input_files(
        files=[{"name": "taxi.png", "mimeType": "image/png", "buffer": PNG}])
    steps.shot(kari, "outlay-form")
    with kari.expect_navigation():
        outlay.locator("button[type=submit]").click()
    assert "/claims/" in kari.url and kari.text_content("#amount") == "249.90 NOK"
    assert kari.text_content("#status") == "Draft"
    claim_url = kari.url
    submit(kari, "button:has-text('Submit')")
    assert kari.text_content("#status") == "Submitted"
    steps.shot(kari, "outlay-submitted")
    kari_sub = sub_of(world, KARI)
    [row] = expense_rows(world, "SELECT * FROM claims WHERE owner_sub = ?", kari_sub)
    assert (row["status"], row["amount_minor"], row["receipt_type"], row["receipt"]) == (
        "submitted", 24990, "image/png", PNG)
    nordlys_id = row["agreement_id"]
    receipt = kari.request.get(claim_url + "/receipt")
    assert receipt.status == 200 and receipt.body() == PNG

    # 4. switch company: the chooser without a password; Fjord has no claims, Nordlys has hers
    submit(kari, "a:has-text('Switch company')")
    assert "Choose a company" in kari.content() and kari.locator("#password").count() == 0
    submit(kari, f"#agreement-list li button:has-text('{FJORD}')")
    assert kari.text_content("#agreement") == "Fjord Transport AS"
    assert "Taxi to Nordlys" not in kari.content()
    steps.shot(kari, "expense-switched-to-fjord")
    submit(kari, "a:has-text('Switch company')")
    submit(kari, f"#agreement-list li button:has-text('{NORDLYS}')")
    assert kari.text_content("#agreement") == "Nordlys Regnskap AS" and "Taxi to Nordlys" in kari.content()
    [kari_session] = expense_rows(world, "SELECT sid FROM sessions WHERE sub = ?", kari_sub)

    # 5. Ola (approver) signs in with his password only, then adds an authenticator app
    from tests.factors.test_totp import add_totp

    ola_ctx = browser.new_context(viewport={"width": 1024, "height": 800}, locale="en-GB")
    ola_ctx.set_default_timeout(10_000)
    ola = ola_ctx.new_page()
    ola.goto(expense + "/login")
    password_sign_in(ola, OLA)
    assert ola.url == expense + "/", ola.url
    assert ola.text_content("#roles") == "approver, employee"
    ola_codes = Codes(add_totp(live.app, world["ola_id"]))
    submit(ola, "a:has-text('Claims to approve')")
    assert "Taxi to Nordlys" in ola.content() and "Kari Nordmann" in ola.content()
    steps.shot(ola, "approvals")
    ola.goto(claim_url)
    submit(ola, "button[value=approve]")
    # approving needs two factors: the provider's second step, no password
    assert ola.url.startswith(live.url + "/login/verify"), ola.url
    assert ola.locator("#password").count() == 0
    ola.fill("#code", ola_codes.next())
    steps.shot(ola, "step-up")
    with ola.expect_navigation():
        ola.press("#code", "Enter")
    assert ola.url == expense + "/approvals", ola.url
    assert "The claim is approved." in ola.content() and "Taxi to Nordlys" not in ola.content()
    steps.shot(ola, "approved")
    [row] = expense_rows(world, "SELECT status, decided_by FROM claims WHERE agreement_id = ?", nordlys_id)
    assert (row["status"], row["decided_by"]) == ("approved", sub_of(world, OLA))
    # the step-up made a new provider session (new sid) and ended the password-only one: its
    # logout token names the old sid, so Expense's session (now of the new sid) stays
    ola_sub = sub_of(world, OLA)
    report = run_logout_worker(world)
    assert (report.queued, report.sent) == (1, 1), (report, deliveries_full(world))
    [ola_session] = expense_rows(world, "SELECT sid FROM sessions WHERE sub = ?", ola_sub)
    assert deliveries(world)[-1][:2] == (ola_sub, "sent")
    ola.reload()
    assert ola.text_content("h1") == "Claims to approve"

    # 6. Ola signs out at the provider itself; the worker's logout token ends his Expense session
    ola.goto(live.url + "/signout")
    steps.shot(ola, "provider-sign-out")
    submit(ola, "button:has-text('Sign out')")
    report = run_logout_worker(world)
    assert (report.queued, report.sent) == (1, 1), (report, deliveries_full(world))
    assert expense_rows(world, "SELECT 1 FROM sessions WHERE sid = ?", ola_session["sid"]) == []
    assert ola.goto(expense + "/approvals").status == 403  # no session, so no approver
    ola.goto(expense + "/")
    assert ola.locator("#sign-in").is_visible() and ola.locator("#name").count() == 0
    steps.shot(ola, "expense-signed-out")

    # 7. Kari signs out at the provider while Expense is down
    world["expense_server"].close()
    kari.goto(live.url + "/signout")
    submit(kari, "button:has-text('Sign out')")
    report = run_logout_worker(world)
    assert (report.queued, report.sent, report.retrying) == (1, 0, 1), report
    [*_, (sub, status, attempts, error)] = deliveries(world)
    assert (sub, status, attempts) == (kari_sub, "pending", 1) and error, error
    assert len(expense_rows(world, "SELECT 1 FROM sessions WHERE sid = ?", kari_session["sid"])) == 1
    with serve(world["expense_app"], world["port"]):
        assert run_logout_worker(world).tried == 0  # not due yet
        live.idp.clock.advance(live.idp.settings["LOGOUT_RETRY_SECONDS"] + 1)
        report = run_logout_worker(world)
        assert report.sent == 1, (report, deliveries(world))
        assert deliveries(world)[-1][:3] == (kari_sub, "sent", 2)
        assert expense_rows(world, "SELECT 1 FROM sessions WHERE sub = ?", kari_sub) == []
        kari.goto(expense + "/")
        assert kari.locator("#sign-in").is_visible() and kari.locator("#name").count() == 0
        steps.shot(kari, "expense-signed-out-after-retry")
    kari_ctx.close()
    ola_ctx.close()
    assert time.monotonic() - started < 60
