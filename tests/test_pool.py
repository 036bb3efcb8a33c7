"""Pooled PostgreSQL connections after the database dropped them (a restart,
a failover, a proxy's idle timeout): the next use after an idle spell checks
the connection and replaces a dead one, so no request fails.

Runs against PostgreSQL in both passes of the suite (SQLite has no server
that could drop a connection).
"""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from visma_idp.storage import db


@pytest.fixture
def pg_app(make_app, pg_database):
    return lambda **overrides: make_app(DATABASE_URL=pg_database, **overrides)


def _use_database(app) -> int:
    """What a request does: check out a connection, query, give it back."""
    with app.app_context():
        try:
            return db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        finally:
            db.session.remove()


def _kill_our_connections(url: str) -> int:
    dsn = url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]


def test_a_connection_killed_while_idle_is_replaced(pg_app, pg_database):
    app = pg_app(DATABASE_PING_AFTER_IDLE=0.2)
    first = _use_database(app)
    assert _kill_our_connections(pg_database) >= 1
    time.sleep(0.3)  # longer than DATABASE_PING_AFTER_IDLE

    second = _use_database(app)  # does not raise

    assert second != first  # a new server process: the dead connection was replaced


def test_without_the_check_the_dead_connection_fails_the_request(pg_app, pg_database):
    """The control: a connection used again before the idle limit is not checked,
    so after a kill it fails. This is what the check above prevents."""
    app = pg_app(DATABASE_PING_AFTER_IDLE=3600)
    _use_database(app)
    assert _kill_our_connections(pg_database) >= 1

    with pytest.raises(OperationalError):
        _use_database(app)
    assert _use_database(app)  # the pool dropped the dead one after the error


def test_busy_connections_are_not_pinged(pg_app):
    """A connection used a moment ago goes back into use without a round trip."""
    from sqlalchemy import event

    app = pg_app(DATABASE_PING_AFTER_IDLE=60)
    with app.app_context():
        engine = db.engine
    statements = []
    event.listen(engine, "before_cursor_execute", lambda conn, cur, stmt, *a: statements.append(stmt))
    pings = []
    real_ping = engine.dialect.do_ping
    engine.dialect.do_ping = lambda dbapi_conn: pings.append(1) or real_ping(dbapi_conn)  # type: ignore[method-assign]
    for _ in range(5):
        _use_database(app)
    assert pings == []
    assert len(statements) == 5
