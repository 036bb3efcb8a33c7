"""Per-process cache of registered clients.

The token endpoint looks up its client on every request; reading it from the
database each time was two thirds of a client_credentials request (bench/).
A client found in the database is kept as a read-only snapshot for
``CLIENT_CACHE_SECONDS``; an unknown client id is never cached. A change to a
client (new secret, redirect URI, removal) reaches the process that made it
at once and every other process within that many seconds.
"""

from __future__ import annotations

from ..storage import ClientSnapshot, queries


class ClientCache:
    def __init__(self, idp) -> None:
        self.idp = idp
        self._entries: dict[str, tuple[float, ClientSnapshot]] = {}

    def get(self, client_id) -> ClientSnapshot | None:
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
        snapshot = ClientSnapshot.of(row)
        if ttl > 0:
            self._entries[client_id] = (now, snapshot)
        return snapshot

    def invalidate(self, client_id: str | None = None) -> None:
        if client_id is None:
            self._entries.clear()
        else:
            self._entries.pop(client_id, None)
