"""The host app in a real browser (chromium through Playwright, as in
tests/browser): our login page has its style sheet (CSP ``'self'``, no
violation), and a sign-in lands on our home page, which is the host's
override, at the root and under ``/idp``."""

from __future__ import annotations

import threading

import pytest

from tests.browser.conftest import browser, context, page, screenshot  # noqa: F401 - fixtures
from tests.mailbox import free_port
from visma_idp import api


@pytest.fixture(params=["", "/idp"], ids=["at-root", "under-prefix"])
def served(request, make_host):
    from werkzeug.serving import make_server

    port = free_port()
    prefix = request.param
    app = make_host(prefix=prefix, ISSUER=f"http://127.0.0.1:{port}")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{port}", prefix
    finally:
        server.shutdown()
        thread.join(5)


def test_login_page_styled_and_a_sign_in(served, page):  # noqa: F811 - the fixture
    app, origin, prefix = served
    api.create_user(app, email="kari@example.no", name="Kari Nordmann", password="correct horse battery")
    problems: list[str] = []
    # CSP violations ("Refused to ...") are console errors; a failed load is a response of its own
    # (chromium's own /favicon.ico request gives a console error and no response event)
    page.on("console", lambda msg: problems.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.on("response", lambda resp: problems.append(f"{resp.status} {resp.url}") if resp.status >= 400 else None)

    page.goto(origin + prefix + "/login")
    card = page.locator("main.card")
    assert card.evaluate("e => getComputedStyle(e).borderRadius") == "12px"  # style.css applied
    assert card.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 255, 255)"
    screenshot(page, "embedded-login" + prefix.replace("/", "-"))

    page.fill("#email", "kari@example.no")
    with page.expect_navigation():
        page.click("button[type=submit].primary")
    assert page.url == origin + prefix + "/login/password"
    page.fill("#password", "correct horse battery")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    if prefix:  # our home page: the host's override of home.html
        assert page.url == origin + prefix + "/"
        assert page.text_content("h1") == "Host's own provider home"
    else:  # at the root, `/` is the host's own page (registered before the provider)
        assert page.url == origin + "/"
        assert page.text_content("h1") == "Host front page"
    assert problems == []
