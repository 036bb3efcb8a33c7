"""The host app in a real browser (chromium through Playwright, as in
tests/browser): our login page has its style sheet (CSP ``'self'``, no
violation), and a sign-in lands on our home page, which is the host's
override, at the root and under ``/idp``.

tests/browser's ``browser`` fixture is not visible here, and a second
Playwright sync API in the thread that runs its session refuses to start, so
this one drives chromium from a thread of its own."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, screenshot
from tests.helpers import services
from tests.mailbox import free_port
from visma_idp import api


def in_chromium(test) -> None:
    """Run ``test(page)`` with a fresh chromium page, in a thread of its own; re-raise what it raised."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        services.missing("Playwright", exc)
    if not Path(CHROMIUM).exists():
        services.missing("chromium", FileNotFoundError(CHROMIUM))
    failure: list[BaseException] = []

    def run():
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    context = browser.new_context(viewport={"width": 1024, "height": 800}, locale="en-GB")
                    test(context.new_page())
                finally:
                    browser.close()
        except BaseException as exc:  # re-raised in the test's thread
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the browser test did not finish"
    if failure:
        raise failure[0]


@pytest.fixture(params=["", "/idp"], ids=["at-root", "under-prefix"])
def served(request, make_host):
    from werkzeug.serving import make_server

    port = free_port()
    prefix = request.param
    app = make_host(prefix=prefix, ISSUER=f"http://127.0.0.1:{port}")
    server = make_server("127.0.0.1", port, app, threaded=True)
    server.daemon_threads = False  # server_close() then waits for requests still running (chromium's
    # /favicon.ico, the end of a response), so none holds a connection when the test's pools close
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{port}", prefix
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_login_page_styled_and_a_sign_in(served):
    app, origin, prefix = served
    api.create_user(app, email="kari@example.no", name="Kari Nordmann", password="correct horse battery")
    in_chromium(lambda page: sign_in(page, origin, prefix))


def sign_in(page, origin: str, prefix: str) -> None:
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
