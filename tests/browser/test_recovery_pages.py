"""Forgot password and reset in a real browser: pow.js solves the challenge
(Web Crypto) and the form goes through; without JavaScript the page says so
and the form cannot pass; the pages fit a phone."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot
from tests.mailbox import Mailbox
from tests.password.recovery import path, reset_links

NEW = "a new password that is long enough"


@pytest.fixture
def settings(settings):
    settings["POW_DIFFICULTY"] = 12  # a real search (about 4,000 hashes), still quick
    return settings


def test_forgot_then_reset_with_the_keyboard(live, page, make_user, smtp_capture):
    make_user(email="kari@example.no")
    smtp_capture.start()
    smtp_capture.clear()
    page.goto(live.url + "/password/forgot")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'email'")
    page.keyboard.type("kari@example.no")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # at once: the form waits for the check, then goes on by itself
    assert "Check your email" in page.text_content("h1"), page.content()
    screenshot(page, "forgot-sent")

    reset, _login = reset_links(Mailbox(smtp_capture, live.app).last("kari@example.no"))
    page.goto(live.url + path(reset))
    page.wait_for_function("document.activeElement && document.activeElement.id === 'password'")
    page.keyboard.type(NEW)
    page.keyboard.press("Tab")
    page.keyboard.type(NEW)
    screenshot(page, "reset-form")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Your password was reset" in page.text_content("h1"), page.content()


def test_the_check_shows_progress_and_fills_the_field(live, page):
    page.goto(live.url + "/password/forgot")
    page.wait_for_function("document.querySelector('input[name=pow]').value !== ''", timeout=20000)
    assert page.is_visible("progress")
    assert "Check finished" in page.text_content("[data-pow-status]")
    screenshot(page, "forgot-form")


def test_without_javascript_the_page_says_so(live, browser):
    ctx = browser.new_context(java_script_enabled=False)
    try:
        page = ctx.new_page()
        page.goto(live.url + "/password/forgot")
        assert "This form needs JavaScript" in page.text_content("main")
        page.fill("#email", "kari@example.no")
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert "We could not confirm that you are a person." in page.text_content("main")
    finally:
        ctx.close()


def test_recovery_pages_fit_a_phone(live, browser):
    phone = browser.new_context(viewport={"width": 360, "height": 740}, locale="nb-NO")
    try:
        page = phone.new_page()
        for url, name in (("/password/forgot", "forgot-phone"), ("/activate/" + "q" * 43, "link-invalid-phone")):
            page.goto(live.url + url)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{url} scrolls sideways at phone width ({width}px)"
            screenshot(page, name)
    finally:
        phone.close()
