"""What the ``visma-idp`` commands share. ``cli.py`` is the root (the
``main`` group, its error handling, the app factory); each package keeps its
own commands beside its code (``admin/cli.py``, ``oidc/cli.py``,
``notify/cli.py``, ``migrate.py``, ``maintenance.py``, ``server.py``).

- :func:`provider_app`: the app a command works on. The root puts its
  factory on the click context, so a package's commands reach the app
  without importing the root (which imports every package).
- :func:`table` and :func:`when`: how lists and times are printed.
"""

from __future__ import annotations

import time
from typing import Any

import click
from flask import Flask

APP_FACTORY = "visma_idp.app_factory"  # key in click's Context.meta


def provider_app(*, check_db: bool = True, demo_instance: bool = True) -> Flask:
    """The provider app from the environment; by default only on a migrated database.

    With ``demo_instance`` (every command but ``serve``), a checkout where
    ``./dev serve`` made a demo instance and no SECRET_KEY or MODE is set
    reaches that instance (``cli.py``). The app's database connections are
    closed when the command ends.

    Raises:
        ConfigError: a wrong setting (exit status 2).
        DatabaseNotReady: with ``check_db``, a database not at the newest migration (exit status 2).
    """
    factory = click.get_current_context().meta.get(APP_FACTORY)
    if factory is None:
        raise RuntimeError("run the command through visma_idp.cli.main, which knows how to build the app")
    return factory(check_db=check_db, demo_instance=demo_instance)


def table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [headers] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def when(epoch: int | None) -> str | None:
    return None if epoch is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))
