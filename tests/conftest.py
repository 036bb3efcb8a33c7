"""Shared fixtures: ``app``, ``client`` (Flask test client), ``idp``,
``make_user``, ``make_client``, ``flow`` (a browser-less OIDC login) and
``mailbox`` (what the app sent through a real SMTP server on loopback).

The database is SQLite by default; ``VISMA_IDP_TEST_DB=postgresql`` runs the
same tests on PostgreSQL at 127.0.0.1:5432 (one database per xdist worker).
Under ``CI=true`` a missing PostgreSQL or Redis is a failure, not a skip.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from tests.helpers import TABLES_MADE, Flow, services

# every log line of the suite is scanned for secrets (tests/log_scan.py);
# URL builders and templates are compiled once per process (tests/compile_once.py)
pytest_plugins = ["tests.log_scan", "tests.compile_once"]

PG_BASE = os.environ.get("VISMA_IDP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
DB_KIND = os.environ.get("VISMA_IDP_TEST_DB", "sqlite")
ISSUER = "http://127.0.0.1:5000"
FAST_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 1024, "ARGON2_PARALLELISM": 1}
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture(scope="session")
def pg_database(worker_id, testrun_uid):
    """A PostgreSQL database of its own for this run and xdist worker, dropped at the end.

    The name carries the run's id, so two test runs on one machine never
    touch each other's database.
    """
    import psycopg

    name = f"visma_idp_test_{testrun_uid[:10]}_{worker_id}".replace("-", "_").lower()
    dsn = PG_BASE.replace("postgresql+psycopg", "postgresql") + "/test"
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        services.missing("PostgreSQL", exc)
    yield f"{PG_BASE}/{name}"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _close_pools_opened_by_the_test():
    """Close every connection pool a test opened, once the test is over.

    A test that builds a second app (another "node", a CLI run) and forgets to
    dispose its engine would otherwise leave open connections for the garbage
    collector, and psycopg's ResourceWarning would then fail whichever later
    test happens to be running when the collector runs.
    """
    from weakref import WeakSet

    from sqlalchemy import Engine, event

    used: WeakSet[Engine] = WeakSet()

    def remember(connection):
        used.add(connection.engine)

    event.listen(Engine, "engine_connect", remember)
    try:
        yield
    finally:
        event.remove(Engine, "engine_connect", remember)
        for engine in list(used):
            engine.dispose()


@pytest.fixture(scope="session")
def key_rows():
    """Signing keys generated once per test session (RSA generation is slow)."""
    return {}


@pytest.fixture(scope="session")
def smtp_capture():
    """One real SMTP server (aiosmtpd) per test process; every test app sends to it."""
    from tests.mailbox import SmtpCapture

    capture = SmtpCapture()
    capture.start()
    yield capture
    capture.stop()


@pytest.fixture
def mailbox(app, smtp_capture):
    """The messages this test's app sent; ``mailbox.deliver()`` runs the mail worker once."""
    from tests.mailbox import Mailbox

    smtp_capture.start()
    smtp_capture.refuse = False
    smtp_capture.clear()
    return Mailbox(smtp_capture, app)


@pytest.fixture
def settings(tmp_path, request, smtp_capture):
    values = {
        "MODE": "production",
        "ISSUER": ISSUER,
        "SECRET_KEY": TEST_SECRET,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SMTP_URL": smtp_capture.url,
        **FAST_ARGON2,
    }
    if DB_KIND == "postgresql":
        values["DATABASE_URL"] = request.getfixturevalue("pg_database")
    else:
        values["DATABASE_URL"] = f"sqlite:///{tmp_path / 'idp.db'}"
    return values


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory, key_rows):
    """A SQLite database with every table and the session's signing keys,
    made once per test process; each test's ``app`` starts from a copy (a
    file copy is about 1 ms, making the tables and keys about 60 ms)."""
    made: dict[str, str] = {}

    def template(settings: dict) -> str:
        if "path" not in made:
            from visma_idp import create_app
            from visma_idp.storage import db

            path = tmp_path_factory.mktemp("sqlite-template") / "idp.db"
            app = create_app({**settings, "DATABASE_URL": f"sqlite:///{path}"})
            with app.app_context():
                db.create_all()
                _add_keys(app, key_rows)
                db.session.remove()
                db.engine.dispose()  # the last connection checkpoints the WAL into the file
            made["path"] = str(path)
        return made["path"]

    return template


