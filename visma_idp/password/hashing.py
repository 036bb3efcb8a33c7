"""Argon2id password hashing (argon2-cffi) at OWASP's parameters by default.

``verify`` spends the same work whether or not the user exists (it checks a
dummy hash for unknown users), and ``needs_rehash`` tells the login to store
a fresh hash when the configured parameters changed.

Passwords are hashed and checked in Unicode NFC, so "é" typed as one code
point on one device and as "e" plus a combining accent on another is the same
password (the policy counts length in NFC too). A hash made from a password
that was not in NFC before this rule still verifies: when the NFC form does
not match, the password as typed is tried as well (for either kind of user,
so the work stays the same whether or not the account exists).

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
import unicodedata
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
        return self._executor().submit(self._ph.hash, unicodedata.normalize("NFC", password)).result()

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Constant-work check; ``stored_hash=None`` (unknown user) is always False."""
        normal = unicodedata.normalize("NFC", password)
        if self._check(stored_hash, normal):
            return stored_hash is not None
        return normal != password and self._check(stored_hash, password) and stored_hash is not None

    def _check(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._executor().submit(self._ph.verify, stored_hash or self._dummy, password).result()
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

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
