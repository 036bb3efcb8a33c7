"""Security keys and passkeys in a real browser, with Chromium's virtual
authenticator (Chrome DevTools Protocol, WebAuthn domain): register a
security key and use it as the second step, register a passkey and sign in
without a password (through autofill, or with the button while autofill
waits), and a bad signature refused.

Chromium's virtual environment answers a conditional (autofill) request at
once when the authenticator holds a discoverable credential for the site
and simulates the user's presence; with presence simulation off the
request waits (turning it on later does not answer that request, but does
answer the next one); with no credential it is refused at once
(NotAllowedError), like a modal request.

WebAuthn does not accept an IP address as the relying party, so these tests
run the provider with its issuer on ``http://localhost:PORT`` (Chromium
counts localhost as a secure context) and browse there.
"""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import screenshot

EMAIL = "kari@example.no"
PASSWORD = "correct horse battery"


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


# Every navigator.credentials.get() of the page: its mediation and how it
# ended; and every message the passkey box showed. Kept in sessionStorage,
# so they outlive the sign-in's navigation.
WATCH = """(() => {
  if (!window.navigator.credentials || !window.sessionStorage || location.origin === "null") {
    return;
  }
  const read = (key) => JSON.parse(sessionStorage.getItem(key) || "[]");
  const add = (key, item) => sessionStorage.setItem(key, JSON.stringify(read(key).concat([item])));
  const get = navigator.credentials.get.bind(navigator.credentials);
  navigator.credentials.get = (options) => {
    const at = read("gets").length;
    add("gets", {mediation: (options && options.mediation) || "optional", outcome: "pending"});
    const end = (outcome) => {
      const gets = read("gets");
      gets[at].outcome = outcome;
      sessionStorage.setItem("gets", JSON.stringify(gets));
    };
    return get(options).then((cred) => { end("answered"); return cred; }, (err) => { end(err.name); throw err; });
  };
  document.addEventListener("DOMContentLoaded", () => {
    for (const el of document.querySelectorAll("[data-webauthn] [data-webauthn-error]")) {
      const seen = () => { if (!el.hidden && el.textContent) { add("errors", el.textContent); } };
      new MutationObserver(seen).observe(el, {attributes: true, childList: true, characterData: true, subtree: true});
    }
  });
})();"""
NO_AUTOFILL = {
    "no method": "if (window.PublicKeyCredential) { PublicKeyCredential.isConditionalMediationAvailable = undefined; }",
    "not available": "if (window.PublicKeyCredential) { PublicKeyCredential.isConditionalMediationAvailable = "
                     "() => Promise.resolve(false); }",
}
PASSKEY_BUTTON = "[data-webauthn=passkey] [data-webauthn-start]"
CANCELLED = "The security key or passkey did not answer, or the request was cancelled. Try again."


def watched(page, key: str) -> list:
    return page.evaluate("(key) => JSON.parse(sessionStorage.getItem(key) || '[]')", key)


def gets(page) -> list[tuple[str, str]]:
    return [(call["mediation"], call["outcome"]) for call in watched(page, "gets")]


def options_fetched(response) -> bool:
    return response.url.endswith("/login/passkey/options") and response.request.method == "POST"


def with_a_passkey(live, context, page, *, shot: str | None = None) -> tuple[object, str]:
    """Kari with a registered passkey on a virtual authenticator, signed out again: (CDP session, authenticator id)."""
    made = authenticator(context, page, transport="internal")
    sign_in_with_password(page, live)
    register(page, live, kind="passkey", name="This laptop", shot=shot)
    [key] = stored_keys(live)
    assert key.discoverable
    context.clear_cookies()
    page.add_init_script(WATCH)
    return made


