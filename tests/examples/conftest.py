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
