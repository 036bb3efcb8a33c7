"""Health endpoints for load balancers and orchestrators.

- ``GET /healthz``: the process answers (liveness). 200, ``ok``, and nothing
  else: no database, no keys, no template, no session.
- ``GET /readyz``: the node can serve sign-ins (readiness). Checks, in order,
  each only when the one before passed: ``database`` (a pooled connection
  works), ``migrations`` (the schema is at this release's newest migration),
  ``signing_keys`` (this process holds an active key for every algorithm).
  200 when all pass, else 503; both with a short JSON body naming each
  check's state. The body never carries an error's text (which may name
  hosts or users) or a traceback: the reason goes to the log as one line.
- Both: GET or HEAD only, ``Cache-Control: no-store``, no cookie, no audit
  event, no throttle or quota. A database that does not answer fails the
  check after ``DATABASE_CONNECT_TIMEOUT`` instead of hanging the probe.
"""

from __future__ import annotations

import functools
import logging

from flask import Blueprint, Flask, Response, jsonify

from .context import current_idp

bp = Blueprint("health", __name__)
log = logging.getLogger("visma_idp.health")

ENDPOINTS = ("health.healthz", "health.readyz")


@functools.cache
def _head_revision() -> str:
    from .migrate import head_revision

    return head_revision()  # reads the migration scripts: once per process


def _failed(check: str, exc: BaseException) -> None:
    first_line = (str(exc).strip().splitlines() or [""])[0][:200]
    log.warning("readiness: %s check failed: %s: %s", check, type(exc).__name__, first_line)


def _check_database_and_migrations(checks: dict[str, str]) -> None:
    from alembic.runtime.migration import MigrationContext

    from .storage import db

    try:
        conn = db.engine.connect()
    except Exception as exc:  # noqa: BLE001 - any driver error: not ready
        _failed("database", exc)
        checks["database"] = "unreachable"
        return
    checks["database"] = "ok"
    with conn:
        try:
            current = MigrationContext.configure(conn).get_current_revision()
        except Exception as exc:  # noqa: BLE001
            _failed("migrations", exc)
            checks["migrations"] = "unreadable"
            return
    head = _head_revision()
    if current != head:
        checks["migrations"] = f"database at {current or 'none'}, this release needs {head}"
        return
    checks["migrations"] = "ok"


def _check_signing_keys(checks: dict[str, str]) -> None:
    from .oidc.keys import ALGORITHMS

    idp = current_idp()
    try:
        # parsed once per process, cached KEY_CACHE_SECONDS; a probe never creates keys
        # (`db upgrade` and `serve` do, and so does the first request that signs)
        loaded = idp.keys.loaded_algorithms()
    except Exception as exc:  # noqa: BLE001 - encrypted under another SECRET_KEY, or unreadable
        _failed("signing_keys", exc)
        checks["signing_keys"] = "cannot be loaded"
        return
    missing = [alg for alg in ALGORITHMS if alg not in loaded]
    checks["signing_keys"] = f"missing for {', '.join(missing)}" if missing else "ok"


def init_app(app: Flask) -> None:
    """Register the health endpoints at the root of ``app``'s URL map (never
    under the provider's prefix), and the answer to requests made while the
    database does not answer (``outage.py``: 503, one warning per 5 s)."""
    from . import outage

    app.register_blueprint(bp)
    outage.init_app(app)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/healthz", methods=["GET"])
def healthz() -> Response:
    return _no_store(Response("ok\n", mimetype="text/plain"))


@bp.route("/readyz", methods=["GET"])
def readyz() -> Response:
    checks = {"database": "skipped", "migrations": "skipped", "signing_keys": "skipped"}
    _check_database_and_migrations(checks)
    if checks["migrations"] == "ok":
        _check_signing_keys(checks)
    ready = all(state == "ok" for state in checks.values())
    response = jsonify({"status": "ready" if ready else "not ready", "checks": checks})
    response.status_code = 200 if ready else 503
    return _no_store(response)
