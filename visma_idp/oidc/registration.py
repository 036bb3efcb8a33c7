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
- a secret (given, or generated: shown once) is stored only as its keyed
  digest; a public client is always held to PKCE.
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
) -> CreatedClient:
    """Register a client.

    ``requires_agreement``: the app works only for people of an agreement
    (company); a person without one gets a page saying so (docs/agreements.md).

    ``id_token_claims``: put the claims of the granted scopes in the ID token
    too (True), keep them in UserInfo only (False), or follow the server's
    ``ID_TOKEN_SCOPE_CLAIMS`` (None).
    """
    if not client_id or len(client_id) > 128:
        raise InvalidInput("client id must be 1 to 128 characters")
    if queries.client_by_id(client_id) is not None:
        raise InvalidInput(f"a client with id {client_id} already exists")
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
    for uri in list(redirect_uris) + list(post_logout_redirect_uris):
        scheme = uri.split(":", 1)[0] if ":" in uri else ""
        if "#" in uri or not URI_SCHEME.fullmatch(scheme) or any(c.isspace() for c in uri):
            raise InvalidInput(f"not an absolute URI without fragment: {uri}")
        if "://" not in uri:
            _check_private_use(uri, scheme, application_type)
        elif uri.startswith("http://") and not _loopback(uri) and application_type != "native":
            raise InvalidInput(f"redirect URIs must use https (http only for 127.0.0.1/localhost): {uri}")
    if "authorization_code" in grant_types and not redirect_uris:
        raise InvalidInput("the authorization_code grant needs at least one redirect URI")
    plain_secret = None
    if method in ("client_secret_basic", "client_secret_post"):
        plain_secret = secret or secrets.token_urlsafe(32)
    idp = current_idp()
    client = Client(
        client_id=client_id,
        secret_digest=idp.secrets.keyed_digest(plain_secret) if plain_secret else None,
        name=name or client_id,
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
        created_at=idp.clock.now(),
    )
    db.session.add(client)
    db.session.flush()
    idp.clients.invalidate(client_id)
    audit.record("client_created", client_id=client_id)
    return CreatedClient(client, plain_secret)


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
            "id_token_claims": client.id_token_claims, "requires_agreement": client.requires_agreement}
    if secret:
        data["client_secret"] = secret
    return data


def list_clients() -> list[Client]:
    return queries.all_clients()
