"""My details in a real browser: reached and used with the keyboard only,
no sideways scrolling at phone width in any language, and screenshots of
every language kept under build/screenshots/ for people to look at."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot

EMAIL = "kari@example.no"
PASSWORD = "correct horse battery"


def sign_in(page, live) -> None:
    page.goto(live.url + "/login")
    page.fill("#email", EMAIL)
    with page.expect_navigation():
        page.press("#email", "Enter")
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.press("#password", "Enter")


def test_change_a_name_with_the_keyboard_only(live, page, make_user):
    make_user(email=EMAIL, password=PASSWORD, given_name="Kari", family_name="Nordmann")
    sign_in(page, live)
    page.goto(live.url + "/account")
    # from the top of the page, Tab until the given-name field has the focus
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "profile-given_name":
            break
    else:
        pytest.fail("the given-name field cannot be reached with Tab")
    page.keyboard.press("Control+A")
    page.keyboard.type("Karianne")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.input_value("#profile-given_name") == "Karianne"
    assert page.locator("[role=status]").count() == 1
    screenshot(page, "account-saved-en")


@pytest.mark.parametrize("lang", ["en", "nb", "nn", "da", "sv"])
def test_my_details_fits_a_phone_in_every_language(live, browser, make_user, lang):
    make_user(email=EMAIL, password=PASSWORD, given_name="Kari", family_name="Nordmann", locale=lang)
    phone = browser.new_context(viewport={"width": 360, "height": 740}, locale=lang)
    try:
        page = phone.new_page()
        sign_in(page, live)
        page.goto(live.url + "/account")
        assert page.get_attribute("html", "lang") == lang
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"My details scrolls sideways at phone width in {lang} ({width}px)"
        screenshot(page, f"account-phone-{lang}")
    finally:
        phone.close()


def test_my_details_on_a_desktop(live, page, make_user):
    make_user(email=EMAIL, password=PASSWORD, given_name="Kari", family_name="Nordmann")
    sign_in(page, live)
    page.goto(live.url + "/account")
    assert page.text_content("h1") == "My details"
    screenshot(page, "account-desktop-en")


def test_two_step_verification_is_one_click_from_my_details(live, page, make_user):
    make_user(email=EMAIL, password=PASSWORD)
    sign_in(page, live)
    page.goto(live.url + "/account")
    with page.expect_navigation():
        page.click("#two-step-title a")
    assert page.url == live.url + "/account/security"
    assert page.text_content("h1") == "Two-step verification"
    screenshot(page, "two-step-overview-en")
