"""The ``visma-idp clients``, ``visma-idp keys`` and ``visma-idp logout``
commands: register, list and change relying parties (and give one a new
secret), list and rotate the signing keys, run the back-channel logout
worker and look at its queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..cli_support import provider_app, run_rounds, table, when
from ..errors import InvalidInput


@click.group()
def clients() -> None:
    """Register, list and change relying parties (OIDC clients)."""


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
@click.option("--requires-agreement", is_flag=True,
              help="The app works only for people of an agreement (company): one without any sees a page saying "
                   "so and whom to ask.")
@click.option("--backchannel-logout-uri",
              help="Where the app wants logout tokens (OIDC Back-Channel Logout): an absolute https URL (http only "
                   "on 127.0.0.1/localhost), no fragment. Logout tokens go there when a session it took part in ends.")
@click.option("--backchannel-logout-session-required", is_flag=True,
              help="The app needs the sid claim in its logout tokens.")
@click.option("--frontchannel-logout-uri",
              help="The app's page that the logout page loads in a hidden iframe (OIDC Front-Channel Logout), "
                   "with iss and sid: an absolute https URL (http only on 127.0.0.1/localhost), no fragment.")
@click.option("--frontchannel-logout-session-required", is_flag=True,
              help="The app needs iss and sid on its front-channel logout URI (they are always sent).")
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
    requires_agreement: bool,
    backchannel_logout_uri: str | None,
    backchannel_logout_session_required: bool,
    frontchannel_logout_uri: str | None,
    frontchannel_logout_session_required: bool,
) -> None:
    """Register a client and print it as JSON (a generated secret is shown only here)."""
    from ..storage import db
    from .registration import client_as_dict, create_client

    app = provider_app()
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
            requires_agreement=requires_agreement,
            backchannel_logout_uri=backchannel_logout_uri,
            backchannel_logout_session_required=backchannel_logout_session_required,
            frontchannel_logout_uri=frontchannel_logout_uri,
            frontchannel_logout_session_required=frontchannel_logout_session_required,
        )
        db.session.commit()
        shown = created.secret if secret is None else None  # never echo a secret we were given
        click.echo(json.dumps(client_as_dict(created.client, shown), indent=2))


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
def clients_list(as_json: bool) -> None:
    """List clients (never their secrets)."""
    from .registration import client_as_dict, list_clients

    app = provider_app()
    with app.app_context():
        items = [client_as_dict(c) for c in list_clients()]
    if as_json:
        for item in items:
            click.echo(json.dumps(item))
        return
    table(
        ["client_id", "name", "auth_method", "grant_types", "id_token_claims", "redirect_uris"],
        [
            [c["client_id"], c["client_name"], c["token_endpoint_auth_method"], ",".join(c["grant_types"]),
             {None: "default", True: "yes", False: "no"}[c["id_token_claims"]], " ".join(c["redirect_uris"])]
            for c in items
        ],
    )


def _client(client_id: str):
    from .registration import find_client

    client = find_client(client_id)
    if client is None:
        raise InvalidInput(f"--client-id: no client {client_id!r} (see `visma-idp clients list`)")
    return client


@clients.command("rotate-secret")
@click.option("--client-id", required=True, help="The client_id.")
def clients_rotate_secret(client_id: str) -> None:
    """Give a client a new random secret and print it once (it is stored only as a digest).

    The old secret stops working at once on this node, on the others within
    CLIENT_CACHE_SECONDS. A public or private_key_jwt client has no secret.
    """
    from ..storage import db
    from .registration import rotate_secret

    app = provider_app()
    with app.app_context():
        secret = rotate_secret(_client(client_id))
        db.session.commit()
    click.echo(f"new secret for {client_id}: {secret}")
    click.echo("it is not shown again; the old secret no longer works", err=True)


@clients.command("update")
@click.option("--client-id", required=True, help="The client_id.")
@click.option("--name", help="A new display name.")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="Redirect URI (repeatable): the ones given replace all registered ones.")
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True,
              help="Post-logout redirect URI (repeatable): the ones given replace all registered ones.")
@click.option("--no-post-logout-redirect-uris", is_flag=True, help="Remove every post-logout redirect URI.")
@click.option("--backchannel-logout-uri", help="A new back-channel logout URI (https; logout tokens go there).")
@click.option("--no-backchannel-logout-uri", is_flag=True, help="Remove the back-channel logout URI.")
@click.option("--backchannel-logout-session-required/--no-backchannel-logout-session-required", default=None,
              help="Whether the app needs the sid claim in its logout tokens.")
@click.option("--frontchannel-logout-uri", help="A new front-channel logout URI (https; loaded in an iframe on logout).")
@click.option("--no-frontchannel-logout-uri", is_flag=True, help="Remove the front-channel logout URI.")
@click.option("--frontchannel-logout-session-required/--no-frontchannel-logout-session-required", default=None,
              help="Whether the app needs iss and sid on its front-channel logout URI.")
def clients_update(client_id: str, name: str | None, redirect_uris: tuple[str, ...],
                   post_logout_redirect_uris: tuple[str, ...], no_post_logout_redirect_uris: bool,
                   backchannel_logout_uri: str | None, no_backchannel_logout_uri: bool,
                   backchannel_logout_session_required: bool | None, frontchannel_logout_uri: str | None,
                   no_frontchannel_logout_uri: bool, frontchannel_logout_session_required: bool | None) -> None:
    """Change a client (what is not given stays) and print it as JSON (never its secret)."""
    from ..storage import db
    from .registration import UNSET, client_as_dict, update_client

    if post_logout_redirect_uris and no_post_logout_redirect_uris:
        raise InvalidInput("use either --post-logout-redirect-uri or --no-post-logout-redirect-uris, not both")
    if backchannel_logout_uri is not None and no_backchannel_logout_uri:
        raise InvalidInput("use either --backchannel-logout-uri or --no-backchannel-logout-uri, not both")
    if frontchannel_logout_uri is not None and no_frontchannel_logout_uri:
        raise InvalidInput("use either --frontchannel-logout-uri or --no-frontchannel-logout-uri, not both")
    app = provider_app()
    with app.app_context():
        client = update_client(
            _client(client_id),
            name=name,
            redirect_uris=list(redirect_uris) if redirect_uris else None,
            post_logout_redirect_uris=[] if no_post_logout_redirect_uris else (
                list(post_logout_redirect_uris) if post_logout_redirect_uris else None),
            backchannel_logout_uri=None if no_backchannel_logout_uri else (
                backchannel_logout_uri if backchannel_logout_uri is not None else UNSET),
            backchannel_logout_session_required=backchannel_logout_session_required,
            frontchannel_logout_uri=None if no_frontchannel_logout_uri else (
                frontchannel_logout_uri if frontchannel_logout_uri is not None else UNSET),
            frontchannel_logout_session_required=frontchannel_logout_session_required,
        )
        db.session.commit()
        click.echo(json.dumps(client_as_dict(client), indent=2))


@click.group()
def keys() -> None:
    """List and rotate the signing keys."""


@keys.command("list")
def keys_list() -> None:
    """List signing keys; `published` means the key is in /jwks."""
    app = provider_app()
    idp = app.extensions["visma_idp"]
    with app.app_context():
        horizon = idp.clock.now() - idp.keys.publish_window()
        rows = [
            [k.kid, k.alg, when(k.created_at), when(k.retired_at), "yes" if k.retired_at is None or k.retired_at > horizon else "no"]
            for k in idp.keys.list_all()
        ]
    table(["kid", "alg", "created", "retired", "published"], rows)


@keys.command("rotate")
def keys_rotate() -> None:
    """Make a new active key for every algorithm and retire the old ones.

    Retired public keys stay in /jwks until every token they signed has expired.
    """
    app = provider_app()
    idp = app.extensions["visma_idp"]
    with app.app_context():
        fresh = idp.keys.rotate_audited()
        for key in fresh:
            click.echo(f"{key.alg:<6} {key.kid} active")


@click.group()
def logout() -> None:
    """Back-channel logout: the worker that tells relying apps a session ended, and its queue."""


@logout.command("worker")
@click.option("--once", is_flag=True, help="Queue and send what is due now, then exit.")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds to wait between rounds when nothing more is due.")
def logout_worker(once: bool, interval: float) -> None:
    """Tell relying apps that sessions ended (back-channel logout), with retries, until stopped.

    Each round queues the logout tokens of sessions that ended or expired,
    then sends what is due. SIGTERM or SIGINT let the round finish. Run as
    many as you like: a session is queued once and a token is claimed before
    it is sent, so none goes twice.
    """
    from .backchannel import run_once

    app = provider_app()
    idp = app.extensions["visma_idp"]
    click.echo("visma-idp logout worker: telling relying apps when sessions end")
    run_rounds(app, "logout", lambda: run_once(idp), once=once, interval=interval,
               worth_telling=lambda report: report.tried or report.queued)


@logout.command("list")
@click.option("--status", type=click.Choice(["pending", "sent", "failed"]), help="Only deliveries in this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1), help="How many, newest first.")
def logout_list(status: str | None, limit: int) -> None:
    """List back-channel logout deliveries, newest first (never a token)."""
    from .backchannel import newest

    app = provider_app()
    with app.app_context():
        rows = [[r.id, r.client_id, r.reason, r.status, r.attempts, when(r.created_at), when(r.sent_at),
                 (r.last_error or "")[:60] or None] for r in newest(limit=limit, status=status)]
    table(["id", "client", "reason", "status", "tries", "queued", "sent", "last error"], rows)


@logout.command("retry")
@click.argument("delivery_id", required=False, type=int)
@click.option("--failed", "all_failed", is_flag=True, help="Every failed delivery.")
def logout_retry(delivery_id: int | None, all_failed: bool) -> None:
    """Send a failed back-channel logout again (the worker sends it on its next round)."""
    from ..storage import db
    from .backchannel import retry

    if (delivery_id is None) == (not all_failed):
        raise InvalidInput("give a delivery id or --failed")
    app = provider_app()
    idp = app.extensions["visma_idp"]
    with app.app_context():
        ids = retry(idp, delivery_id=delivery_id)
        db.session.commit()
    if delivery_id is not None and not ids:
        raise InvalidInput(f"no failed or pending delivery {delivery_id} (see `visma-idp logout list`)")
    click.echo(f"queued again: {', '.join(map(str, ids)) or 'none'}")
