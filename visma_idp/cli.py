"""The ``visma-idp`` console script: run the server and manage the database,
users, clients and signing keys.

Every command builds the app with :func:`visma_idp.create_app` from the
environment (``VISMA_IDP_*``). Exit statuses: 0 done, 1 refused input (the
message says why), 2 a wrong setting or a database that is not migrated.
Nothing here prints a secret except one the command has just created (and the
demo credentials, which exist to be shown).
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from . import __version__, create_app
from .admin.rights import RIGHTS
from .admin.service import InvalidInput
from .config import BY_NAME, PREFIX, _read_file, is_loopback_issuer
from .errors import ConfigError, DatabaseNotReady


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


def _table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [headers] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _when(epoch: int | None) -> str | None:
    return None if epoch is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


@click.group(cls=_Cli)
@click.version_option(__version__, prog_name="visma-idp")
def main() -> None:
    """visma_idp: an OpenID Connect provider.

    Settings come from the environment (VISMA_IDP_ISSUER, VISMA_IDP_DATABASE_URL,
    VISMA_IDP_SECRET_KEY, ...). A wrong setting or an un-migrated database stops
    a command with exit status 2.
    """


# -- serve -------------------------------------------------------------------


def _default_threads() -> int:
    """Twice the CPUs this process may run on, plus one, at most 8.

    granian warns when a worker's blocking threads exceed 2 x CPUs + 1 (its
    idle threads spin, and more threads than cores only wait for the GIL);
    more than 8 never helped in docs/performance.md (4 and 8 gave the same
    logins per second on one core), while slow databases want a few.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(8, 2 * cpus + 1)


@main.command()
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
    app = _app(check_db=False, demo_instance=False)
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
    if dev:
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
    lines.append(("saved in", credentials["file"]))
    for label, value in lines:
        click.echo(f"  {label:<14} {value}")
    click.echo("  Nothing listens at the redirect URIs yet (an Expense example app is planned): "
               "run your own relying party there.")


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


# -- db ----------------------------------------------------------------------


@main.group("db")
def database() -> None:
    """Database migrations (Alembic)."""


@database.command("upgrade")
def db_upgrade() -> None:
    """Upgrade the database to the newest migration, and create the first
    signing keys (one per algorithm) if there are none."""
    from .migrate import current_revision, upgrade

    app = _app(check_db=False)
    created = upgrade(app)
    click.echo(f"database at migration {current_revision(app)}")
    if created:
        click.echo(f"created {len(created)} signing keys: {', '.join(created)}")


@database.command("current")
def db_current() -> None:
    """Show the database's migration and the one this release needs."""
    from .migrate import current_revision, head_revision

    app = _app(check_db=False)
    current, head = current_revision(app), head_revision()
    state = "up to date" if current == head else "run `visma-idp db upgrade`"
    click.echo(f"current: {current or 'none'}\nhead:    {head}\n{state}")


# -- users -------------------------------------------------------------------


@main.group()
def users() -> None:
    """Create (or invite) and list users."""


