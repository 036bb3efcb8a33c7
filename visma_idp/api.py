"""The public Python API: what a host app does from its own code (a setup
script, a ``flask`` command, an admin page, a test fixture) that an operator
does with the ``visma-idp`` CLI. docs/embedding.md shows it step by step.

    from visma_idp import api
    api.upgrade_database(app)
    api.create_user(app, email="kari@example.no", name="Kari Nordmann", password="...")
    created = api.create_client(app, "expense", redirect_uris=["https://expense.example.com/callback"])
    created.secret                      # shown this once, stored only as a keyed digest

Rules:
- Every function takes the app (with ``IdentityProvider`` on it), runs in an
  app context of its own and commits what it did: one transaction per call,
  apart from any session the caller holds.
- Bad input raises :class:`InvalidInput` (the message says what and why) and
  writes nothing.
- Results are frozen records, usable after the call (no database session
  behind them). A client secret appears only in what ``create_client``
  returns, and only when it was generated there.
- Changes are audited as the same change from the CLI is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from .errors import InvalidInput

__all__ = [
    "ClientRecord", "InvalidInput", "KeyRecord", "UserRecord", "create_client", "create_user", "find_user",
    "list_clients", "list_keys", "list_users", "rotate_keys", "upgrade_database",
]


@dataclass(frozen=True)
class UserRecord:
    """A user as stored (never the password hash)."""

    id: int
    sub: str  #: the ``sub`` claim relying apps see
    email: str
    name: str
    status: str  #: ``active``, ``pending`` (not activated yet), ``locked`` or ``disabled``
    email_verified: bool
    locale: str | None
    created_at: int  #: Unix time


@dataclass(frozen=True)
class ClientRecord:
    """A registered relying party (OIDC client)."""

    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: str
    token_endpoint_auth_method: str
    application_type: str
    require_pkce: bool
    skip_consent: bool
    id_token_signed_response_alg: str | None
    #: scope claims in the ID token: None = the server's ID_TOKEN_SCOPE_CLAIMS
    id_token_claims: bool | None
    #: the generated secret, only in what ``create_client`` returns (never stored in clear)
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class KeyRecord:
    """A signing key (its public part is in ``/jwks`` while active or recently retired)."""

    kid: str
    alg: str
    created_at: int
    retired_at: int | None


def _idp(app: Flask):
    try:
        return app.extensions["visma_idp"]
    except KeyError:
        raise RuntimeError("the app has no identity provider: call IdentityProvider(app) first") from None


def _user(row) -> UserRecord:
    return UserRecord(id=row.id, sub=row.sub, email=row.email, name=row.name, status=row.status,
                      email_verified=bool(row.email_verified), locale=row.locale, created_at=row.created_at)


def _client(row, secret: str | None = None) -> ClientRecord:
    return ClientRecord(
        client_id=row.client_id, name=row.name, redirect_uris=tuple(row.redirect_uris),
        post_logout_redirect_uris=tuple(row.post_logout_redirect_uris or ()), grant_types=tuple(row.grant_types),
        scope=row.scope, token_endpoint_auth_method=row.token_endpoint_auth_method,
        application_type=row.application_type, require_pkce=row.require_pkce, skip_consent=row.skip_consent,
        id_token_signed_response_alg=row.id_token_signed_response_alg, id_token_claims=row.id_token_claims,
        secret=secret,
    )


def _key(row) -> KeyRecord:
    return KeyRecord(kid=row.kid, alg=row.alg, created_at=row.created_at, retired_at=row.retired_at)


# -- database --------------------------------------------------------------------


def upgrade_database(app: Flask) -> list[str]:
    """Migrate the provider's tables to this release and create the first
    signing keys if there are none (what ``visma-idp db upgrade`` does).
    Safe to run on every start, and from several processes at once (the keys).

    Args:
        app: the app with ``IdentityProvider`` on it.

    Returns:
        The kids of the signing keys created (empty when every algorithm had an active key).
    """
    from .migrate import upgrade

    _idp(app)
    return upgrade(app)


# -- users -----------------------------------------------------------------------


def create_user(app: Flask, *, email: str, name: str, password: str | None = None, invite: bool = True,
                locale: str | None = None) -> UserRecord:
    """Create a user, active with a password or invited to choose one.

    Args:
        app: the app with ``IdentityProvider`` on it.
        email: the sign-in address (stored in lower case).
        name: the full name.
        password: set it and the account is active at once (it must meet the
            password policy). Leave it out for a *pending* account that has no
            password until its owner follows the activation link.
        invite: for a pending account, queue the "Welcome" email with its
            activation link (sent by the mail worker, ACTIVATION_LIFETIME).
            Ignored when ``password`` is given.
        locale: the user's language (one of ``config.LOCALES``) for pages and email.

    Returns:
        The new user.

    Raises:
        InvalidInput: a bad or taken email address, a password the policy
            refuses, or an unknown locale.
    """
    from .admin.service import create_user as service_create_user
    from .config import LOCALES
    from .storage import db

    _idp(app)
    if locale is not None and locale not in LOCALES:
        raise InvalidInput(f"unknown locale {locale!r} (one of {', '.join(LOCALES)})")
    claims: dict[str, Any] = {"locale": locale} if locale else {}
    with app.app_context():
        row = service_create_user(email, name, password, invite=invite, **claims)
        db.session.commit()
        return _user(row)


def find_user(app: Flask, email: str) -> UserRecord | None:
    """The user with this sign-in address (any case), or None.

    Args:
        app: the app with ``IdentityProvider`` on it.
        email: the address to look for.

    Returns:
        The user, or None when no account has this address.
    """
    from .storage import queries

    _idp(app)
    with app.app_context():
        row = queries.user_by_email((email or "").strip().lower())
        return _user(row) if row is not None else None


def list_users(app: Flask) -> list[UserRecord]:
    """Every user, oldest first.

    Args:
        app: the app with ``IdentityProvider`` on it.

    Returns:
        The users.
    """
    from .admin.service import list_users as service_list_users

    _idp(app)
    with app.app_context():
        return [_user(row) for row in service_list_users()]


# -- clients ---------------------------------------------------------------------


def create_client(
    app: Flask,
    client_id: str,
    *,
    redirect_uris: list[str] | tuple[str, ...] = (),
    grant_types: list[str] | tuple[str, ...] = ("authorization_code", "refresh_token"),
    scope: str = "openid profile email",
    secret: str | None = None,
    public: bool = False,
    post_logout_redirect_uris: list[str] | tuple[str, ...] = (),
    token_endpoint_auth_method: str | None = None,
    skip_consent: bool = False,
    name: str | None = None,
    require_pkce: bool = True,
    application_type: str = "web",
    id_token_signed_response_alg: str | None = None,
    jwks: dict[str, Any] | None = None,
    id_token_claims: bool | None = None,
    requires_agreement: bool = False,
) -> ClientRecord:
    """Register a relying party (the same options as ``visma-idp clients create``).

    Args:
        app: the app with ``IdentityProvider`` on it.
        client_id: the client's id (1 to 128 characters, unique).
        redirect_uris: exact redirect URIs (https; http only on 127.0.0.1/localhost).
        grant_types: ``authorization_code``, ``refresh_token``, ``client_credentials``.
        scope: the scopes the client may ask for.
        secret: the client secret; default: a random one, returned once.
        public: a public client (no secret, PKCE required, auth method ``none``).
        post_logout_redirect_uris: where RP-initiated logout may return to.
        token_endpoint_auth_method: ``client_secret_basic`` (default),
            ``client_secret_post``, ``private_key_jwt`` or ``none``.
        skip_consent: a first-party app: users are not asked for consent.
        name: the name users see (default: the client_id).
        require_pkce: require PKCE from a confidential client too.
        application_type: ``web`` or ``native``.
        id_token_signed_response_alg: RS256 (the server's default), PS256, ES256 or EdDSA.
        jwks: the client's public keys (for ``private_key_jwt``).
        id_token_claims: put the claims of the granted scopes in the ID token
            too (True/False), or follow the server's ``ID_TOKEN_SCOPE_CLAIMS`` (None).
        requires_agreement: the app works only for people of an agreement
            (company); one without any sees a page saying so.

    Returns:
        The client; ``secret`` holds the generated secret (only here, only
        when it was generated), None otherwise.

    Raises:
        InvalidInput: a taken or bad client_id, an unsupported grant type or
            method, a redirect URI that is not absolute https, a combination
            that cannot work (e.g. a public client with client_credentials).
    """
    from .oidc.registration import create_client as service_create_client
    from .storage import db

    _idp(app)
    with app.app_context():
        created = service_create_client(
            client_id, redirect_uris=redirect_uris, grant_types=grant_types, scope=scope, secret=secret,
            public=public, post_logout_redirect_uris=post_logout_redirect_uris,
            token_endpoint_auth_method=token_endpoint_auth_method, skip_consent=skip_consent, name=name,
            require_pkce=require_pkce, application_type=application_type,
            id_token_signed_response_alg=id_token_signed_response_alg, jwks=jwks,
            id_token_claims=id_token_claims, requires_agreement=requires_agreement,
        )
        db.session.commit()
        return _client(created.client, created.secret if secret is None else None)


def list_clients(app: Flask) -> list[ClientRecord]:
    """Every registered client, oldest first (never a secret).

    Args:
        app: the app with ``IdentityProvider`` on it.

    Returns:
        The clients.
    """
    from .oidc.registration import list_clients as service_list_clients

    _idp(app)
    with app.app_context():
        return [_client(row) for row in service_list_clients()]


# -- signing keys ----------------------------------------------------------------


def list_keys(app: Flask) -> list[KeyRecord]:
    """Every signing key, oldest first (active ones have ``retired_at`` None).

    Args:
        app: the app with ``IdentityProvider`` on it.

    Returns:
        The keys (never a private part).
    """
    idp = _idp(app)
    with app.app_context():
        return [_key(row) for row in idp.keys.list_all()]


def rotate_keys(app: Flask) -> list[KeyRecord]:
    """Make a new active key for every algorithm and retire the old ones
    (what ``visma-idp keys rotate`` does). Retired public keys stay in
    ``/jwks`` until every token they signed has expired.

    Args:
        app: the app with ``IdentityProvider`` on it.

    Returns:
        The new active keys, one per algorithm.
    """
    idp = _idp(app)
    with app.app_context():
        return [_key(row) for row in idp.keys.rotate_audited()]
