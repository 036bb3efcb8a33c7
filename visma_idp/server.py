"""``visma-idp serve``: migrate, make sure of the signing keys, then run the
production server on ``visma_idp.wsgi:app``.

- granian (default; Rust HTTP server, WSGI interface) or gunicorn with
  gthread workers (``--server gunicorn``); ``--dev``: Flask's reloading
  development server. granian is the default because it gave about twice
  gunicorn's token throughput on one core (docs/performance.md).
- With ``--workers`` above 1, the workers count their metrics into a fresh
  private folder (``PROMETHEUS_MULTIPROC_DIR``) made before they start and
  removed when the server stops; log lines go to stderr in ``LOG_FORMAT``,
  and neither granian nor gunicorn writes an access log of its own (the
  app's is ``ACCESS_LOG``; docs/operations.md, "Metrics and logs").
- ``--demo`` (or ``MODE=demo``): a generated secret key, the demo user and
  client seeded and their credentials printed, mail sent right after each
  response. Demo mode shows every email at ``/dev/outbox``, so it listens
  only on loopback unless ``--demo-on-public-address`` says otherwise (then
  with a warning).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import tempfile
from typing import Any

import click
from gunicorn.app.base import BaseApplication

from .cli_support import provider_app
from .config import is_loopback_issuer
from .errors import InvalidInput
from .observability.logs import RedactingFilter, install_handler
from .observability.metrics import MULTIPROC_ENV

log = logging.getLogger("visma_idp.logout")


def _default_threads() -> int:
    """Twice the CPUs this process may run on, plus one, at most 8.

    granian warns when a worker's blocking threads exceed 2 x CPUs + 1 (its
    idle threads spin, and more threads than cores only wait for the GIL);
    more than 8 never helped in docs/performance.md (4 and 8 gave the same
    logins per second on one core), while slow databases want a few.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(8, 2 * cpus + 1)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1), help="Worker processes.")
@click.option("--threads", default=_default_threads(), show_default=True, type=click.IntRange(1),
              help="Threads per worker (granian blocking threads / gunicorn gthread threads). Default: twice the "
                   "CPUs this process may use, plus one, at most 8: threads help only while requests wait on the "
                   "database, and granian warns above 2 x CPUs + 1.")
@click.option("--server", "server_kind", type=click.Choice(["granian", "gunicorn"]), default="granian", show_default=True,
              help="Production WSGI server: granian (faster, see docs/performance.md) or gunicorn (gthread).")
@click.option("--dev", is_flag=True, help="Flask's development server with the reloader instead.")
@click.option("--demo", is_flag=True, help="Demo mode (VISMA_IDP_MODE=demo): generated secret key, seeded demo user and client.")
@click.option("--demo-on-public-address", "demo_public", is_flag=True,
              help="Let demo mode listen on an address other than loopback. Anyone who reaches it reads every "
                   "email, sign-in links and codes included, at /dev/outbox.")
def serve(host: str, port: int, workers: int, threads: int, server_kind: str, dev: bool, demo: bool,
          demo_public: bool) -> None:
    """Run the provider.

    Before it listens, serve upgrades the database to the newest migration
    (like `visma-idp db upgrade`) and creates any missing signing keys. It
    then runs granian (default) or gunicorn (gthread workers) on
    visma_idp.wsgi:app; with --dev, Flask's development server with the reloader.
    Demo mode listens only on loopback (127.0.0.1, ::1, localhost) unless
    --demo-on-public-address is given.
    """
    if demo:
        _refuse_public_demo(host, forced=demo_public)
    if dev or demo:  # no mail worker runs beside a dev or demo server: send right after the response
        os.environ.setdefault("VISMA_IDP_MAIL_FLUSH_AFTER_REQUEST", "true")
    if demo:
        os.environ["VISMA_IDP_MODE"] = "demo"
        if "VISMA_IDP_ISSUER" not in os.environ and "VISMA_IDP_CONFIG" not in os.environ:
            # the issuer must match where a local browser finds the server
            os.environ["VISMA_IDP_ISSUER"] = f"http://127.0.0.1:{port}"
    reloaded = os.environ.get("WERKZEUG_RUN_MAIN") == "true"  # the --dev reloader's child
    metrics_dir = None if dev else _multiprocess_metrics(workers)
    owner = os.getpid()
    try:
        _serve(host, port, workers, threads, server_kind, dev, demo, demo_public, reloaded)
    finally:
        # a gunicorn worker is a fork that leaves through this frame too: only the server removes the folder
        if metrics_dir is not None and os.getpid() == owner:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _multiprocess_metrics(workers: int) -> str | None:
    """Several workers each count their own requests: give them a fresh
    private folder for prometheus_client's multiprocess files, set before the
    app (and so prometheus_client) is loaded and the workers fork, and
    removed when the server stops (the caller). A folder the operator named
    in ``PROMETHEUS_MULTIPROC_DIR`` is used as it is and left in place (it
    must be empty when the server starts). Returns the folder to remove."""
    if workers < 2 or os.environ.get(MULTIPROC_ENV):
        return None
    folder = tempfile.mkdtemp(prefix="visma-idp-metrics-")  # mode 0700, a new name every start
    os.environ[MULTIPROC_ENV] = folder
    return folder