def _address(value: str, option: str = "--email") -> str:
    """An address given on the command line, in its stored spelling (``account/addresses.py``).

    Raises:
        InvalidInput: not exactly one valid address (exit status 1, the reason in plain English).
    """
    from .admin.service import parse_email

    try:
        return parse_email(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{option}: {exc}") from None


def _read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@users.command("create")
@click.option("--email", required=True, help="Sign-in email address.")
@click.option("--name", required=True, help="Full name.")
@click.option("--password", help="Password (default: prompted, or one line read from stdin).")
@click.option("--invite", is_flag=True,
              help="Set no password: create a pending account and email its owner a Welcome message with an "
                   "activation link (the mail worker sends it).")
def users_create(email: str, name: str, password: str | None, invite: bool) -> None:
    """Create a user.

    With --invite the account waits for activation: its owner gets a Welcome
    email whose link (single use, ACTIVATION_LIFETIME) lets them choose a
    password. Otherwise the password comes from --password, a prompt, or one
    line on stdin, and must satisfy the password policy.
    """
    from .admin.service import create_user, invite_user
    from .storage import db

    if invite and password is not None:
        raise InvalidInput("use either --password or --invite, not both")
    email = _address(email)
    app = _app()
    if invite:
        with app.app_context():
            user = invite_user(email, name)
            db.session.commit()
            click.echo(f"created user {user.id} {user.email} (pending: activation email queued)")
        return
    if password is None:
        password = _read_password()
    if not password:
        raise InvalidInput("a password is required")
    with app.app_context():
        user = create_user(email, name, password)
        db.session.commit()
        click.echo(f"created user {user.id} {user.email}")


@users.command("resend-activation")
@click.option("--email", required=True, help="Email address of the pending account.")
def users_resend_activation(email: str) -> None:
    """Email a pending user a new activation link; earlier links stop working."""
    from .admin.service import resend_activation
    from .storage import db, queries

    app = _app()
    with app.app_context():
        user = queries.user_by_email(_address(email))
        if user is None:
            raise InvalidInput(f"no user with email {email}")
        resend_activation(user)
        db.session.commit()
        click.echo(f"activation email queued for {user.email}")


@users.command("list")
def users_list() -> None:
    """List users; `active` is yes, no (disabled), pending (not activated yet) or locked."""
    from .admin.service import list_users

    app = _app()
    shown = {"active": "yes", "disabled": "no"}
    with app.app_context():
        rows = [[u.id, u.email, u.name, shown.get(u.status, u.status)] for u in list_users()]
    _table(["id", "email", "name", "active"], rows)


@users.command("one-time-code")
@click.option("--email", required=True, help="Email address of the user who lost their second factor.")
@click.option("--admin", "admin_email",
              help="Issue as this admin (their right for the user's domain is checked). "
                   "Without it the command runs as the operator and may issue for anyone.")
def users_one_time_code(email: str, admin_email: str | None) -> None:
    """Create a one-time code that lets a user pass the second step of a sign-in once.

    The code is printed once (it is stored only as a keyed digest), lives
    ONE_TIME_CODE_LIFETIME seconds (10 minutes), works once and voids the
    user's older codes. After using it the user must set up a new factor
    before the sign-in ends. The user is emailed when the code is created and
    when it is used; both are audited. Give the code to the user yourself
    (phone, in person), never by email.
    """
    from .factors.admin_codes import IssueRefused, issue_for_email
    from .storage import db, queries

    app = _app()
    with app.app_context():
        admin = None
        email = _address(email)
        if admin_email is not None:
            admin = queries.user_by_email(_address(admin_email, "--admin"))
            if admin is None:
                raise InvalidInput(f"no user with email {admin_email}")
        try:
            issued = issue_for_email(admin, email, via="cli")
        except IssueRefused as exc:
            db.session.commit()  # the refusal is audited
            raise InvalidInput(f"refused ({exc.reason}): {exc.message}") from None
        db.session.commit()
        click.echo(f"one-time code for {issued.target.email}: {issued.code}")
        click.echo(f"valid until {_when(issued.expires_at)}, single use; it is not shown again")


# -- admin rights ---------------------------------------------------------------


@main.group("admin")
def admin_group() -> None:
    """Admins' rights: who may issue one-time codes, for which email domains."""


def _rights_user(email: str):
    from .storage import queries

    user = queries.user_by_email(_address(email))
    if user is None:
        raise InvalidInput(f"no user with email {email}")
    return user


@admin_group.command("grant")
@click.option("--email", required=True, help="Email address of the admin.")
@click.option("--right", required=True, type=click.Choice(list(RIGHTS)), help="The right.")
@click.option("--domain", "domains", multiple=True, required=True,
              help="Email domain the right covers, like example.no (repeatable). Exact match only: "
                   "subdomains are granted one by one.")
def admin_grant(email: str, right: str, domains: tuple[str, ...]) -> None:
    """Give an admin a right for email domains (added to the domains they hold)."""
    from .admin import rights
    from .storage import db

    app = _app()
    with app.app_context():
        user = _rights_user(email)
        row = rights.grant(user, right, domains)
        db.session.commit()
        click.echo(f"{user.email} holds {right} for: {', '.join(row.domains)}")


@admin_group.command("revoke")
@click.option("--email", required=True, help="Email address of the admin.")
@click.option("--right", required=True, type=click.Choice(list(RIGHTS)), help="The right.")
@click.option("--domain", "domains", multiple=True, help="Only these domains (repeatable; default: the whole right).")
def admin_revoke(email: str, right: str, domains: tuple[str, ...]) -> None:
    """Take a right from an admin, for some domains or entirely."""
    from .admin import rights
    from .storage import db

    app = _app()
    with app.app_context():
        user = _rights_user(email)
        removed = rights.revoke(user, right, list(domains) if domains else None)
        db.session.commit()
        click.echo(f"{user.email}: {right} removed for: {', '.join(removed) or 'no domain (none held)'}")


@admin_group.command("list")
def admin_list() -> None:
    """List the rights admins hold."""
    from .admin import rights

    app = _app()
    with app.app_context():
        rows = [[u.email, r.right, " ".join(r.domains or []), _when(r.granted_at), u.status]
                for u, r in rights.all_rights()]
    _table(["email", "right", "domains", "granted", "account"], rows)


# -- clients -----------------------------------------------------------------


@main.group()
def clients() -> None:
    """Register and list relying parties (OIDC clients)."""


def _read_jwks(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read a JWK set from {path}: {exc}") from exc
    if isinstance(data, dict) and "kty" in data:
        data = {"keys": [data]}
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise InvalidInput(f'{path} is not a JWK set ({{"keys": [...]}})')
    return data


@clients.command("create")
@click.option("--client-id", required=True, help="The client_id.")
@click.option("--secret", help="Client secret (default: generated and shown once).")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Redirect URI (repeatable).")
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    show_default=True,
    default=("authorization_code", "refresh_token"),
    help="Grant type (repeatable).",
)
@click.option("--scope", default="openid profile email", show_default=True, help="Allowed scopes.")
@click.option("--public", is_flag=True, help="A public client (no secret; PKCE required).")
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True, help="Post-logout redirect URI (repeatable).")
@click.option("--token-endpoint-auth-method", help="client_secret_basic (default), client_secret_post, private_key_jwt or none.")
@click.option("--skip-consent", is_flag=True, help="Do not ask users for consent (first-party apps).")
@click.option("--name", help="Display name (default: the client_id).")
@click.option("--no-require-pkce", is_flag=True, help="Allow confidential clients to omit PKCE.")
@click.option("--native", is_flag=True, help="A native app (application_type=native).")
@click.option("--id-token-alg", help="id_token_signed_response_alg (default: the server's).")
@click.option("--jwks-file", type=click.Path(dir_okay=False), help="The client's public keys (for private_key_jwt).")
@click.option(
    "--id-token-claims/--no-id-token-claims",
    default=None,
    help="Put the claims of the granted scopes (profile, email, phone, address) in the ID token too, or keep "
    "them in UserInfo only (default: the server's ID_TOKEN_SCOPE_CLAIMS).",
)
def clients_create(
    client_id: str,
    secret: str | None,
    redirect_uris: tuple[str, ...],
    grant_types: tuple[str, ...],
    scope: str,
    public: bool,
    post_logout_redirect_uris: tuple[str, ...],
    token_endpoint_auth_method: str | None,
    skip_consent: bool,
    name: str | None,
    no_require_pkce: bool,
    native: bool,
    id_token_alg: str | None,
    jwks_file: str | None,
    id_token_claims: bool | None,
) -> None:
    """Register a client and print it as JSON (a generated secret is shown only here)."""
    from .admin.service import client_as_dict, create_client
    from .storage import db

    app = _app()
    jwks = _read_jwks(jwks_file) if jwks_file else None
    with app.app_context():
        created = create_client(
            client_id,
            redirect_uris=redirect_uris,
            grant_types=grant_types,
            scope=scope,
            secret=secret,
            public=public,
            post_logout_redirect_uris=post_logout_redirect_uris,
            token_endpoint_auth_method=token_endpoint_auth_method,
            skip_consent=skip_consent,
            name=name,
            require_pkce=not no_require_pkce,
            application_type="native" if native else "web",
            id_token_signed_response_alg=id_token_alg,
            jwks=jwks,
            id_token_claims=id_token_claims,
        )
        db.session.commit()
        shown = created.secret if secret is None else None  # never echo a secret we were given
        click.echo(json.dumps(client_as_dict(created.client, shown), indent=2))


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
def clients_list(as_json: bool) -> None:
    """List clients (never their secrets)."""
    from .admin.service import client_as_dict, list_clients

    app = _app()
    with app.app_context():
        items = [client_as_dict(c) for c in list_clients()]
    if as_json:
        for item in items:
            click.echo(json.dumps(item))
        return
    _table(
        ["client_id", "name", "auth_method", "grant_types", "id_token_claims", "redirect_uris"],
        [
            [c["client_id"], c["client_name"], c["token_endpoint_auth_method"], ",".join(c["grant_types"]),
             {None: "default", True: "yes", False: "no"}[c["id_token_claims"]], " ".join(c["redirect_uris"])]
            for c in items
        ],
    )


