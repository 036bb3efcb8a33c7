"""Whole sign-ins in a real browser, from a relying app that really listens
on loopback, through the provider's pages, and back into the app with a
code the app redeems.

Chromium applies the page's Content-Security-Policy ``form-action`` to the
redirects that follow a form post, so every page whose form ends in a
redirect to the app (the password page, consent, the second step, the
passkey sign-in, enrolment during a sign-in, the logout confirmation) must
allow the app's redirect origin there. These tests are the proof: each one
starts at the app and must end on the app's "Signed in" page. Each also
checks that the browser reported no CSP violation on the way.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from urllib.parse import urlencode

import pyotp

from tests.browser.conftest import screenshot
from tests.browser.relying_party import RelyingParty
from tests.browser.test_webauthn import NO_AUTOFILL, authenticator, register, stored_keys

EMAIL = "kari@example.no"
PASSWORD = "correct horse battery"


class Violations:
    """CSP violations the browser reports on any page of the context."""

    def __init__(self, page) -> None:
        self.messages: list[str] = []
        page.on("console", lambda msg: self._seen(msg.text))

    def _seen(self, text: str) -> None:
        if "Content Security Policy" in text:
            self.messages.append(text)


def relying_party(live, make_client, *, client_id: str = "expense", **kwargs) -> RelyingParty:
    rp = RelyingParty(issuer=live.url, client_id=client_id, client_secret=None)
    rp.client_secret = make_client(client_id, redirect_uris=[rp.redirect_uri],
                                   post_logout_redirect_uris=[rp.logged_out_uri], scope="openid email profile", **kwargs)
    return rp


@contextmanager
def from_the_app(live, page, make_client, query: str = "", **client):
    """A relying app listening on loopback, and the browser sent to it to start a
    sign-in: (the app, the CSP violations the browser reports)."""
    rp = relying_party(live, make_client, **client)
    violations = Violations(page)
    with rp.serving():
        page.goto(rp.url + "/start" + query)
        yield rp, violations


def enter_email_and_password(page, password: str = PASSWORD) -> None:
    assert "/login" in page.url, page.url
    page.fill("#email", EMAIL)
    with page.expect_navigation():
        page.press("#email", "Enter")
    page.fill("#password", password)
    with page.expect_navigation():
        page.press("#password", "Enter")


def assert_signed_in(page, rp: RelyingParty, violations: Violations, *, method: str = "GET") -> dict:
    assert page.url.startswith(rp.redirect_uri), (page.url, violations.messages, page.content()[:2000])
    assert page.text_content("#result").startswith("Signed in as "), page.content()
    assert violations.messages == []
    [result] = rp.signed_in
    assert result["method"] == method
    assert "access_token" in result["tokens"]
    return result["claims"]


def test_a_password_sign_in_lands_in_the_app(live, page, make_user, make_client):
    make_user(email=EMAIL, password=PASSWORD)
    with from_the_app(live, page, make_client, skip_consent=True) as (rp, violations):
        enter_email_and_password(page)
        claims = assert_signed_in(page, rp, violations)
    assert claims["amr"] == ["pwd"]


def test_consent_then_allow_lands_in_the_app(live, page, make_user, make_client):
    make_user(email=EMAIL, password=PASSWORD)
    with from_the_app(live, page, make_client, name="Expense") as (rp, violations):
        enter_email_and_password(page)
        assert "/authorize/continue" in page.url and page.is_visible("button[value=allow]")
        screenshot(page, "journey-consent")
        with page.expect_navigation():
            page.click("button[value=allow]")
        assert_signed_in(page, rp, violations)


def test_consent_denied_goes_back_to_the_app_with_the_error(live, page, make_user, make_client):
    make_user(email=EMAIL, password=PASSWORD)
    with from_the_app(live, page, make_client) as (rp, violations):
        enter_email_and_password(page)
        with page.expect_navigation():
            page.click("button[value=deny]")
        assert page.url.startswith(rp.redirect_uri), (page.url, violations.messages)
        assert violations.messages == []
    assert rp.results[-1]["error"] == "access_denied"


def test_form_post_response_mode_lands_in_the_app(live, page, make_user, make_client):
    make_user(email=EMAIL, password=PASSWORD)
    with from_the_app(live, page, make_client, "?response_mode=form_post", skip_consent=True) as (rp, violations):
        with page.expect_navigation(url=re.compile(re.escape(rp.redirect_uri))):
            enter_email_and_password(page)
        assert_signed_in(page, rp, violations, method="POST")


def test_an_authenticator_app_as_second_step_lands_in_the_app(live, page, make_user, make_client):
    from tests.factors.test_totp import add_totp

    user_id = make_user(email=EMAIL, password=PASSWORD)
    secret = add_totp(live.app, user_id)
    with from_the_app(live, page, make_client, skip_consent=True) as (rp, violations):
        enter_email_and_password(page)
        assert "/login/verify" in page.url
        page.fill("#code", pyotp.TOTP(secret).now())
        with page.expect_navigation():
            page.press("#code", "Enter")
        claims = assert_signed_in(page, rp, violations)
    assert "otp" in claims["amr"] and "mfa" in claims["amr"]


def test_enrolling_a_required_factor_during_the_sign_in_lands_in_the_app(live, page, make_user, make_client):
    make_user(email=EMAIL, password=PASSWORD, mfa_required=True)
    with from_the_app(live, page, make_client, skip_consent=True) as (rp, violations):
        enter_email_and_password(page)
        assert "/account/security" in page.url
        with page.expect_navigation():
            page.click("#totp a.button")
        key = page.text_content("#totp-key").replace(" ", "")
        page.fill("#totp-code", pyotp.TOTP(key).now())
        with page.expect_navigation():
            page.click("button:has-text('Turn on')")
        with page.expect_navigation():
            page.click("button:has-text('I have saved them, continue')")
        assert_signed_in(page, rp, violations)


def test_a_security_key_as_second_step_lands_in_the_app(live_localhost, context, page, make_user, make_client):
    live = live_localhost
    make_user(email=EMAIL, password=PASSWORD)
    authenticator(context, page)
    page.goto(live.url + "/login")
    enter_email_and_password(page)
    register(page, live, kind="key", name="Blue key")
    context.clear_cookies()
    with from_the_app(live, page, make_client, skip_consent=True) as (rp, violations):
        enter_email_and_password(page)
        assert "/login/verify" in page.url
        with page.expect_navigation(url=re.compile(re.escape(rp.redirect_uri))):
            page.click("[data-webauthn-start]")
        claims = assert_signed_in(page, rp, violations)
    assert "hwk" in claims["amr"]


def passkey_registered(live, context, page, make_user) -> None:
    make_user(email=EMAIL, password=PASSWORD)
    authenticator(context, page, transport="internal")
    page.goto(live.url + "/login")
    enter_email_and_password(page)
    register(page, live, kind="passkey", name="This laptop")
    assert stored_keys(live)[0].discoverable
    context.clear_cookies()


def test_a_passkey_from_autofill_lands_in_the_app(live_localhost, context, page, make_user, make_client):
    """The authenticator answers the email page's conditional request at once."""
    live = live_localhost
    passkey_registered(live, context, page, make_user)
    rp = relying_party(live, make_client, skip_consent=True)
    violations = Violations(page)
    with rp.serving():
        with page.expect_navigation(url=re.compile(re.escape(rp.redirect_uri))):
            page.goto(rp.url + "/start")
        claims = assert_signed_in(page, rp, violations)
    assert "hwk" in claims["amr"] or "swk" in claims["amr"]


