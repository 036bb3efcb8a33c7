"""Fixtures shared by the attack tests."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server


@pytest.fixture
def audit_rows(app):
    """``audit_rows("login_failed")`` -> list of AuditEvent rows (detached copies as dicts)."""
    from visma_idp.storage import AuditEvent, db

    def rows(event: str | None = None) -> list[dict]:
        with app.app_context():
            stmt = select(AuditEvent).order_by(AuditEvent.id)
            if event:
                stmt = stmt.where(AuditEvent.event == event)
            return [
                {c.name: getattr(r, c.name) for c in AuditEvent.__table__.columns}
                for r in db.session.scalars(stmt)
            ]

    return rows


@pytest.fixture
def live_server(app):
    """The app on a real threaded HTTP server on a free loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-idp", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