# -- keys --------------------------------------------------------------------


@main.group()
def keys() -> None:
    """List and rotate the signing keys."""


@keys.command("list")
def keys_list() -> None:
    """List signing keys; `published` means the key is in /jwks."""
    app = _app()
    idp = app.extensions["visma_idp"]
    with app.app_context():
        horizon = idp.clock.now() - idp.keys.publish_window()
        rows = [
            [k.kid, k.alg, _when(k.created_at), _when(k.retired_at), "yes" if k.retired_at is None or k.retired_at > horizon else "no"]
            for k in idp.keys.list_all()
        ]
    _table(["kid", "alg", "created", "retired", "published"], rows)


@keys.command("rotate")
def keys_rotate() -> None:
    """Make a new active key for every algorithm and retire the old ones.

    Retired public keys stay in /jwks until every token they signed has expired.
    """
    from . import audit
    from .storage import db

    app = _app()
    idp = app.extensions["visma_idp"]
    with app.app_context():
        retired = [k.kid for k in idp.keys.list_all() if k.retired_at is None]
        fresh = idp.keys.rotate()
        audit.record("keys_rotated", details={"new": [k.kid for k in fresh], "retired": retired})
        db.session.commit()
        for key in fresh:
            click.echo(f"{key.alg:<6} {key.kid} active")


