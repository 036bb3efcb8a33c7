"""Registering relying parties (OIDC clients): the checks a registration
must pass, and the client as the CLI and the Python API show it.

Rules (each refusal is :class:`~visma_idp.errors.InvalidInput` naming why):
- a client id of 1 to 128 characters, not taken;
- grant types among :data:`GRANT_TYPES`, an auth method among
  :data:`AUTH_METHODS`; a public client uses ``none`` and never
  ``client_credentials``; ``private_key_jwt`` needs the client's public keys,
  and a JWK set holding a private key is refused; an ID-token algorithm
  must be one the server signs with;
- redirect and post-logout URIs absolute, without fragment, https (plain
  http only on 127.0.0.1/localhost, or for native apps); a native app may
  also use a private-use scheme named after its domain
  (``com.example.app:/callback``, RFC 8252 §7.1); the
  ``authorization_code`` grant needs at least one redirect URI;
- a back-channel logout URI (OIDC Back-Channel Logout 1.0 §2.2) is an
  absolute https URL (plain http only on a loopback host), without fragment;
  logout tokens are sent there when a session the client took part in ends
  (``oidc/backchannel.py``);
- a secret (given, or generated: shown once) is stored only as its keyed
  digest; a public client is always held to PKCE.

Managing a registered client (:func:`find_client`, :func:`update_client`,
:func:`rotate_secret`; the CLI and the system admins' console call them, no
Flask request needed): a change passes the same checks as a registration
(the same functions), is audited (``client_updated`` with the names of the
changed fields, ``client_secret_rotated``) and reaches this process's client
cache at once (``oidc/clients.py``; other processes within
``CLIENT_CACHE_SECONDS``). A new secret is returned once and stored only as
its digest; a client without a secret (public, ``private_key_jwt``) gets
none. The caller commits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from .. import audit
from ..context import current_idp
from ..errors import InvalidInput
from ..storage import Client, db, queries
from ..urls import URI_SCHEME
from .client_assertion import public_keys
from .keys import ALGORITHMS

GRANT_TYPES = {"authorization_code", "refresh_token", "client_credentials"}
AUTH_METHODS = {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
SECRET_METHODS = ("client_secret_basic", "client_secret_post")  # the methods that use a client secret
MAX_NAME = 200  # characters of a client's display name (its column)
MAX_URI = 2000  # characters of a back-channel logout URI (its column)


class _Unset:
    """The default of an argument that was not given (None is a value: "no URI")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass
class CreatedClient:
    client: Client
    secret: str | None


