"""The agreement chooser in a real browser: from a relying app on loopback,
sign in, search among 40 companies as you type, choose one and land back in
the app with it in the ID token; then switch company without the password."""

from __future__ import annotations

from tests.browser.conftest import screenshot
from tests.browser.test_signin_journeys import EMAIL, PASSWORD, Violations, enter_email_and_password, relying_party


def _companies(live, count: int = 40) -> dict[str, str]:
    from visma_idp.agreements import service
    from visma_idp.agreements.orgnr import check_digit
    from visma_idp.storage import User, db

    ids = {}
    with live.app.test_request_context():
        kari = db.session.scalar(db.select(User).where(User.email == EMAIL))
        base = 91100000
        for i in range(count):
            while check_digit(str(base)) is None:
                base += 1
            name = "Fjord Transport AS" if i == 17 else f"Klient {i:02d} AS"
            row = service.create(name, f"{base}{check_digit(str(base))}")
            service.add_member(row, kari, ["employee"])
            ids[name] = row.public_id
            base += 1
        db.session.commit()
    return ids


def test_choose_a_company_by_searching_then_switch_without_the_password(live, browser, make_user, make_client):
    make_user(email=EMAIL, password=PASSWORD)
    ids = _companies(live)
    rp = relying_party(live, make_client, skip_consent=True)
    from visma_idp.storage import Client, db

    with live.app.app_context():
        db.session.scalar(db.select(Client).where(Client.client_id == "expense")).scope += " agreements"
        db.session.commit()
    with rp.serving():
        context = browser.new_context(locale="en-GB")
        page = context.new_page()
        violations = Violations(page)
        page.goto(rp.url + "/start?scope=openid+agreements")
        enter_email_and_password(page)
        assert "Choose a company" in page.content()
        assert page.locator("#agreement-list li:not([hidden])").count() == 40
        page.fill("#agreement-q", "fjord")  # filtered as she types, no round trip
        assert page.locator("#agreement-list li:not([hidden])").count() == 1
        screenshot(page, "agreement-chooser-search")
        with page.expect_navigation():
            page.click("#agreement-list li:not([hidden]) button")
        assert page.url.startswith(rp.redirect_uri) and violations.messages == [], (page.url, violations.messages)
        first = rp.signed_in[-1]["claims"]
        assert first["agreement"]["name"] == "Fjord Transport AS"

        # switch: the app asks again with prompt=select_account; no password, same sign-in
        page.goto(rp.url + "/start?scope=openid+agreements&prompt=select_account")
        assert "Choose a company" in page.content() and page.locator("#password").count() == 0
        first_item = page.locator("#agreement-list li button").first.text_content()
        assert "Fjord Transport AS" in first_item  # the last used first
        with page.expect_navigation():
            page.click(f"button[value='{ids['Klient 03 AS']}']")
        second = rp.signed_in[-1]["claims"]
        assert second["agreement"]["name"] == "Klient 03 AS"
        assert (second["auth_time"], second["sid"]) == (first["auth_time"], first["sid"])
        context.close()