def test_a_passkey_from_the_button_lands_in_the_app(live_localhost, context, page, make_user, make_client):
    """A browser without autofill: the "Sign in with a passkey" button."""
    live = live_localhost
    passkey_registered(live, context, page, make_user)
    page.add_init_script(NO_AUTOFILL["not available"])
    with from_the_app(live, page, make_client, skip_consent=True) as (rp, violations):
        assert "/login" in page.url
        with page.expect_navigation(url=re.compile(re.escape(rp.redirect_uri))):
            page.click("[data-webauthn=passkey] [data-webauthn-start]")
        claims = assert_signed_in(page, rp, violations)
    assert "hwk" in claims["amr"] or "swk" in claims["amr"]


def test_a_logout_confirmed_on_the_page_returns_to_the_app(live, page, make_user, make_client):
    """RP-initiated logout whose ``id_token_hint`` names someone other than the
    signed-in user: the provider asks first, and the confirmation's post
    redirects to the app's registered post-logout URI."""
    make_user(email=EMAIL, password=PASSWORD)
    make_user(email="ola@example.no", password=PASSWORD, name="Ola Nordmann")
    with from_the_app(live, page, make_client, skip_consent=True) as (rp, violations):
        enter_email_and_password(page)
        assert_signed_in(page, rp, violations)
        id_token = rp.signed_in[0]["tokens"]["id_token"]
        page.context.clear_cookies()
        page.goto(live.url + "/login")  # now Ola signs in at the provider
        page.fill("#email", "ola@example.no")
        with page.expect_navigation():
            page.press("#email", "Enter")
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.press("#password", "Enter")
        page.goto(live.url + "/logout?" + urlencode({
            "id_token_hint": id_token, "post_logout_redirect_uri": rp.logged_out_uri, "state": "s1"}))
        assert page.is_visible("button:has-text('Sign out')")
        with page.expect_navigation():
            page.click("button:has-text('Sign out')")
        assert page.url.startswith(rp.logged_out_uri), (page.url, violations.messages)
        assert violations.messages == []
    assert rp.logouts == [{"state": "s1"}]