# -- purge -------------------------------------------------------------------


@main.command()
@click.option("--dry-run", is_flag=True, help="Only count what would go.")
@click.option("--batch", default=5000, show_default=True, type=click.IntRange(1),
              help="Rows per DELETE statement and transaction.")
def purge(dry_run: bool, batch: int) -> None:
    """Delete rows that have done their work: expired or used codes, links
    and tokens, ended sessions, sent mail, old text messages, given-up
    enrolments; audit events only with AUDIT_RETENTION_DAYS. Each is kept
    RETENTION_DAYS after it stopped being usable. Run it daily (cron or a
    systemd timer); it is safe beside running servers and workers."""
    from .maintenance import purge as run_purge

    app = _app()
    with app.app_context():
        counts = run_purge(dry_run=dry_run, batch=batch)
    _table(["table", "would go" if dry_run else "deleted"], [[table, n] for table, n in counts.items()])


# -- mail --------------------------------------------------------------------


@main.group()
def mail() -> None:
    """Outgoing mail: run the worker, read the outbox, retry failed messages."""


MAIL_BATCH = 100


def _mail_settings(idp) -> str:
    """Where mail goes, checked before the first round (a wrong SMTP_URL is exit status 2)."""
    from .notify.smtp import SmtpSettings

    url = idp.settings["SMTP_URL"]
    if not url:
        return "nowhere: SMTP_URL is not set, messages stay in the outbox"
    try:
        return SmtpSettings.from_url(url, idp.settings["SMTP_TIMEOUT"]).describe()
    except ValueError as exc:
        raise ConfigError("SMTP_URL", str(exc)) from None


@mail.command("worker")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds to wait between rounds when nothing more is due.")
def mail_worker(once: bool, interval: float) -> None:
    """Send due mail from the outbox, with retries, until stopped.

    Each round first turns due profile-change batches into messages, then
    sends what is due. SIGTERM or SIGINT let the current round finish, then
    the worker exits with status 0. Run as many workers as you like, on as
    many nodes: a message is claimed before it is sent, so none goes twice.
    """
    import signal
    import threading

    from .notify.outbox import run_once

    app = _app()
    idp = app.extensions["visma_idp"]
    click.echo(f"visma-idp mail worker: sending to {_mail_settings(idp)}")
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if not once and threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        while not stop.is_set():
            try:
                with app.app_context():
                    report = run_once(idp, limit=MAIL_BATCH)
            except Exception as exc:  # noqa: BLE001 - the database is away: try again next round
                if once:
                    raise InvalidInput(f"mail round failed: {type(exc).__name__}: {exc}") from exc
                click.echo(f"{_when(idp.clock.now())} mail round failed: {type(exc).__name__}: {exc}", err=True)
                stop.wait(interval)
                continue
            if report.tried or report.notices:
                click.echo(f"{_when(idp.clock.now())} {report}")
            if report.tried >= MAIL_BATCH:
                continue  # more is due: no pause
            if once:
                break
            stop.wait(interval)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not once:
        click.echo("visma-idp mail worker: stopped")


