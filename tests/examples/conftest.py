"""Fixtures for the Expense demo app: ``make_expense`` builds it (its own SQLite
database under tmp_path) and ``serve_expense`` runs a WSGI app on a loopback port."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest

from tests.mailbox import free_port

EXPENSE_SECRET = "expense-secret-0123456789"


@pytest.fixture
def make_expense(tmp_path):
    from examples.relying_party import create_app

    def make(issuer: str, base_url: str = "http://127.0.0.1:5001", **overrides):
        app = create_app({"ISSUER": issuer, "CLIENT_ID": "expense", "CLIENT_SECRET": EXPENSE_SECRET,
                          "SECRET_KEY": "expense-test-secret-key-0123456789", "BASE_URL": base_url,
                          "DATABASE": str(tmp_path / "expense.db"), **overrides})
        app.config["TESTING"] = True
        return app

    return make


AGREEMENT = {"id": "a-1", "name": "Nordlys Regnskap AS", "org_number": "974760673"}


@pytest.fixture
def expense(make_expense):
    """Expense without CSRF checks, for the test client; the provider is never called."""
    return make_expense("http://127.0.0.1:9", WTF_CSRF_ENABLED=False)


def signed_in(app, sub="kari", agreement=AGREEMENT, roles=("employee",)):
    """A test client with a signed-in session, as the callback would leave it."""
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["user"] = {"sub": sub, "name": sub.title(), "email": f"{sub}@example.no", "agreement": agreement,
                        "roles": list(roles), "acr": "urn:visma_idp:acr:pwd"}
        sess["sid"] = f"sid-{sub}"
    return client


@contextmanager
def serve(wsgi_app, port: int | None = None):
    """Run a WSGI app on 127.0.0.1 in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    port = port or free_port()
    server = make_server("127.0.0.1", port, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
