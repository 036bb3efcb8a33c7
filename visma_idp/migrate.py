"""Alembic from inside the package: find the migrations (top-level
``migrations/`` in a checkout, ``visma_idp/migrations`` in a wheel) and run
them on the app's own engine. An upgrade to head also creates the first
signing keys (``oidc/keys.py``), so a fresh database is ready to sign.
The ``visma-idp db`` commands are at the end."""

from __future__ import annotations

from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .cli_support import provider_app


def migrations_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "migrations", here.parent / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise RuntimeError("the migrations folder is missing from this installation")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the migrations folder has no revisions")
    return head


def current_revision(app) -> str | None:
    from .storage import db

    with app.app_context(), db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(app, revision: str = "head") -> list[str]:
    """Upgrade the app's database to ``revision``; at head, create any missing signing key.

    Args:
        app: a Flask app with the provider (``IdentityProvider``) on it.
        revision: the Alembic revision to reach (default: the newest).

    Returns:
        The kids of the signing keys it created (empty when every algorithm had one).
    """
    from .storage import db

    cfg = alembic_config()
    with app.app_context(), db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    if revision != "head":
        return []
    return app.extensions["visma_idp"].keys.ensure_keys()


# -- visma-idp db ------------------------------------------------------------------


@click.group("db")
def database() -> None:
    """Database migrations (Alembic)."""


@database.command("upgrade")
def db_upgrade() -> None:
    """Upgrade the database to the newest migration, and create the first
    signing keys (one per algorithm) if there are none."""
    app = provider_app(check_db=False)
    created = upgrade(app)
    click.echo(f"database at migration {current_revision(app)}")
    if created:
        click.echo(f"created {len(created)} signing keys: {', '.join(created)}")


@database.command("current")
def db_current() -> None:
    """Show the database's migration and the one this release needs."""
    app = provider_app(check_db=False)
    current, head = current_revision(app), head_revision()
    state = "up to date" if current == head else "run `visma-idp db upgrade`"
    click.echo(f"current: {current or 'none'}\nhead:    {head}\n{state}")
