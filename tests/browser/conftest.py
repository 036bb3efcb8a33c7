"""A real browser (Debian's chromium driven by Playwright) against the
provider served on a loopback port.

``live`` is the provider running in a thread (werkzeug) with its issuer on
that port; ``page`` is a fresh browser page. Without chromium or Playwright
the tests skip, except under CI=true where they fail (``./dev test``
installs both).
"""

from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import services
from tests.mailbox import free_port

CHROMIUM = os.environ.get("VISMA_IDP_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("VISMA_IDP_SCREENSHOTS", Path(__file__).resolve().parents[2] / "build" / "screenshots"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@dataclass
class Live:
    app: object
    url: str

    @property
    def idp(self):
        return self.app.extensions["visma_idp"]  # type: ignore[attr-defined]


@contextmanager
def serving(make_app, host: str):
    """The provider on a free loopback port with its issuer on ``host``
    (``127.0.0.1``, or ``localhost`` where WebAuthn needs a host name), in a thread."""
    from werkzeug.serving import make_server

    port = free_port()
    app = make_app(ISSUER=f"http://{host}:{port}")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(app, f"http://{host}:{port}")
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def live(app, make_app):
    """The provider on its own port, on the test database that ``app`` made (same tables, keys, users)."""
    with serving(make_app, "127.0.0.1") as served:
        yield served


@pytest.fixture
def live_localhost(app, make_app):
    """Like ``live``, with the issuer (and so the WebAuthn RP ID) on localhost:
    WebAuthn does not accept an IP address as the relying party."""
    with serving(make_app, "localhost") as served:
        yield served


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        services.missing("Playwright", exc)
    if not Path(CHROMIUM).exists():
        services.missing("chromium", FileNotFoundError(CHROMIUM))
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1024, "height": 800}, locale="en-GB")
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under build/screenshots/ (kept for people to look at)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
