"""The sign-in pages in a real browser: keyboard only, and at phone width."""

from __future__ import annotations

from tests.browser.conftest import screenshot


def _focused(page, element_id: str) -> None:
    """Wait until the element has the keyboard focus (autofocus), so typing reaches it."""
    page.wait_for_function(f"document.activeElement && document.activeElement.id === {element_id!r}")


def test_sign_in_with_the_keyboard_only(live, page, make_user):
    make_user(email="kari@example.no", password="correct horse battery")
    page.goto(live.url + "/login")
    _focused(page, "email")
    page.keyboard.type("kari@example.no")
    page.keyboard.press("Enter")
    page.wait_for_url("**/login/password")
    _focused(page, "password")
    page.keyboard.type("correct horse battery")  # the password field has focus
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == live.url + "/", page.content()
    assert "Hello, Kari Nordmann" in page.text_content("h1")


def test_login_page_fits_a_phone(live, context, browser):
    phone = browser.new_context(viewport={"width": 360, "height": 740}, locale="nb-NO")
    try:
        page = phone.new_page()
        page.goto(live.url + "/login")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"the page scrolls sideways at phone width ({width}px)"
        screenshot(page, "login-phone-nb")
    finally:
        phone.close()