def _serve(host: str, port: int, workers: int, threads: int, server_kind: str, dev: bool, demo: bool,
           demo_public: bool, reloaded: bool) -> None:
    app = provider_app(check_db=False, demo_instance=False)
    idp = app.extensions["visma_idp"]
    if idp.settings["MODE"] == "demo" and not demo:  # VISMA_IDP_MODE=demo or the settings file
        _refuse_public_demo(host, forced=demo_public)
    from .migrate import upgrade
    from .storage import db

    upgrade(app)
    with app.app_context():
        idp.keys.ensure_keys()
    if idp.settings["MODE"] == "demo":
        from .demo import seed_demo

        credentials = seed_demo(app)
        if not reloaded:
            _print_demo(credentials)
    if not reloaded:
        _warn_port_mismatch(idp.issuer, port)
    with app.app_context():
        db.engine.dispose()  # no connection crosses into forked workers
    if (dev and reloaded) or (demo and not dev):
        _logout_rounds(app)
    # from here on the visma_idp loggers write to stderr (the workers inherit it)
    install_handler(log_format=idp.settings["LOG_FORMAT"], level=idp.settings["LOG_LEVEL"])
    if dev:
        # werkzeug's own request lines show the path: our link tokens are taken out of them
        logging.getLogger("werkzeug").addFilter(RedactingFilter())
        app.config["TEMPLATES_AUTO_RELOAD"] = True
        app.run(host=host, port=port, use_reloader=True, use_debugger=False, threaded=True)
        return
    click.echo(f"visma-idp: issuer {idp.issuer}, listening on http://{host}:{port} "
               f"({server_kind}, {workers} worker(s) x {threads} thread(s))")
    if server_kind == "granian":
        _run_granian(host, port, workers, threads)
        return
    GunicornServer(
        {
            "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "keepalive": 5,
        }
    ).run()


def _logout_rounds(app, every: float = 5.0) -> None:
    """A dev or demo server has no `visma-idp logout worker` beside it: a
    thread of the serving process does its rounds (``oidc/backchannel.py``),
    so a sign-out at the provider reaches the apps there too."""
    import threading
    import time

    from .oidc.backchannel import run_once

    idp = app.extensions["visma_idp"]

    def rounds() -> None:
        while True:
            time.sleep(every)
            try:
                with app.app_context():
                    run_once(idp)
            except Exception:  # noqa: BLE001 - the next round tries again; a demo never stops for this
                log.exception("back-channel logout round failed")

    threading.Thread(target=rounds, name="logout-rounds", daemon=True).start()


def _is_loopback(host: str) -> bool:
    name = host.strip().removeprefix("[").removesuffix("]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return (mapped or address).is_loopback


def _refuse_public_demo(host: str, *, forced: bool) -> None:
    """Demo mode shows every email (sign-in links, reset links, codes) at
    /dev/outbox to whoever reaches the server: loopback only, unless forced."""
    if _is_loopback(host):
        return
    if not forced:
        raise InvalidInput(
            f"refusing to run demo mode on {host}: anyone who reaches it reads every email at /dev/outbox, "
            "sign-in links and codes included. Listen on 127.0.0.1 (the default), or add "
            "--demo-on-public-address if you really mean it.")
    click.echo(f"visma-idp: WARNING: demo mode on {host}, not loopback: anyone who reaches this server reads "
               "every email, sign-in links and codes included, at /dev/outbox", err=True)


def _run_granian(host: str, port: int, workers: int, threads: int) -> None:
    """granian (Rust HTTP server, WSGI interface): one Rust runtime thread per
    worker and a pool of blocking threads running the Flask app."""
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "visma_idp.wsgi:app", address=host, port=port, interface=Interfaces.WSGI, workers=workers,
        runtime_threads=1, blocking_threads=threads, websockets=False, log_access=False,
    ).serve()


def _print_demo(credentials: dict[str, Any]) -> None:
    click.echo("Demo mode: sign in and connect a relying party with these credentials")
    lines = [("user", credentials["email"]), ("password", credentials["password"]),
             ("client_id", credentials["client_id"]), ("client_secret", credentials["client_secret"])]
    lines += [("redirect_uri", uri) for uri in credentials["redirect_uris"]]
    lines += [("colleague", credentials["colleague"]), ("password", credentials["colleague_password"])]
    lines.append(("saved in", credentials["file"]))
    for label, value in lines:
        click.echo(f"  {label:<14} {value}")
    click.echo(f"  The Expense example app (examples/relying_party/, started by ./dev serve) is this client, at "
               f"{credentials['expense']}: sign in there as the colleague to file an outlay, then as the demo "
               "user (an approver) to approve it.")
    click.echo("  The demo user is an admin of Nordlys Regnskap AS: My details links its members page and "
               "audit log.")


def _warn_port_mismatch(issuer: str, port: int) -> None:
    """A local issuer on another port than the server's breaks every link it builds."""
    from urllib.parse import urlsplit

    if is_loopback_issuer(issuer) and urlsplit(issuer).port not in (None, port):
        click.echo(f"visma-idp: warning: VISMA_IDP_ISSUER is {issuer} but the server listens on port {port}", err=True)


class GunicornServer(BaseApplication):
    """gunicorn run from Python on ``visma_idp.wsgi:app``.

    The app is imported in load(), i.e. in every worker after the fork, so
    each worker builds its own app (and database pool) from the environment.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 24: one shared path per user
            self.cfg.set("control_socket_disable", True)

    def load(self):
        from .wsgi import app

        return app
