"""Argon2id password hashing (argon2-cffi) at OWASP's parameters by default.

``verify`` spends the same work whether or not the user exists (it checks a
dummy hash for unknown users), and ``needs_rehash`` tells the login to store
a fresh hash when the configured parameters changed.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Hasher:
    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int):
        self._ph = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
            hash_len=32, salt_len=16, type=Type.ID,
        )
        self._dummy = self._ph.hash("visma_idp dummy password for unknown users")

    def hash(self, password: str) -> str:
        return self._ph.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Constant-work check; ``stored_hash=None`` (unknown user) is always False."""
        try:
            ok = self._ph.verify(stored_hash or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return ok and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._ph.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True
