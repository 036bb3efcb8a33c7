"""Security keys and passkeys in a real browser, with Chromium's virtual
authenticator (Chrome DevTools Protocol, WebAuthn domain): register a
security key and use it as the second step, register a passkey and sign in
without a password, and a bad signature refused.

WebAuthn does not accept an IP address as the relying party, so these tests
run the provider with its issuer on ``http://localhost:PORT`` (Chromium
counts localhost as a secure context) and browse there.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot, serving

EMAIL = "kari@example.no"
PASSWORD = "correct horse battery"


@pytest.fixture
def live_localhost(app, make_app):
    """Like ``live``, with the issuer (and so the WebAuthn RP ID) on localhost."""
    with serving(make_app, "localhost") as served:
        yield served


def authenticator(context, page, *, transport: str = "usb") -> tuple[object, str]:
    """A virtual CTAP2 authenticator for this page: (CDP session, authenticator id)."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    made = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": transport, "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True,
    }})
    return cdp, made["authenticatorId"]


def sign_in_with_password(page, live) -> None:
    page.goto(live.url + "/login")
    page.fill("#email", EMAIL)
    with page.expect_navigation():
        page.press("#email", "Enter")
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.press("#password", "Enter")


def register(page, live, *, kind: str, name: str, shot: str | None = None) -> None:
    page.goto(live.url + "/account/security")
    with page.expect_navigation():
        page.click("text=Add a security key or passkey")
    page.check("#kind-passkey" if kind == "passkey" else "#kind-key")
    page.fill("#webauthn-name", name)
    if shot:
        screenshot(page, f"{shot}-choose")
    with page.expect_navigation():
        page.click("text=Continue")
    assert page.is_visible("[data-webauthn-start]")
    if shot:
        screenshot(page, f"{shot}-register")
    with page.expect_navigation():
        page.click("[data-webauthn-start]")
    # the first factor brings the recovery codes; then (or else) the overview
    if page.is_visible("text=I have saved them, continue"):
        if shot:
            screenshot(page, f"{shot}-recovery-codes")
        with page.expect_navigation():
            page.click("text=I have saved them, continue")
    page.goto(live.url + "/account/security")
    assert name in page.text_content("#webauthn")
    if shot:
        screenshot(page, f"{shot}-overview")


def stored_keys(live) -> list:
    from sqlalchemy import select

    from visma_idp.storage import Factor, db

    with live.app.app_context():
        rows = list(db.session.scalars(select(Factor).where(Factor.kind == "webauthn").order_by(Factor.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def last_event(live, event: str):
    from sqlalchemy import select

    from visma_idp.storage import AuditEvent, db

    with live.app.app_context():
        return db.session.scalar(select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id.desc()))


def test_register_a_security_key_and_use_it_as_the_second_step(live_localhost, context, page, make_user):
    live = live_localhost
    make_user(email=EMAIL, password=PASSWORD)
    authenticator(context, page)
    sign_in_with_password(page, live)
    register(page, live, kind="key", name="Blue key", shot="webauthn-security-key")
    [key] = stored_keys(live)
    assert key.name == "Blue key" and not key.discoverable and key.transports == ["usb"]

    context.clear_cookies()  # a new visit, same authenticator
    sign_in_with_password(page, live)
    assert "/login/verify" in page.url
    assert page.is_visible("text=Use security key or passkey")
    screenshot(page, "webauthn-second-step")
    with page.expect_navigation():
        page.click("[data-webauthn-start]")
    assert page.url == live.url + "/", page.content()
    passed = last_event(live, "second_step_passed")
    assert passed.details["method"] == "webauthn" and passed.details["amr"][0] == "hwk"
    assert stored_keys(live)[0].sign_count > key.sign_count


def test_register_a_passkey_and_sign_in_without_a_password(live_localhost, context, page, make_user):
    live = live_localhost
    make_user(email=EMAIL, password=PASSWORD)
    authenticator(context, page, transport="internal")
    sign_in_with_password(page, live)
    register(page, live, kind="passkey", name="This laptop", shot="webauthn-passkey")
    [key] = stored_keys(live)
    assert key.discoverable

    context.clear_cookies()
    page.goto(live.url + "/login")
    button = page.locator("[data-webauthn=passkey] [data-webauthn-start]")
    button.wait_for(state="visible")
    screenshot(page, "webauthn-passkey-email-page")
    with page.expect_navigation():
        button.click()
    assert page.url == live.url + "/", page.content()
    assert "Kari" in page.text_content("h1")
    event = last_event(live, "login_succeeded")
    assert event.details["method"] == "passkey"
    assert event.details["amr"] == ["swk", "user", "mfa"]


def test_a_bad_signature_is_refused(live_localhost, context, page, make_user):
    live = live_localhost
    make_user(email=EMAIL, password=PASSWORD)
    cdp, authenticator_id = authenticator(context, page)
    sign_in_with_password(page, live)
    register(page, live, kind="key", name="Blue key")

    context.clear_cookies()
    sign_in_with_password(page, live)
    cdp.send("WebAuthn.setResponseOverrideBits", {"authenticatorId": authenticator_id, "isBogusSignature": True})
    with page.expect_navigation():
        page.click("[data-webauthn-start]")
    assert "/login/verify" in page.url
    error = page.locator("#verify-error")
    assert "could not be verified" in error.text_content()
    assert error.get_attribute("role") == "alert"
    screenshot(page, "webauthn-bad-signature")
    assert last_event(live, "webauthn_refused").details == {"reason": "invalid_signature"}

    # the genuine key still works afterwards
    cdp.send("WebAuthn.setResponseOverrideBits", {"authenticatorId": authenticator_id, "isBogusSignature": False})
    with page.expect_navigation():
        page.click("[data-webauthn-start]")
    assert page.url == live.url + "/"


def test_registering_the_same_key_twice_shows_a_clear_message(live_localhost, context, page, make_user):
    live = live_localhost
    make_user(email=EMAIL, password=PASSWORD)
    authenticator(context, page)
    sign_in_with_password(page, live)
    register(page, live, kind="key", name="Blue key")
    # again with the same authenticator: the browser refuses (excludeCredentials)
    page.goto(live.url + "/account/security/webauthn")
    page.fill("#webauthn-name", "Blue key again")
    with page.expect_navigation():
        page.click("text=Continue")
    page.click("[data-webauthn-start]")
    error = page.locator("[data-webauthn-error]")
    error.wait_for(state="visible")
    assert error.text_content() == "This security key or passkey is already registered to your account."
    assert error.get_attribute("role") == "alert"
    assert page.locator("[data-webauthn-start]").is_enabled()  # one can try another key
    screenshot(page, "webauthn-already-registered")
    assert len(stored_keys(live)) == 1