def _add_keys(app, key_rows) -> None:
    """The session's signing keys (made by the first app: RSA generation is slow)."""
    from visma_idp.storage import SigningKey, db

    idp = app.extensions["visma_idp"]
    if not key_rows:
        idp.keys.ensure_keys()
        for row in db.session.scalars(db.select(SigningKey)):
            key_rows[row.kid] = {c.name: getattr(row, c.name) for c in SigningKey.__table__.columns if c.name != "id"}
    else:
        for values in key_rows.values():
            db.session.add(SigningKey(**values))
        db.session.commit()


def _empty_postgresql(engine) -> None:
    """Delete every row and restart the sequences: on tables this small, one
    DELETE each (children first) is several times cheaper than a TRUNCATE,
    which makes new files for every table and index."""
    from visma_idp.storage import db

    with engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(text(f'DELETE FROM "{table.name}"'))
        conn.execute(text("SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n "
                          "ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND n.nspname = current_schema()"))


@pytest.fixture
def app(settings, key_rows, request):
    import shutil

    from visma_idp import create_app
    from visma_idp.storage import db

    url = settings["DATABASE_URL"]
    copied = False
    if url.startswith("sqlite:///") and not os.path.exists(url.removeprefix("sqlite:///")):
        shutil.copy(request.getfixturevalue("sqlite_template")(settings), url.removeprefix("sqlite:///"))
        copied = True
    app = create_app(settings)
    app.config["TESTING"] = True
    if not copied:
        with app.app_context():
            if url not in TABLES_MADE:  # PostgreSQL: once per worker, then the teardown only empties them
                db.create_all()
                TABLES_MADE.add(url)
            _add_keys(app, key_rows)
    yield app
    with app.app_context():
        db.session.remove()
        if DB_KIND == "postgresql":
            _empty_postgresql(db.engine)
        db.engine.dispose()


@pytest.fixture
def make_app(settings):
    """Build more apps on the test database, with overrides (``keys=True``: with signing keys);
    their sessions and connections are closed afterwards."""
    from visma_idp import create_app
    from visma_idp.storage import db

    apps = []

    def make(keys=False, **overrides):
        app = create_app({**settings, **overrides})
        apps.append(app)
        if keys:
            with app.app_context():
                app.extensions["visma_idp"].keys.ensure_keys()
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def idp(app):
    return app.extensions["visma_idp"]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app):
    from visma_idp.admin.service import create_user
    from visma_idp.storage import db

    def make(email="kari@example.no", password="correct horse battery", name="Kari Nordmann", **claims):
        with app.app_context():
            user = create_user(email, name, password, **claims)
            db.session.commit()
            return user.id

    return make


@pytest.fixture
def make_client(app):
    from visma_idp.oidc.registration import create_client
    from visma_idp.storage import db

    def make(client_id="expense", **kwargs):
        kwargs.setdefault("redirect_uris", ["https://rp.example.com/callback"])
        kwargs.setdefault("scope", "openid profile email phone address offline_access")
        if not kwargs.get("public") and kwargs.get("token_endpoint_auth_method") != "private_key_jwt":
            kwargs.setdefault("secret", "expense-secret-0123456789")
        with app.app_context():
            created = create_client(client_id, **kwargs)
            db.session.commit()
            return created.secret

    return make


@pytest.fixture
def flow(app, client, make_user, make_client):
    """A ready RP + user and a helper to log in through the HTML forms."""
    make_user()
    secret = make_client()
    return Flow(app, client, client_id="expense", client_secret=secret,
                redirect_uri="https://rp.example.com/callback")


# Tests whose outcome does not depend on the database kind (a real browser,
# the npm client, server processes, log files, timing): they run once per
# `./dev test`, in the PostgreSQL pass, with the tests marked
# ``postgresql_only``; the SQLite pass deselects them (never a skip).
ONCE = (
    "tests/browser/",
    "tests/interop/",
    "tests/observability/test_log_scan.py",
    "tests/observability/test_multiprocess.py",
    "tests/test_graceful_shutdown.py",
    "tests/test_deployment.py",
    "tests/security/test_recovery_timing.py",
)


def pytest_collection_modifyitems(config, items):
    """``postgresql_only`` tests (several server processes on PostgreSQL and
    Redis) and the ``ONCE`` files run in the PostgreSQL pass; the SQLite pass
    deselects them, so they run once per `./dev test` and are never reported
    as skipped."""
    if DB_KIND == "postgresql":
        return
    kept, dropped = [], []
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        once = item.get_closest_marker("postgresql_only") or path.startswith(ONCE)
        (dropped if once else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
