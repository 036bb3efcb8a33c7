"""The ``visma-idp`` console script: the root of the commands.

Each package keeps its own commands beside its code and this module adds
them to :func:`main`: ``serve`` (``server.py``), ``db`` (``migrate.py``),
``users`` and ``admin`` (``admin/cli.py``), ``clients``, ``keys`` and ``logout``
(``oidc/cli.py``), ``upstreams`` (``federation/cli.py``), ``agreements``
(``agreements/cli.py``), ``provisioning`` (``provisioning/cli.py``), ``purge`` (``maintenance.py``), ``mail``
(``notify/cli.py``). What they share is in ``cli_support.py``.

Every command builds the app with :func:`visma_idp.create_app` from the
environment (``VISMA_IDP_*``), through the factory :func:`main` puts on the
click context (:func:`_app`). Exit statuses: 0 done, 1 refused input (the
message says why), 2 a wrong setting or a database that is not migrated
(:class:`_Cli` turns our errors into these). Nothing prints a secret except
one the command has just created (and the demo credentials, which exist to
be shown).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from flask import Flask

from . import __version__, create_app
from .admin.cli import admin_group, users
from .agreements.cli import agreements
from .cli_support import APP_FACTORY
from .config import BY_NAME, PREFIX, _read_file
from .errors import ConfigError, DatabaseNotReady, InvalidInput
from .federation.cli import upstreams
from .maintenance import purge_command
from .migrate import database
from .notify.cli import mail
from .oidc.cli import clients, keys, logout
from .provisioning.cli import provisioning
from .server import serve


class _Cli(click.Group):
    """A click group that turns our errors into a message and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"visma-idp: configuration error: {exc}", err=True)
            ctx.exit(2)
        except DatabaseNotReady as exc:
            click.echo(f"visma-idp: database not ready: {exc}", err=True)
            ctx.exit(2)
        except InvalidInput as exc:
            click.echo(f"visma-idp: {exc}", err=True)
            ctx.exit(1)


def _app(*, check_db: bool = True, demo_instance: bool = True) -> Flask:
    """The provider app from the environment; by default only on a migrated database.

    With ``demo_instance`` (every command but ``serve``), a checkout where
    ``./dev serve`` made a demo instance and no SECRET_KEY or MODE is set
    reaches that instance (see :func:`_demo_instance`).
    """
    app = create_app(_demo_instance() if demo_instance else None)
    click.get_current_context().call_on_close(lambda: _dispose(app))
    if check_db:
        app.extensions["visma_idp"].check_database()
    return app


def _demo_instance() -> dict[str, Any] | None:
    """Demo mode, when nothing says otherwise and the instance folder holds a demo.

    Only when neither SECRET_KEY nor MODE is set (in the environment or the
    CONFIG file) and INSTANCE_PATH holds both files a demo server leaves there
    (``secret_key`` and ``demo_credentials.json``); then says so on stderr.
    A SECRET_KEY that is set, even a wrong one, always means production.
    """
    from .demo import CREDENTIALS_FILE

    config_path = os.environ.get(PREFIX + "CONFIG")
    from_file = _read_file(config_path) if config_path else {}
    if any(PREFIX + name in os.environ or name in from_file for name in ("SECRET_KEY", "MODE")):
        return None
    where = os.environ.get(PREFIX + "INSTANCE_PATH") or from_file.get("INSTANCE_PATH") or BY_NAME["INSTANCE_PATH"].default
    instance = Path(str(where)).resolve()
    if not ((instance / "secret_key").is_file() and (instance / CREDENTIALS_FILE).is_file()):
        return None
    click.echo(f"visma-idp: VISMA_IDP_SECRET_KEY is not set: using the demo instance in {instance} "
               "(demo mode; set VISMA_IDP_SECRET_KEY for production)", err=True)
    return {"MODE": "demo"}


def _dispose(app: Flask) -> None:
    """Close the app's database connections (commands may run in-process, e.g. in tests)."""
    from .storage import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@click.group(cls=_Cli)
@click.version_option(__version__, prog_name="visma-idp")
@click.pass_context
def main(ctx: click.Context) -> None:
    """visma_idp: an OpenID Connect provider.

    Settings come from the environment (VISMA_IDP_ISSUER, VISMA_IDP_DATABASE_URL,
    VISMA_IDP_SECRET_KEY, ...). A wrong setting or an un-migrated database stops
    a command with exit status 2.
    """
    ctx.meta[APP_FACTORY] = _app


for command in (serve, database, users, admin_group, clients, keys, logout, upstreams, agreements, provisioning,
                purge_command, mail):
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
