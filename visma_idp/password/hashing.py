"""Argon2id password hashing (argon2-cffi) at OWASP's parameters by default.

``verify`` spends the same work whether or not the user exists (it checks a
dummy hash for unknown users), and ``needs_rehash`` tells the login to store
a fresh hash when the configured parameters changed.

Hashes run on a small pool of dedicated threads, ``concurrency`` of them
(default: one per CPU the process may use); the request thread waits for the
result. Two reasons, both measured on this project's bench machine with
``taskset -c 0``:

- Eight hashes at once on one core evict each other's 19 MiB from the CPU
  caches: 50 verifications/s one at a time, 36/s eight at a time.
- Each thread that runs a hash gets its own malloc arena, and the 19 MiB are
  page-faulted in again almost every time: eight request threads taking turns
  had 649 minor page faults per hash, one dedicated thread 82 and then none.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Hasher:
    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int, concurrency: int = 0):
        self._ph = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
            hash_len=32, salt_len=16, type=Type.ID,
        )
        self.concurrency = concurrency or usable_cpus()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._dummy = self._ph.hash("visma_idp dummy password for unknown users")

    def _executor(self) -> ThreadPoolExecutor:
        # made on first use in each process: threads do not survive a fork
        # (gunicorn workers fork from a master that may have built the app)
        pool = self._pool
        if pool is not None and self._pool_pid == os.getpid():
            return pool
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="argon2")
                self._pool_pid = os.getpid()
            return self._pool

    def hash(self, password: str) -> str:
        return self._executor().submit(self._ph.hash, password).result()

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Constant-work check; ``stored_hash=None`` (unknown user) is always False."""
        try:
            ok = self._executor().submit(self._ph.verify, stored_hash or self._dummy, password).result()
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return ok and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._ph.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. under ``taskset``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
