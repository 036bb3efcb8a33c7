"""``/healthz`` (the process answers) and ``/readyz`` (database reachable,
migrations current, signing keys loaded) for load balancers: each failing
check gives 503 with a short JSON naming it, never a secret, a traceback or a
hang; the probes leave no cookie, audit event or throttle count behind."""

from __future__ import annotations

import logging
import socket
import threading

import pytest
from sqlalchemy import func, select

from tests.helpers import drop_all_tables
from visma_idp.migrate import upgrade

DB_PASSWORD = "s3cret-database-password"


@pytest.fixture
def empty_db(settings):
    """The test database with no tables (not migrated)."""
    drop_all_tables(settings["DATABASE_URL"])
    yield
    drop_all_tables(settings["DATABASE_URL"])


@pytest.fixture
def migrated(empty_db, make_app):
    """An app on a database migrated to head, with no signing keys (``upgrade``
    makes the first ones; they are deleted again, as if a release before that
    had migrated this database)."""
    from sqlalchemy import delete

    from visma_idp.storage import SigningKey, db

    app = make_app()
    upgrade(app)
    with app.app_context():
        db.session.execute(delete(SigningKey))
        db.session.commit()
        app.extensions["visma_idp"].keys.invalidate()
    return app


@pytest.fixture
def ready(migrated):
    with migrated.app_context():
        migrated.extensions["visma_idp"].keys.ensure_keys()
    return migrated


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


def probe(app, path="/readyz", *, within=30.0):
    """GET ``path`` in a thread; fail if it has not answered ``within`` seconds (a hang)."""
    answer = {}

    def run():
        answer["resp"] = app.test_client().get(path)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(within)
    assert "resp" in answer, f"{path} did not answer within {within} s"
    return answer["resp"]


def assert_probe_headers(resp):
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in resp.headers


# -- /healthz ----------------------------------------------------------------------


def test_healthz_answers_without_a_database(make_app):
    app = make_app(DATABASE_URL=f"postgresql+psycopg://postgres:{DB_PASSWORD}@127.0.0.1:{closed_port()}/idp")
    resp = probe(app, "/healthz")
    assert resp.status_code == 200
    assert resp.get_data(as_text=True) == "ok\n"
    assert resp.mimetype == "text/plain"
    assert_probe_headers(resp)
    head = app.test_client().head("/healthz")
    assert head.status_code == 200 and head.get_data() == b""


# -- /readyz ---------------------------------------------------------------------


def test_readyz_when_ready(ready):
    resp = ready.test_client().get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"status": "ready",
                               "checks": {"database": "ok", "migrations": "ok", "signing_keys": "ok"}}
    assert_probe_headers(resp)
    assert ready.test_client().head("/readyz").status_code == 200


def test_readyz_on_a_database_that_is_not_migrated(empty_db, make_app):
    from visma_idp.migrate import head_revision

    resp = make_app().test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json() == {"status": "not ready", "checks": {
        "database": "ok", "migrations": f"database at none, this release needs {head_revision()}",
        "signing_keys": "skipped"}}
    assert_probe_headers(resp)


def test_readyz_on_a_database_one_migration_behind(empty_db, make_app):
    from alembic.script import ScriptDirectory

    from visma_idp.migrate import alembic_config, head_revision

    previous = ScriptDirectory.from_config(alembic_config()).get_revision(head_revision()).down_revision
    app = make_app()
    upgrade(app, previous)
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"]["migrations"] == f"database at {previous}, this release needs {head_revision()}"
    upgrade(app)
    with app.app_context():
        app.extensions["visma_idp"].keys.ensure_keys()
    assert app.test_client().get("/readyz").status_code == 200


def test_readyz_without_signing_keys(migrated):
    from sqlalchemy import func, select

    from visma_idp.storage import SigningKey, db

    resp = migrated.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json() == {"status": "not ready", "checks": {
        "database": "ok", "migrations": "ok", "signing_keys": "missing for RS256, PS256, ES256, EdDSA"}}
    with migrated.app_context():  # a probe reads, it never creates them
        assert db.session.scalar(select(func.count()).select_from(SigningKey)) == 0


def test_readyz_with_keys_this_secret_key_cannot_open(ready, make_app, caplog):
    other = make_app(SECRET_KEY="another-secret-key-that-is-long-enough-000")
    with caplog.at_level(logging.WARNING, logger="visma_idp"):
        resp = other.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"] == {"database": "ok", "migrations": "ok", "signing_keys": "cannot be loaded"}
    assert all(r.exc_info is None for r in caplog.records)


def test_readyz_when_the_database_is_down(make_app, caplog):
    app = make_app(DATABASE_URL=f"postgresql+psycopg://postgres:{DB_PASSWORD}@127.0.0.1:{closed_port()}/idp")
    with caplog.at_level(logging.WARNING, logger="visma_idp"):
        resp = probe(app)
    assert resp.status_code == 503
    assert resp.get_json() == {"status": "not ready", "checks": {
        "database": "unreachable", "migrations": "skipped", "signing_keys": "skipped"}}
    assert_probe_headers(resp)
    assert DB_PASSWORD not in resp.get_data(as_text=True)
    said = [r for r in caplog.records if r.name == "visma_idp.health"]
    assert len(said) == 1 and "database" in said[0].getMessage()
    assert DB_PASSWORD not in said[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records)  # one line, no traceback


def test_readyz_when_the_database_accepts_but_never_answers(make_app):
    """A database host that takes the connection and then says nothing (a hung
    server, a half-open firewall): the probe fails after DATABASE_CONNECT_TIMEOUT."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nobody ever reads or writes
        port = silent.getsockname()[1]
        app = make_app(DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{port}/idp", DATABASE_CONNECT_TIMEOUT=2)
        resp = probe(app, within=30)
    assert resp.status_code == 503
    assert resp.get_json()["checks"]["database"] == "unreachable"


# -- what the probes leave behind -----------------------------------------------------------


def test_probes_leave_no_cookie_audit_event_or_throttle_count(ready):
    from visma_idp.storage import AuditEvent, db

    idp = ready.extensions["visma_idp"]
    with ready.app_context():
        events_before = db.session.scalar(select(func.count()).select_from(AuditEvent))
    c = ready.test_client()
    c.environ_base["REMOTE_ADDR"] = "10.0.0.9"  # the load balancer
    for _ in range(25):
        for path in ("/healthz", "/readyz"):
            resp = c.get(path, headers={"Accept-Language": "nb"})
            assert resp.status_code == 200
            assert_probe_headers(resp)
    assert c.get_cookie("visma_idp_tx") is None and c.get_cookie("visma_idp_sid") is None
    with ready.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == events_before
    assert len(idp.throttle.store) == 0


def test_probes_answer_only_get_and_head(ready):
    c = ready.test_client()
    for path in ("/healthz", "/readyz"):
        assert c.post(path).status_code in (400, 405)
        assert c.delete(path).status_code == 405