def create_client(
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
    jwks: dict | None = None,
    id_token_claims: bool | None = None,
    requires_agreement: bool = False,
    backchannel_logout_uri: str | None = None,
    backchannel_logout_session_required: bool = False,
    frontchannel_logout_uri: str | None = None,
    frontchannel_logout_session_required: bool = False,
) -> CreatedClient:
    """Register a client.

    ``backchannel_logout_uri``: where the client wants logout tokens (OIDC
    Back-Channel Logout 1.0), with ``backchannel_logout_session_required``
    when it needs their ``sid`` (``oidc/backchannel.py`` always sends it).
    ``frontchannel_logout_uri``: the page the provider's logout page loads in
    a hidden iframe (OIDC Front-Channel Logout 1.0), with ``iss`` and ``sid``
    (always sent; ``frontchannel_logout_session_required`` records that the
    client needs them).

    ``requires_agreement``: the app works only for people of an agreement
    (company); a person without one gets a page saying so (docs/agreements.md).

    ``id_token_claims``: put the claims of the granted scopes in the ID token
    too (True), keep them in UserInfo only (False), or follow the server's
    ``ID_TOKEN_SCOPE_CLAIMS`` (None).
    """
    check_client_id(client_id)
    bad = set(grant_types) - GRANT_TYPES
    if bad:
        raise InvalidInput(f"unsupported grant type(s): {', '.join(sorted(bad))}")
    method = token_endpoint_auth_method or ("none" if public else "client_secret_basic")
    if method not in AUTH_METHODS:
        raise InvalidInput(f"unsupported token endpoint auth method: {method}")
    if public and method != "none":
        raise InvalidInput("a public client uses token endpoint auth method 'none'")
    if method == "none" and "client_credentials" in grant_types:
        raise InvalidInput("a public client cannot use client_credentials")
    if method == "private_key_jwt" and not jwks:
        raise InvalidInput("private_key_jwt needs the client's public keys (jwks)")
    if jwks is not None:
        try:
            public_keys(jwks)
        except ValueError as exc:
            raise InvalidInput(f"unusable jwks: {exc}") from None
        if any(isinstance(key, dict) and "d" in key for key in jwks["keys"]):
            raise InvalidInput("the jwks holds a private key: register only the client's public keys")
    if id_token_signed_response_alg and id_token_signed_response_alg not in ALGORITHMS:
        raise InvalidInput(f"unsupported id_token_signed_response_alg: {id_token_signed_response_alg}")
    check_redirect_uris(list(redirect_uris) + list(post_logout_redirect_uris), application_type)
    check_has_redirect_uri(grant_types, redirect_uris)
    name = check_name(name) if name else client_id
    backchannel_logout_uri = check_backchannel_logout_uri(backchannel_logout_uri)
    frontchannel_logout_uri = check_frontchannel_logout_uri(frontchannel_logout_uri)
    plain_secret = None
    if method in SECRET_METHODS:
        plain_secret = secret or new_secret()
    idp = current_idp()
    client = Client(
        client_id=client_id,
        secret_digest=idp.secrets.keyed_digest(plain_secret) if plain_secret else None,
        name=name,
        redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=list(post_logout_redirect_uris),
        grant_types=list(dict.fromkeys(grant_types)),
        response_types=["code"] if "authorization_code" in grant_types else [],
        scope=" ".join(dict.fromkeys(scope.split())),
        token_endpoint_auth_method=method,
        application_type=application_type,
        require_pkce=True if method == "none" else require_pkce,
        skip_consent=skip_consent,
        id_token_signed_response_alg=id_token_signed_response_alg,
        jwks=jwks,
        id_token_claims=id_token_claims,
        requires_agreement=requires_agreement,
        backchannel_logout_uri=backchannel_logout_uri,
        backchannel_logout_session_required=bool(backchannel_logout_session_required),
        frontchannel_logout_uri=frontchannel_logout_uri,
        frontchannel_logout_session_required=bool(frontchannel_logout_session_required),
        created_at=idp.clock.now(),
    )
    db.session.add(client)
    db.session.flush()
    idp.clients.invalidate(client_id)
    audit.record("client_created", client_id=client_id)
    return CreatedClient(client, plain_secret)


def check_client_id(client_id: str) -> None:
    """A new client's id: 1 to 128 characters, not taken.

    Raises:
        InvalidInput: too short, too long or taken.
    """
    if not isinstance(client_id, str) or not client_id or len(client_id) > 128:
        raise InvalidInput("client id must be 1 to 128 characters")
    if queries.client_by_id(client_id) is not None:
        raise InvalidInput(f"a client with id {client_id} already exists")


