"""The clients Authlib sees, and their per-process cache.

The token endpoint looks up its client on every request; reading it from the
database each time was two thirds of a client_credentials request (bench/).
A client found in the database is kept as a read-only snapshot for
``CLIENT_CACHE_SECONDS``; an unknown client id is never cached. A change to a
client (new secret, redirect URI, removal) reaches the process that made it
at once and every other process within that many seconds.

What the cache hands out is an :class:`OAuthClient`: the snapshot plus the
two checks of Authlib's ClientMixin that are the protocol's own, the redirect
URI rule (``checks/redirect_uri.py``) and the client secret against its keyed
digest (the app's :class:`~visma_idp.crypto.Secrets`, given when the
snapshot is made), so the stored registration (``storage/``) needs neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..crypto import Secrets
from ..storage import ClientSnapshot, queries
from .checks.redirect_uri import redirect_uri_matches


@dataclass(frozen=True)
class OAuthClient(ClientSnapshot):
    """A client as Authlib's ClientMixin wants it (a read-only snapshot)."""

    secrets: Secrets = field(repr=False, compare=False, kw_only=True)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri_matches(
            redirect_uri, self.redirect_uris, loopback_any_port=self.is_public and self.application_type == "native"
        )

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secrets.check_keyed_digest(client_secret, self.secret_digest)


class ClientCache:
    def __init__(self, idp) -> None:
        self.idp = idp
        self._entries: dict[str, tuple[float, OAuthClient]] = {}

    def get(self, client_id) -> OAuthClient | None:
        if not isinstance(client_id, str):
            return None
        ttl = self.idp.settings["CLIENT_CACHE_SECONDS"]
        now = self.idp.clock.time()
        entry = self._entries.get(client_id)
        if entry is not None and now - entry[0] < ttl:
            return entry[1]
        row = queries.client_by_id(client_id)
        if row is None:
            self._entries.pop(client_id, None)
            return None
        client = OAuthClient.of(row, secrets=self.idp.secrets)
        if ttl > 0:
            self._entries[client_id] = (now, client)
        return client

    def invalidate(self, client_id: str | None = None) -> None:
        if client_id is None:
            self._entries.clear()
        else:
            self._entries.pop(client_id, None)
