"""Introspection answers kept in process, and the revocation counter that
makes a revocation on any node visible to every node at once.

Introspecting one of our JWT access tokens means checking its signature and
asking the database whether it was revoked (``server.find_token``). A token
found live is kept here, keyed by its SHA-256, with the value of the shared
**revocation counter** read just before the database said "live". Every
commit that revoked a token raises the counter (``INCR`` in Redis, after the
commit); each introspection reads it (one ``GET``) and uses a kept answer
only when the counter has not moved since. So a revocation committed on node
A makes every node's kept answers stale for the next introspection there:
they are checked against the database again (and kept again if still live).

The order makes it safe: the counter is read *before* the database check
and raised *after* the revoking commit, so an answer kept with counter value
N was checked after every revocation that had raised it to N, and any later
revocation raises it past N.

Without Redis (``REDIS_URL`` unset), or with ``INTROSPECTION_CACHE_SECONDS``
at 0, nothing is kept: several worker processes or nodes could not tell one
another. When Redis does not answer, nothing kept is used (every
introspection goes to the database, as without the cache) and Redis is left
alone for a second before the next try, so a dead Redis costs one timeout
per second, not one per request. A kept answer is used at most
``INTROSPECTION_CACHE_SECONDS`` after it was checked, and never after the
token's ``exp``: that also bounds a revocation whose ``INCR`` was lost
(Redis went away between the commit and the ``INCR``; logged).

What marks a revocation: ``storage.queries`` sets ``tokens_revoked`` in the
SQLAlchemy session's ``info`` whenever an UPDATE revoked rows (or a revoked
row was added); :func:`install` raises the counter after that session
commits.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any

from sqlalchemy import event

log = logging.getLogger("visma_idp.revocations")

COUNTER_KEY = "visma_idp:revocations"
MAX_ENTRIES = 20_000
PAUSE_AFTER_FAILURE = 1.0


class RevocationCounter:
    """The shared counter in Redis; ``None`` from :meth:`read` means "unknown"."""

    def __init__(self, url: str, *, timeout: float = 0.25) -> None:
        import redis

        self._r = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._errors = (redis.RedisError, OSError)
        self._paused_until = 0.0

    def _failed(self, what: str, exc: BaseException) -> None:
        if time.monotonic() >= self._paused_until:
            log.warning("revocation counter: Redis %s failed (%s); kept introspections are not used",
                        what, type(exc).__name__)
        self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE

    def read(self) -> int | None:
        if time.monotonic() < self._paused_until:
            return None
        try:
            value = self._r.get(COUNTER_KEY)
        except self._errors as exc:
            self._failed("GET", exc)
            return None
        return int(value or 0)

    def raise_(self) -> None:
        try:
            self._r.incr(COUNTER_KEY)
        except self._errors as exc:
            # readers whose Redis works keep their answers up to INTROSPECTION_CACHE_SECONDS
            log.error("revocation counter: INCR failed after a revocation (%s); other nodes may answer "
                      "'active' for up to INTROSPECTION_CACHE_SECONDS", type(exc).__name__)
            self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE


class IntrospectionCache:
    """Live introspection answers of JWT access tokens, per process."""

    def __init__(self, counter: RevocationCounter | None, max_age: int) -> None:
        self.counter = counter if max_age > 0 else None
        self.max_age = max_age
        self._entries: dict[bytes, tuple[int | None, float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.counter is not None

    @staticmethod
    def key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

    def read_counter(self) -> int | None:
        return self.counter.read() if self.counter is not None else None

    def get(self, token: str, now: int) -> dict[str, Any] | None:
        """A kept live answer for ``token``, if the counter has not moved since
        it was checked and it is neither expired nor older than the max age."""
        if self.counter is None:
            return None
        entry = self._entries.get(self.key(token))
        if entry is None:
            return None
        counter = self.counter.read()
        checked_counter, checked_at, payload = entry
        if counter is None or counter != checked_counter or payload["exp"] <= now \
                or time.monotonic() - checked_at >= self.max_age:
            return None
        return payload

    def keep(self, token: str, payload: dict[str, Any], counter: int | None) -> None:
        """Keep a live answer checked against the database after ``counter`` was read."""
        if self.counter is None or counter is None:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()  # simpler than LRU, and refilled by the next requests
            self._entries[self.key(token)] = (counter, time.monotonic(), payload)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def install() -> None:
    """Raise the counter after each commit that revoked tokens (once per process)."""
    if getattr(install, "_done", False):
        return
    install._done = True  # type: ignore[attr-defined]

    from flask import current_app, has_app_context

    def after_commit(session) -> None:
        if not session.info.pop("tokens_revoked", False) or not has_app_context():
            return
        current = current_app.extensions.get("visma_idp")
        cache = getattr(current, "introspection_cache", None)
        if cache is not None and cache.counter is not None:
            cache.counter.raise_()

    from sqlalchemy.orm import Session

    # a mark left by a rolled-back revocation only costs one needless INCR at the next commit
    event.listen(Session, "after_commit", after_commit)
