"""Storage: the SQLAlchemy models and the queries the package runs.

All SQL lives here (models.py for tables, queries.py for the statements the
protocol and login code run), so the rest of the package reads as protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from sqlalchemy import event

from ..crypto import Secrets
from .models import (  # noqa: F401
    SECRETS_KEY,
    AccountToken,
    AdminRight,
    AuditEvent,
    AuthorizationCode,
    Base,
    Client,
    ClientSnapshot,
    Consent,
    Factor,
    MailOutbox,
    OneTimeCode,
    PasswordHistory,
    ProfileChangeNotice,
    RecoveryCode,
    SeenJti,
    SigningKey,
    SmsCode,
    SmsOutbox,
    SsoSession,
    Token,
    User,
    db,
)


def init_app(app: Flask, *, settings: Mapping[str, Any], secrets: Secrets) -> None:
    """Connect ``app`` to its database (``DATABASE_URL``) and keep the cipher of its encrypted columns.

    A new SQLite file is created private (0600: it holds digests and
    encrypted keys), with foreign keys, WAL and a busy timeout on every
    connection; a PostgreSQL pool checks connections that sat idle
    (``storage/pool.py``). The engine options come from the Flask config
    (``SQLALCHEMY_ENGINE_OPTIONS``), set before this step.
    """
    url = settings["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        import os
        from pathlib import Path

        path = Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # the database holds digests and encrypted keys: keep it private
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    app.extensions[SECRETS_KEY] = secrets
    db.init_app(app)
    if not url.startswith("sqlite"):
        from .pool import ping_after_idle

        with app.app_context():
            ping_after_idle(db.engine, settings["DATABASE_PING_AFTER_IDLE"])
    if url.startswith("sqlite"):
        with app.app_context():
            engine = db.engine

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()
