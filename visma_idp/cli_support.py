"""What the ``visma-idp`` commands share. ``cli.py`` is the root (the
``main`` group, its error handling, the app factory); each package keeps its
own commands beside its code (``admin/cli.py``, ``oidc/cli.py``,
``notify/cli.py``, ``migrate.py``, ``maintenance.py``, ``server.py``).

- :func:`provider_app`: the app a command works on. The root puts its
  factory on the click context, so a package's commands reach the app
  without importing the root (which imports every package).
- :func:`table` and :func:`when`: how lists and times are printed.
- :func:`run_rounds`: the loop of a worker command (``mail worker``,
  ``logout worker``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
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


def run_rounds(app: Flask, name: str, do_round: Callable[[], Any], *, once: bool, interval: float,
               worth_telling: Callable[[Any], bool], more_due: Callable[[Any], bool] = lambda _report: False) -> None:
    """A worker command's loop: ``do_round()`` in an app context, its report
    printed when ``worth_telling``, again at once while ``more_due``, else
    after ``interval`` seconds; with ``once`` until nothing more is due.
    SIGTERM or SIGINT let the current round finish, then the loop ends. A
    round that fails (the database is away) is printed and tried again next
    round; with ``once`` it is refused input (exit status 1)."""
    import signal
    import threading

    from .errors import InvalidInput

    clock = app.extensions["visma_idp"].clock
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if not once and threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        while not stop.is_set():
            try:
                with app.app_context():
                    report = do_round()
            except Exception as exc:  # noqa: BLE001 - the database is away: try again next round
                if once:
                    raise InvalidInput(f"{name} round failed: {type(exc).__name__}: {exc}") from exc
                click.echo(f"{when(clock.now())} {name} round failed: {type(exc).__name__}: {exc}", err=True)
                stop.wait(interval)
                continue
            if worth_telling(report):
                click.echo(f"{when(clock.now())} {report}")
            if more_due(report):
                continue  # more is due: no pause
            if once:
                break
            stop.wait(interval)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not once:
        click.echo(f"visma-idp {name} worker: stopped")