def wait_until(page, check, timeout: float = 10.0) -> None:
    """Let the page run until ``check()`` (about Playwright's events) holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(20)


def presence(cdp, authenticator_id: str, on: bool) -> None:
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", {"authenticatorId": authenticator_id, "enabled": on})


def signed_in_with_the_passkey(page, live) -> None:
    assert page.url == live.url + "/", page.content()
    assert "Kari" in page.text_content("h1")
    event = last_event(live, "login_succeeded")
    assert event.details["method"] == "passkey"
    assert event.details["amr"] == ["swk", "user", "mfa"]


def test_register_a_passkey_and_sign_in_through_autofill(live_localhost, context, page, make_user):
    live = live_localhost
    make_user(email=EMAIL, password=PASSWORD)
    with_a_passkey(live, context, page, shot="webauthn-passkey")
    # the email page only: the browser's autofill offers the passkey (the
    # virtual authenticator picks it at once) and its answer signs in
    page.goto(live.url + "/login", wait_until="commit")
    page.wait_for_url(live.url + "/")
    signed_in_with_the_passkey(page, live)
    assert gets(page) == [("conditional", "answered")]  # the button was not used
    assert watched(page, "errors") == []


def test_the_passkey_button_while_autofill_waits(live_localhost, context, page, make_user):
    live = live_localhost
    make_user(email=EMAIL, password=PASSWORD)
    cdp, authenticator_id = with_a_passkey(live, context, page)
    presence(cdp, authenticator_id, False)  # nobody picks the passkey from autofill
    with page.expect_response(options_fetched):
        page.goto(live.url + "/login")
    page.wait_for_function("() => JSON.parse(sessionStorage.getItem('gets') || '[]').length === 1")
    assert gets(page) == [("conditional", "pending")]
    button = page.locator(PASSKEY_BUTTON)
    assert button.is_visible()
    screenshot(page, "webauthn-passkey-email-page")
    presence(cdp, authenticator_id, True)  # for the next request: the one of the button
    with page.expect_navigation():
        button.click()
    signed_in_with_the_passkey(page, live)
    # the autofill request was aborted, silently, and the button's own request
    # used the same options (there was one fetch only)
    assert gets(page) == [("conditional", "AbortError"), ("optional", "answered")]
    assert watched(page, "errors") == []


def test_after_a_failure_the_passkey_gets_a_fresh_challenge(live_localhost, context, page, make_user):
    live = live_localhost
    make_user(email=EMAIL, password=PASSWORD)
    cdp, authenticator_id = with_a_passkey(live, context, page)
    [credential] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    cdp.send("WebAuthn.clearCredentials", {"authenticatorId": authenticator_id})  # the passkey is not at hand
    challenges = []
    page.on("response", lambda resp: challenges.append(resp.json()["challenge"]) if options_fetched(resp) else None)

    page.goto(live.url + "/login")
    # autofill finds nothing and is refused at once: no message; new options for the button
    wait_until(page, lambda: len(challenges) == 2)
    assert gets(page) == [("conditional", "NotAllowedError")]
    button = page.locator(PASSKEY_BUTTON)
    error = page.locator("[data-webauthn=passkey] [data-webauthn-error]")
    assert error.is_hidden()

    button.click()  # the button's request is refused too: a message
    error.wait_for(state="visible")
    assert error.text_content() == CANCELLED
    assert button.is_enabled() and button.get_attribute("aria-busy") is None
    # new options again, and autofill waits with them (refused at once again: new options)
    wait_until(page, lambda: len(challenges) == 4)
    assert gets(page) == [("conditional", "NotAllowedError"), ("optional", "NotAllowedError"),
                          ("conditional", "NotAllowedError")]
    assert error.text_content() == CANCELLED  # autofill's refusal changed nothing

    cdp.send("WebAuthn.addCredential", {"authenticatorId": authenticator_id, "credential": credential})
    with page.expect_navigation():
        button.click()
    signed_in_with_the_passkey(page, live)
    assert gets(page)[-1] == ("optional", "answered")
    assert len(set(challenges)) == 4  # a new challenge each time
    assert watched(page, "errors") == [CANCELLED]


@pytest.mark.parametrize("missing", NO_AUTOFILL)
def test_without_autofill_the_passkey_button_works_as_before(live_localhost, context, page, make_user, missing):
    live = live_localhost
    make_user(email=EMAIL, password=PASSWORD)
    with_a_passkey(live, context, page)
    page.add_init_script(NO_AUTOFILL[missing])
    with page.expect_response(options_fetched):
        page.goto(live.url + "/login")
    button = page.locator(PASSKEY_BUTTON)
    button.wait_for(state="visible")
    with page.expect_navigation():
        button.click()
    signed_in_with_the_passkey(page, live)
    assert gets(page) == [("optional", "answered")]  # no autofill request, ever
    assert watched(page, "errors") == []


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
