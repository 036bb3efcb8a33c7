"""Throttling of failed logins, per account and per client IP.

After ``THROTTLE_FREE_ATTEMPTS`` failures an account must wait a growing
delay (1 s, 2 s, 4 s, …) between attempts; at ``THROTTLE_MAX_FAILURES`` it
is locked for ``THROTTLE_LOCK_SECONDS``. An IP with
``THROTTLE_IP_MAX_FAILURES`` failures is locked the same way. Failures are
counted for unknown accounts too, so a lock says nothing about existence.
Counts older than ``THROTTLE_WINDOW_SECONDS`` (or the lock, if longer) are
forgotten.

An attempt is counted when it is let through (:meth:`Throttle.attempt`),
before the password is checked, against the account and against the client
IP, each atomically. So many guesses sent in parallel, at one account or at
many accounts from one IP, cannot all pass the check before the first failure
is written. A good login clears the account's count and gives the IP back the
one it took (:meth:`Throttle.succeeded`), so the IP's count is its failures
plus its attempts in flight, and many good logins from one office do not lock
it.

Growing locks (``growing=True``, used for the second step, whose answers
are short codes once the password is known): each lock of a key within
``SECOND_STEP_LOCK_MEMORY_SECONDS`` of the previous one lasts twice as long
(``THROTTLE_LOCK_SECONDS``, then twice that, ...) up to
``SECOND_STEP_MAX_LOCK_SECONDS``; a success forgets them. Without it a
lock equal to the counting window let a guesser start afresh after every
lock, about 900 guesses a day; with the defaults it is at most 70 on the
first day and 10 on each later one (docs/two-step.md; a test plays the
guesser for a day of app time). Password locks stay fixed, so nobody can
lock someone else out of their account for a day. An admin who issues the
user a one-time code lifts the second step's lock (:meth:`Throttle.clear`).

State lives in memory (one process) or in Redis when ``REDIS_URL`` is set
(shared by every worker and node); while Redis does not answer, in the
database (:class:`FallbackStore`: never "let it through"). Times come from
the app clock.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .. import observability

log = logging.getLogger("visma_idp.throttle")

# seconds the caller must still wait, given (count, time of last count, now)
WaitRule = Callable[[int, float, float], int]


def _no_wait(count: int, last: float, now: float) -> int:
    return 0


@dataclass
class Verdict:
    wait_seconds: int = 0
    locked: bool = False

    @property
    def allowed(self) -> bool:
        return self.wait_seconds <= 0


class MemoryStore:
    def __init__(self, sweep_at: int = 10_000) -> None:
        self._data: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._min_sweep = self._sweep_at = sweep_at

    def __len__(self) -> int:
        return len(self._data)

    def _sweep(self, now: float, window: int) -> None:
        # a spray of made-up addresses must not grow the table without end
        if len(self._data) > self._sweep_at:
            self._data = {k: v for k, v in self._data.items() if now - v[1] <= window}
            self._sweep_at = max(self._min_sweep, 2 * len(self._data))

    def _read(self, key: str, now: float, window: int) -> tuple[int, float]:
        count, last = self._data.get(key, (0, 0.0))
        if count and now - last > window:
            self._data.pop(key, None)
            return 0, 0.0
        return count, last

    def get(self, key: str, now: float, window: int) -> tuple[int, float]:
        with self._lock:
            return self._read(key, now, window)

    def take(self, key: str, now: float, window: int, wait: WaitRule = _no_wait) -> tuple[int, int]:
        """Atomically: if ``wait`` says go, add one to the count. Returns (count, seconds to wait)."""
        with self._lock:
            count, last = self._read(key, now, window)
            seconds = wait(count, last, now)
            if seconds > 0:
                return count, seconds
            self._data[key] = (count + 1, now)
            self._sweep(now, window)
            return count + 1, 0

    def give_back(self, key: str) -> None:
        """Take one off the count (never below zero), keeping its time."""
        with self._lock:
            count, last = self._data.get(key, (0, 0.0))
            if count > 1:
                self._data[key] = (count - 1, last)
            elif count == 1:
                self._data.pop(key, None)

    def reset(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)


# one atomic step on the server: n - 1 when n > 0
_GIVE_BACK = """
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if n > 0 then redis.call('HSET', KEYS[1], 'n', n - 1) end
return n
"""


class RedisStore:
    """The same operations on Redis hashes ``{n, last}``; ``take`` is an
    optimistic WATCH/MULTI transaction, retried when another node got there first."""

    def __init__(self, url: str, prefix: str = "visma_idp:throttle:") -> None:
        import redis

        self._r = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._watch_error = redis.WatchError
        self._prefix = prefix
        self._give_back = self._r.register_script(_GIVE_BACK)

    @staticmethod
    def _parse(values, now: float, window: int) -> tuple[int, float]:
        count, last = int(values[0] or 0), float(values[1] or 0)
        if count and now - last > window:
            return 0, 0.0  # Redis expiry runs on real time; the app clock decides
        return count, last

    def get(self, key: str, now: float, window: int) -> tuple[int, float]:
        return self._parse(self._r.hmget(self._prefix + key, "n", "last"), now, window)

    def take(self, key: str, now: float, window: int, wait: WaitRule = _no_wait) -> tuple[int, int]:
        name = self._prefix + key
        with self._r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(name)
                    count, last = self._parse(pipe.hmget(name, "n", "last"), now, window)
                    seconds = wait(count, last, now)
                    if seconds > 0:
                        pipe.unwatch()
                        return count, seconds
                    pipe.multi()
                    pipe.hset(name, mapping={"n": count + 1, "last": repr(now)})
                    pipe.expire(name, window)
                    pipe.execute()
                    return count + 1, 0
                except self._watch_error:
                    continue

    def give_back(self, key: str) -> None:
        self._give_back(keys=[self._prefix + key])

    def reset(self, key: str) -> None:
        self._r.delete(self._prefix + key)


class DatabaseStore:
    """The same operations on the ``throttle_counts`` table, each in its own
    short transaction on its own connection (never the request's): the
    fallback while Redis does not answer. ``take`` inserts the row if it is
    missing, then reads it ``FOR UPDATE`` (PostgreSQL locks the row; SQLite's
    INSERT already holds the database's write lock), so concurrent attempts on
    several nodes are counted one after another as in Redis. Keys are stored
    as their SHA-256 (no address or email in the table). ``app``: whose
    database (the store may be used outside a request or app context)."""

    def __init__(self, app) -> None:
        self.app = app
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:
            from ..storage import db

            with self.app.app_context():
                self._engine = db.engine
        return self._engine

    @staticmethod
    def _key(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    @staticmethod
    def _insert(conn, key: str):
        from sqlalchemy.dialects import postgresql, sqlite

        from ..storage import ThrottleCount

        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        return dialect.insert(ThrottleCount).values(key=key, n=0, last=0.0).on_conflict_do_nothing()

    def get(self, key: str, now: float, window: int) -> tuple[int, float]:
        from sqlalchemy import select

        from ..storage import ThrottleCount

        with self.engine.connect() as conn:
            row = conn.execute(select(ThrottleCount.n, ThrottleCount.last)
                               .where(ThrottleCount.key == self._key(key))).first()
        if row is None or (row.n and now - row.last > window):
            return 0, 0.0
        return int(row.n), float(row.last)

    def take(self, key: str, now: float, window: int, wait: WaitRule = _no_wait) -> tuple[int, int]:
        from sqlalchemy import select, update

        from ..storage import ThrottleCount

        name = self._key(key)
        with self.engine.begin() as conn:
            conn.execute(self._insert(conn, name))
            row = conn.execute(select(ThrottleCount.n, ThrottleCount.last)
                               .where(ThrottleCount.key == name).with_for_update()).one()
            count, last = int(row.n), float(row.last)
            if count and now - last > window:
                count, last = 0, 0.0
            seconds = wait(count, last, now)
            if seconds > 0:
                return count, seconds
            conn.execute(update(ThrottleCount).where(ThrottleCount.key == name).values(n=count + 1, last=now))
            return count + 1, 0

    def give_back(self, key: str) -> None:
        from sqlalchemy import update

        from ..storage import ThrottleCount

        with self.engine.begin() as conn:
            conn.execute(update(ThrottleCount).where(ThrottleCount.key == self._key(key), ThrottleCount.n > 0)
                         .values(n=ThrottleCount.n - 1))

    def reset(self, key: str) -> None:
        from sqlalchemy import delete

        from ..storage import ThrottleCount

        with self.engine.begin() as conn:
            conn.execute(delete(ThrottleCount).where(ThrottleCount.key == self._key(key)))


class FallbackStore:
    """Redis first; while it does not answer, the database (never "let it
    through"). After a failure Redis is left alone for ``pause`` seconds, so
    a dead Redis costs one timeout per pause, not one per attempt. The two
    keep separate counts: a key counted in one is not seen in the other
    (docs/operations.md says what that means)."""

    def __init__(self, primary, secondary, *, pause: float = 5.0) -> None:
        import redis

        self.primary = primary
        self.secondary = secondary
        self.pause = pause
        self._errors = (redis.RedisError, OSError)
        self._down_until = 0.0

    def _call(self, name: str, *args):
        if time.monotonic() >= self._down_until:
            try:
                return getattr(self.primary, name)(*args)
            except self._errors as exc:
                if time.monotonic() >= self._down_until:
                    log.error("throttle: Redis does not answer (%s); counting in the database for %ss",
                              type(exc).__name__, self.pause)
                self._down_until = time.monotonic() + self.pause
        return getattr(self.secondary, name)(*args)

    def get(self, key: str, now: float, window: int) -> tuple[int, float]:
        return self._call("get", key, now, window)

    def take(self, key: str, now: float, window: int, wait: WaitRule = _no_wait) -> tuple[int, int]:
        return self._call("take", key, now, window, wait)

    def give_back(self, key: str) -> None:
        self._call("give_back", key)

    def reset(self, key: str) -> None:
        self._call("reset", key)


class Throttle:
    def __init__(self, settings: dict, clock, store=None, *, app=None) -> None:
        """``app``: whose database keeps the counts while Redis does not answer."""
        self.s = settings
        self.clock = clock
        if store is None:
            store = (FallbackStore(RedisStore(settings["REDIS_URL"]), DatabaseStore(app)) if settings["REDIS_URL"]
                     else MemoryStore())
        self.store = store

    @property
    def _window(self) -> int:
        return max(self.s["THROTTLE_WINDOW_SECONDS"], self.s["THROTTLE_LOCK_SECONDS"])

    def _lock_seconds(self, locks: int) -> int:
        """The length of a key's ``locks``-th lock in a row (fixed when 0 or 1)."""
        base = self.s["THROTTLE_LOCK_SECONDS"]
        if locks <= 1:
            return base
        return max(base, min(base * 2 ** min(locks - 1, 40), self.s["SECOND_STEP_MAX_LOCK_SECONDS"]))

    def _locks(self, account: str, now: float) -> int:
        return self.store.get("locks:" + account, now, self.s["SECOND_STEP_LOCK_MEMORY_SECONDS"])[0]

    def _account_wait_rule(self, lock_seconds: int) -> WaitRule:
        free, most = self.s["THROTTLE_FREE_ATTEMPTS"], self.s["THROTTLE_MAX_FAILURES"]

        def wait(count: int, last: float, now: float) -> int:
            if count >= most:
                return int(last + lock_seconds - now + 0.999)
            if count > free:
                return int(last + 2 ** (count - free - 1) - now + 0.999)
            return 0

        return wait

    def _account_wait(self, count: int, last: float, now: float) -> int:
        return self._account_wait_rule(self.s["THROTTLE_LOCK_SECONDS"])(count, last, now)

    def _account_verdict(self, count: int, seconds: int) -> Verdict:
        return Verdict(seconds, locked=count >= self.s["THROTTLE_MAX_FAILURES"])

    def _ip_wait(self, count: int, last: float, now: float) -> int:
        if count < self.s["THROTTLE_IP_MAX_FAILURES"]:
            return 0
        return int(last + self.s["THROTTLE_LOCK_SECONDS"] - now + 0.999)

    def attempt(self, account: str | None, ip: str | None, *, growing: bool = False) -> Verdict:
        """Let one attempt through or not, and count it against the IP and the
        account (``None``: the IP only) if it goes.

        The counts stand as a failure unless :meth:`succeeded` clears them.
        ``growing``: repeated locks of this account key grow (see the module doc);
        pass the same to :meth:`failed`.
        """
        now = self.clock.time()
        kind, verdict = "ip", Verdict()
        if ip:
            _count, seconds = self.store.take("ip:" + ip, now, self._window, self._ip_wait)
            if seconds > 0:
                verdict = Verdict(seconds, locked=True)
        if account is not None and verdict.allowed:
            kind = "account"
            lock = self._lock_seconds(self._locks(account, now)) if growing else self.s["THROTTLE_LOCK_SECONDS"]
            count, seconds = self.store.take("acct:" + account, now, max(self._window, lock),
                                             self._account_wait_rule(lock))
            if seconds > 0:
                if ip:
                    self.store.give_back("ip:" + ip)  # held back: no guess was made
                verdict = self._account_verdict(count, seconds)
        if not verdict.allowed:
            observability.throttle_hit(kind, locked=verdict.locked)
        return verdict

    def failed(self, account: str | None, ip: str | None, *, growing: bool = False) -> Verdict:
        """A let-through attempt failed (its counts stand); returns what the account faces next."""
        if account is None:
            return Verdict()
        now = self.clock.time()
        count, last = self.store.get("acct:" + account, now, self._window)
        lock = self.s["THROTTLE_LOCK_SECONDS"]
        if growing and count >= self.s["THROTTLE_MAX_FAILURES"]:
            # this failure locks the key: one more lock in a row
            locks, _ = self.store.take("locks:" + account, now, self.s["SECOND_STEP_LOCK_MEMORY_SECONDS"])
            lock = self._lock_seconds(locks)
        verdict = self._account_verdict(count, self._account_wait_rule(lock)(count, last, now))
        if not verdict.allowed:
            observability.throttle_trip(locked=verdict.locked)
        return verdict

    def clear(self, account: str, *, growing: bool = False) -> bool:
        """An admin's action: forget the account key's count (and its growing
        locks), as a success would. Returns whether the key was held back
        (waiting or locked) at that moment."""
        now = self.clock.time()
        count, last = self.store.get("acct:" + account, now, self._window)
        lock = self._lock_seconds(self._locks(account, now)) if growing else self.s["THROTTLE_LOCK_SECONDS"]
        held = self._account_wait_rule(lock)(count, last, now) > 0
        self.succeeded(account)
        return held

    def succeeded(self, account: str | None, ip: str | None = None) -> None:
        """A let-through attempt succeeded: clear the account's count (and its
        growing locks) and give the IP back the attempt (pass ``ip`` only after
        :meth:`attempt`)."""
        if account is not None:
            self.store.reset("acct:" + account)
            self.store.reset("locks:" + account)
        if ip:
            self.store.give_back("ip:" + ip)
