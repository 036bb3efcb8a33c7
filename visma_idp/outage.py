"""What a request gets while the database does not answer.

A PostgreSQL restart or failover makes every request that needs the database
fail for a few seconds. Without this, each of them was a 500 with a full
traceback in the log: about 130 lines per request, tens of thousands of lines
in a five-second restart under load (docs/operations.md, "Fault drills"),
which buried whatever else happened.

Now such a request is answered **503 with ``Retry-After: 1``**: the OAuth
endpoints, the admin API and SCIM get JSON (``temporarily_unavailable``,
RFC 6749 §4.1.2.1's code for exactly this), pages get a short page in the
person's language that says to try again. The page is built without a
template, since the templates' context asks for the signed-in session, which
lives in the database. The log gets **one warning per process every five
seconds** at most, naming the error's class and how many requests were
answered 503 since the last warning, never a traceback or the error's text
(which may name hosts and users). The pool replaces broken connections by
itself (``storage/pool.py``), so the next request after the database is back
succeeds; nothing needs restarting.

Only errors of reaching the database count: SQLAlchemy's ``OperationalError``
and ``InterfaceError`` (connection refused, closed, reset, server shutting
down, the pool's own timeout is ``TimeoutError``). A wrong statement or a
constraint violation is still a bug or a handled case, and is not hidden here.
"""

from __future__ import annotations

import html
import logging
import threading
import time

from flask import Flask, Response, json, request
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger("visma_idp.database")

WARN_EVERY = 5.0
# answered as JSON: the protocol's machine endpoints and the bearer-token APIs
_JSON_ENDPOINTS = {"oidc.token", "oidc.introspect", "oidc.revoke", "oidc.userinfo"}
_JSON_BLUEPRINTS = {"admin_api", "admin_agreements_api", "admin_system_api", "scim", "health"}


class _Warnings:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last = 0.0
        self.unreported = 0

    def note(self, exc: BaseException) -> None:
        with self.lock:
            self.unreported += 1
            now = time.monotonic()
            if now - self.last < WARN_EVERY:
                return
            count, self.unreported, self.last = self.unreported, 0, now
        log.warning("database unavailable (%s): %d request(s) answered 503 since the last warning",
                    type(exc).__name__, count)


_warnings = _Warnings()


def _is_unreachable(exc: BaseException) -> bool:
    """SQLite files its "no such column" as an OperationalError too: for SQLite
    only a locked or unopenable database counts; for PostgreSQL (psycopg
    files statement errors elsewhere) every OperationalError does."""
    if isinstance(exc, (InterfaceError, PoolTimeout)) or getattr(exc, "connection_invalidated", False):
        return True
    orig = getattr(exc, "orig", None)
    if type(orig).__module__.startswith("sqlite3"):
        text = str(orig).lower()
        return "locked" in text or "unable to open" in text or "disk i/o" in text
    return True


def database_unavailable(exc: BaseException) -> Response:
    if not _is_unreachable(exc):
        raise exc  # a bug, not an outage: Flask's 500 and its traceback
    _warnings.note(exc)
    try:
        from .storage import db

        db.session.rollback()
    except Exception:  # noqa: BLE001 - the session is dropped at teardown anyway
        pass
    if request.endpoint in _JSON_ENDPOINTS or request.blueprint in _JSON_BLUEPRINTS \
            or not request.accept_mimetypes.accept_html:
        body = json.dumps({"error": "temporarily_unavailable",
                           "error_description": "The service is briefly unavailable; try again in a moment."})
        response = Response(body, status=503, mimetype="application/json")
    else:
        title, message = _("The service is briefly unavailable"), _("Wait a moment and try again.")
        page = (f'<!doctype html>\n<html lang="{html.escape(str(get_locale() or "en"))}"><head><meta charset="utf-8">'
                f"<title>{html.escape(title)}</title></head>\n<body><main><h1>{html.escape(title)}</h1>"
                f"<p>{html.escape(message)}</p></main></body></html>\n")
        response = Response(page, status=503, mimetype="text/html")
    response.headers["Retry-After"] = "1"
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    for error in (OperationalError, InterfaceError, PoolTimeout):
        app.register_error_handler(error, database_unavailable)