def new_secret() -> str:
    """A new random client secret (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def check_redirect_uris(uris: list[str], application_type: str) -> None:
    """Redirect and post-logout redirect URIs: absolute, no fragment, https
    (http on a loopback host, or for a native app), or a native app's private-use scheme.

    Raises:
        InvalidInput: naming the first URI that is refused.
    """
    for uri in uris:
        if not isinstance(uri, str):
            raise InvalidInput(f"not an absolute URI without fragment: {uri!r}")
        scheme = uri.split(":", 1)[0] if ":" in uri else ""
        if "#" in uri or not URI_SCHEME.fullmatch(scheme) or any(c.isspace() for c in uri):
            raise InvalidInput(f"not an absolute URI without fragment: {uri}")
        if "://" not in uri:
            _check_private_use(uri, scheme, application_type)
        elif uri.startswith("http://") and not _loopback(uri) and application_type != "native":
            raise InvalidInput(f"redirect URIs must use https (http only for 127.0.0.1/localhost): {uri}")


def check_has_redirect_uri(grant_types: list[str] | tuple[str, ...], redirect_uris: list[str] | tuple[str, ...]
                            ) -> None:
    if "authorization_code" in grant_types and not redirect_uris:
        raise InvalidInput("the authorization_code grant needs at least one redirect URI")


def check_name(name: str) -> str:
    """A display name: 1 to :data:`MAX_NAME` characters once spaces are tidied."""
    tidy = " ".join(str(name).split())
    if not 0 < len(tidy) <= MAX_NAME:
        raise InvalidInput(f"a client name is 1 to {MAX_NAME} characters")
    return tidy


def check_backchannel_logout_uri(uri: object) -> str | None:
    """A back-channel logout URI (OIDC Back-Channel Logout 1.0 §2.2): an
    absolute https URL (plain http only on a loopback host), without fragment
    or credentials; None or empty: none.

    Raises:
        InvalidInput: anything else.
    """
    return _logout_uri(uri, "back-channel")


def check_frontchannel_logout_uri(uri: object) -> str | None:
    """A front-channel logout URI (OIDC Front-Channel Logout 1.0 §2): the same
    rules as the back-channel one (its query is kept; ``iss`` and ``sid``
    are added to it)."""
    return _logout_uri(uri, "front-channel")


def _logout_uri(uri: object, kind: str) -> str | None:
    from urllib.parse import urlsplit

    if uri is None or uri == "":
        return None
    if not isinstance(uri, str) or len(uri) > MAX_URI or any(c.isspace() for c in uri) or not uri.isascii():
        raise InvalidInput(f"not a {kind} logout URI (an absolute https URL): {str(uri)[:100]}")
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        raise InvalidInput(f"not a {kind} logout URI (an absolute https URL): {uri}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInput(f"not a {kind} logout URI (an absolute https URL): {uri}")
    if "#" in uri:
        raise InvalidInput(f"a {kind} logout URI has no fragment: {uri}")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"a {kind} logout URI carries no user name or password: {uri}")
    if parts.scheme == "http" and not _loopback(uri):
        raise InvalidInput(f"a {kind} logout URI must use https (http only for 127.0.0.1/localhost): {uri}")
    return uri


# never a redirect target, whatever the app says it is
_FORBIDDEN_SCHEMES = {"javascript", "data", "vbscript", "file", "about", "blob", "filesystem", "http", "https"}


def _check_private_use(uri: str, scheme: str, application_type: str) -> None:
    """A redirect URI without an authority (``com.example.app:/callback``):
    RFC 8252 §7.1's private-use scheme, for native apps only, named after a
    domain the app's maker controls (a dot in the scheme), with a path."""
    if application_type != "native":
        raise InvalidInput(f"a URI without '//' (a private-use scheme) is only for native apps: {uri}")
    if scheme.lower() in _FORBIDDEN_SCHEMES:
        raise InvalidInput(f"not a redirect URI: {uri}")
    if "." not in scheme:
        raise InvalidInput(f"a private-use scheme must be a reversed domain name, like com.example.app: {uri}")
    if not uri[len(scheme) + 1:].startswith("/"):
        raise InvalidInput(f"a private-use redirect URI needs a path, like {scheme}:/callback: {uri}")


def _loopback(uri: str) -> bool:
    from urllib.parse import urlsplit

    return urlsplit(uri).hostname in {"127.0.0.1", "localhost", "::1"}


def client_as_dict(client: Client, secret: str | None = None) -> dict[str, Any]:
    data = {"client_id": client.client_id, **client.client_metadata,
            "require_pkce": client.require_pkce, "skip_consent": client.skip_consent,
            "id_token_claims": client.id_token_claims, "requires_agreement": client.requires_agreement,
            "backchannel_logout_uri": client.backchannel_logout_uri,
            "backchannel_logout_session_required": bool(client.backchannel_logout_session_required),
            "frontchannel_logout_uri": client.frontchannel_logout_uri,
            "frontchannel_logout_session_required": bool(client.frontchannel_logout_session_required)}
    if secret:
        data["client_secret"] = secret
    return data