def _outbox_row(message_id: int):
    from .storage import MailOutbox, db

    row = db.session.get(MailOutbox, message_id)
    if row is None:
        raise InvalidInput(f"no message {message_id} in the outbox")
    return row


@mail.command("list")
@click.option("--status", type=click.Choice(["pending", "sent", "failed"]), help="Only messages in this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1), help="At most this many, newest first.")
def mail_list(status: str | None, limit: int) -> None:
    """List outbox messages (never their text: see `mail show`)."""
    from sqlalchemy import select

    from .storage import MailOutbox, db

    app = _app()
    with app.app_context():
        query = select(MailOutbox).order_by(MailOutbox.id.desc()).limit(limit)
        if status:
            query = query.where(MailOutbox.status == status)
        rows = [
            [m.id, _when(m.created_at), m.status, m.attempts, m.to_addr, m.kind, m.subject,
             _when(m.sent_at if m.status == "sent" else m.next_attempt_at if m.status == "pending" else None),
             (m.last_error or "")[:60] or None]
            for m in db.session.scalars(query)
        ]
    _table(["id", "created", "status", "tries", "to", "kind", "subject", "sent/next", "last_error"], rows)


@mail.command("show")
@click.argument("message_id", type=int)
@click.option("--html", "as_html", is_flag=True, help="Print the HTML part instead of the plain text.")
def mail_show(message_id: int, as_html: bool) -> None:
    """Print one message: its headers and its plain-text part."""
    app = _app()
    with app.app_context():
        m = _outbox_row(message_id)
        for label, value in (
            ("Message-ID", m.message_id), ("To", m.to_addr), ("Subject", m.subject), ("Kind", m.kind),
            ("Language", m.locale), ("Created", _when(m.created_at)), ("Status", m.status),
            ("Tries", m.attempts), ("Sent", _when(m.sent_at)),
            ("Next try", _when(m.next_attempt_at) if m.status == "pending" else None), ("Last error", m.last_error),
        ):
            if value is not None:
                click.echo(f"{label + ':':<12}{value}")
        click.echo("")
        click.echo((m.html_body if as_html else m.text_body).rstrip("\n"))


@mail.command("retry")
@click.argument("message_id", type=int, required=False)
@click.option("--failed", "all_failed", is_flag=True, help="Every failed message.")
def mail_retry(message_id: int | None, all_failed: bool) -> None:
    """Send a message again: a failed one goes back to pending with a fresh
    count of tries; a pending one is due at once. A sent message is never
    sent again."""
    from sqlalchemy import update

    from . import audit
    from .storage import MailOutbox, db

    if (message_id is None) == (not all_failed):
        raise InvalidInput("give a message id or --failed (not both)")
    app = _app()
    idp = app.extensions["visma_idp"]
    with app.app_context():
        now = idp.clock.now()
        if all_failed:
            where = [MailOutbox.status == "failed"]
        else:
            assert message_id is not None
            row = _outbox_row(message_id)
            if row.status == "sent":
                raise InvalidInput(f"message {message_id} was sent at {_when(row.sent_at)}; it is not sent twice")
            where = [MailOutbox.id == message_id, MailOutbox.status.in_(["failed", "pending"])]
        ids = list(db.session.scalars(db.select(MailOutbox.id).where(*where).order_by(MailOutbox.id)))
        if ids:
            db.session.execute(
                update(MailOutbox).where(MailOutbox.id.in_(ids), MailOutbox.status == "failed")
                .values(status="pending", attempts=0, lease_until=None, next_attempt_at=now),
                execution_options={"synchronize_session": False},
            )
            db.session.execute(
                update(MailOutbox).where(MailOutbox.id.in_(ids), MailOutbox.status == "pending")
                .values(next_attempt_at=now),
                execution_options={"synchronize_session": False},
            )
            audit.record("mail_retry", details={"messages": ids})
        db.session.commit()
    click.echo(f"{len(ids)} message(s) due now: {' '.join(map(str, ids)) or '-'}")


if __name__ == "__main__":  # pragma: no cover
    main()
