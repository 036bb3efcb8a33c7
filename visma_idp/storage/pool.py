"""Checking pooled PostgreSQL connections only when they may have gone stale.

SQLAlchemy's ``pool_pre_ping`` spends a round trip to the database on every
checkout, which on the token and login paths is one more round trip per
request. A connection that was in use a moment ago is alive; one that sat in
the pool for a while may have been closed by a database restart, a failover
or an idle timeout in a proxy. So we ping only connections that have been
idle longer than ``DATABASE_PING_AFTER_IDLE`` seconds. A failed ping raises
``DisconnectionError``, and the pool replaces the connection and tries again,
so the request never sees the dead one.
"""

from __future__ import annotations

import time

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

_LAST_USED = "visma_idp_last_used"


def ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Install the check on ``engine``'s pool (``idle_seconds=0``: on every checkout)."""
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _fresh(dbapi_connection, record):
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection, record):
        if record is not None:
            record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection, record, proxy):
        if time.monotonic() - record.info.get(_LAST_USED, 0.0) < idle_seconds:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as error:  # whatever the driver raises for a dead socket
            raise exc.DisconnectionError(f"stale pooled connection: {error}") from error
        if not alive:
            raise exc.DisconnectionError("stale pooled connection")
