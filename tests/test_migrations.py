"""Alembic migrations: an empty database upgrades to head, and the migrated
schema is exactly what the models describe (SQLite, and PostgreSQL with
``VISMA_IDP_TEST_DB=postgresql``)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from tests.helpers import drop_all_tables
from visma_idp import DatabaseNotReady, create_app
from visma_idp.migrate import current_revision, head_revision, migrations_dir, upgrade


@pytest.fixture
def empty_app(settings):
    """An app on a database with no tables at all."""
    drop_all_tables(settings["DATABASE_URL"])
    app = create_app(settings)
    yield app
    from visma_idp.storage import db

    with app.app_context():
        db.engine.dispose()
    drop_all_tables(settings["DATABASE_URL"])


def test_migrations_dir_is_found():
    folder = migrations_dir()
    assert (folder / "env.py").is_file()
    assert list((folder / "versions").glob("*.py")), "no migration scripts"


def test_empty_database_upgrades_to_head(empty_app):
    idp = empty_app.extensions["visma_idp"]
    assert current_revision(empty_app) is None
    with pytest.raises(DatabaseNotReady, match="visma-idp db upgrade"):
        idp.check_database()

    upgrade(empty_app)

    assert current_revision(empty_app) == head_revision()
    idp.check_database()  # does not raise
    upgrade(empty_app)  # a second upgrade is a no-op
    assert current_revision(empty_app) == head_revision()


def test_migrated_schema_matches_the_models(empty_app):
    from visma_idp.storage import Base, db

    upgrade(empty_app)
    with empty_app.app_context(), db.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert set(Base.metadata.tables) <= tables
    assert diff == [], f"models and migrations differ (add a migration): {diff}"
