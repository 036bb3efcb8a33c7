"""The admin console in a real browser: the agreement admins' members and
audit pages and the system admins' console, used with the keyboard only,
readable at 360 px in every language (no sideways scrolling), with
screenshots under build/screenshots/ for people to look at."""

from __future__ import annotations

import pyotp
import pytest

from tests.browser.conftest import screenshot

ADMIN = "ola@acme.no"
SYSADMIN = "sys@ops.example.org"
PASSWORD = "correct horse battery"
LANGS = ["en", "nb", "nn", "da", "sv"]


def sign_in(page, live, email: str, totp: str | None = None) -> None:
    page.goto(live.url + "/login")
    page.fill("#email", email)
    with page.expect_navigation():
        page.press("#email", "Enter")
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.press("#password", "Enter")
    if totp is not None:
        assert "/login/verify" in page.url, page.url
        page.fill("#code", pyotp.TOTP(totp).now())
        with page.expect_navigation():
            page.press("#code", "Enter")


def tab_to(page, element_id: str, limit: int = 80) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return
    pytest.fail(f"#{element_id} cannot be reached with Tab")


def fits_a_phone(page, what: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{what} scrolls sideways at phone width ({width}px)"


@pytest.fixture
def agreement(live, make_user):
    from visma_idp.agreements import service
    from visma_idp.storage import db, queries

    make_user(email=ADMIN, password=PASSWORD, name="Ola Nordmann")
    make_user(email="kari@acme.no", password=PASSWORD, name="Kari Nordmann")
    with live.app.test_request_context():
        row = service.create("Acme Regnskap AS", "974760673", domains=["acme.no"])
        service.add_member(row, queries.user_by_email(ADMIN), ["admin"])
        service.add_member(row, queries.user_by_email("kari@acme.no"), ["approver", "employee"])
        db.session.commit()
        return row.public_id


def test_an_agreement_admin_invites_with_the_keyboard_and_sees_it_in_the_audit_log(live, page, agreement):
    sign_in(page, live, ADMIN)
    page.goto(f"{live.url}/agreements/{agreement}/members")
    tab_to(page, "invite-email")
    page.keyboard.type("nils@acme.no")
    tab_to(page, "invite-roles", limit=5)
    page.keyboard.type("employee")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "nils@acme.no" in page.text_content("#invitations")
    assert page.locator("[role=status]").count() == 1
    screenshot(page, "agreement-members-invited-en")
    page.goto(f"{live.url}/agreements/{agreement}/audit")
    assert "nils@acme.no" in page.content() and ADMIN in page.content()  # who was invited, and by whom
    screenshot(page, "agreement-audit-en")


def test_the_agreement_admins_pages_fit_a_phone_in_every_language(live, browser, agreement):
    phone = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = phone.new_page()
        sign_in(page, live, ADMIN)
        for lang in LANGS:  # one sign-in; the language from the switcher's ?lang=
            for name in ("members", "audit"):
                page.goto(f"{live.url}/agreements/{agreement}/{name}?lang={lang}")
                assert page.get_attribute("html", "lang") == lang
                fits_a_phone(page, f"the agreement's {name} page in {lang}")
                screenshot(page, f"agreement-{name}-phone-{lang}")
    finally:
        phone.close()


@pytest.fixture
def sysadmin(live, make_user, agreement):
    from tests.factors.test_totp import add_totp
    from visma_idp.admin import rights
    from visma_idp.storage import db, queries

    user_id = make_user(email=SYSADMIN, password=PASSWORD, name="Siri Drift")
    secret = add_totp(live.app, user_id)
    with live.app.test_request_context():
        rights.grant(queries.user_by_email(SYSADMIN), rights.SYSTEM_ADMIN, [])
        db.session.commit()
    return secret


def test_a_system_admin_creates_an_agreement_with_the_keyboard(live, page, sysadmin):
    sign_in(page, live, SYSADMIN, sysadmin)
    page.goto(live.url + "/admin/agreements")
    tab_to(page, "create-name")
    page.keyboard.type("Fjord Transport AS")
    tab_to(page, "create-org_number", limit=5)
    page.keyboard.type("923609016")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Fjord Transport AS" in page.content(), page.content()[:2000]
    screenshot(page, "admin-agreement-created-en")


def test_the_system_console_fits_a_phone_in_every_language(live, browser, sysadmin):
    phone = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = phone.new_page()
        sign_in(page, live, SYSADMIN, sysadmin)
        for lang in LANGS:  # one sign-in; the language from the switcher's ?lang=
            for path in ("/admin", "/admin/agreements", "/admin/clients", "/admin/upstreams", "/admin/keys",
                         "/admin/logout"):
                resp = page.goto(f"{live.url}{path}?lang={lang}")
                assert resp.status == 200, (path, page.content()[:1000])
                assert page.get_attribute("html", "lang") == lang
                fits_a_phone(page, f"{path} in {lang}")
                screenshot(page, f"admin{path.replace('/admin', '').replace('/', '-') or '-home'}-phone-{lang}")
    finally:
        phone.close()