def list_clients() -> list[Client]:
    return queries.all_clients()


# -- managing a registered client -----------------------------------------------------------


def find_client(client_id: str) -> Client | None:
    """The registered client with this id (None: no such client, or not a possible id)."""
    return queries.client_by_id(client_id)


def has_secret(client: Client) -> bool:
    """Whether the client authenticates with a secret (so it can get a new one)."""
    return client.token_endpoint_auth_method in SECRET_METHODS


def rotate_secret(client: Client) -> str:
    """Give ``client`` a new random secret, stored as its keyed digest (as
    :func:`create_client` does); the old one stops working at once in this
    process, in the others within ``CLIENT_CACHE_SECONDS``. Returns the new
    secret: the only time it is seen. Audited ``client_secret_rotated``; the caller commits.

    Raises:
        InvalidInput: a public client or a ``private_key_jwt`` client (no secret to rotate).
    """
    if not has_secret(client):
        raise InvalidInput(f"the client {client.client_id} authenticates with "
                           f"{client.token_endpoint_auth_method}: it has no secret to rotate")
    idp = current_idp()
    plain = new_secret()
    client.secret_digest = idp.secrets.keyed_digest(plain)
    db.session.flush()
    idp.clients.invalidate(client.client_id)
    audit.record("client_secret_rotated", client_id=client.client_id)
    return plain


def update_client(
    client: Client,
    *,
    name: str | None = None,
    redirect_uris: list[str] | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    backchannel_logout_uri: str | None | object = UNSET,
    backchannel_logout_session_required: bool | None = None,
    frontchannel_logout_uri: str | None | object = UNSET,
    frontchannel_logout_session_required: bool | None = None,
) -> Client:
    """Change a registered client: each argument given (not None; for
    ``backchannel_logout_uri`` not :data:`UNSET`, None or "" removing the
    URI) replaces the stored value, after the checks :func:`create_client`
    makes. Only a real change is stored and audited (``client_updated`` with
    the names of the changed fields); the client cache forgets the client.
    The caller commits.

    Raises:
        InvalidInput: a value :func:`create_client` would refuse (nothing is changed then).
    """
    wanted: dict[str, Any] = {}
    if name is not None:
        wanted["name"] = check_name(name)
    if redirect_uris is not None:
        uris = list(dict.fromkeys(redirect_uris))
        check_redirect_uris(uris, client.application_type)
        check_has_redirect_uri(client.grant_types, uris)
        wanted["redirect_uris"] = uris
    if post_logout_redirect_uris is not None:
        uris = list(dict.fromkeys(post_logout_redirect_uris))
        check_redirect_uris(uris, client.application_type)
        wanted["post_logout_redirect_uris"] = uris
    if backchannel_logout_uri is not UNSET:
        wanted["backchannel_logout_uri"] = check_backchannel_logout_uri(backchannel_logout_uri)
    if backchannel_logout_session_required is not None:
        wanted["backchannel_logout_session_required"] = bool(backchannel_logout_session_required)
    if frontchannel_logout_uri is not UNSET:
        wanted["frontchannel_logout_uri"] = check_frontchannel_logout_uri(frontchannel_logout_uri)
    if frontchannel_logout_session_required is not None:
        wanted["frontchannel_logout_session_required"] = bool(frontchannel_logout_session_required)
    changed = sorted(field for field, value in wanted.items() if getattr(client, field) != value)
    if not changed:
        return client
    for field in changed:
        setattr(client, field, wanted[field])
    db.session.flush()
    current_idp().clients.invalidate(client.client_id)
    audit.record("client_updated", client_id=client.client_id, details={"changed": changed})
    return client
