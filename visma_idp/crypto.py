"""Digests, keyed digests and encryption at rest.

* High-entropy random values we issue (codes, refresh tokens, session ids)
  are stored as SHA-256 digests: guessing is hopeless, so no key is needed.
* Client secrets may be chosen by people, so they are stored as HMAC-SHA-256
  keyed with a key derived from SECRET_KEY, and compared in constant time.
* Private signing keys are encrypted with Fernet (AES-128-CBC + HMAC) under a
  key derived from SECRET_KEY.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(value: str) -> str:
    """SHA-256 hex digest of a high-entropy value we generated."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def derive_key(secret_key: str, purpose: str, length: int = 32) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=f"visma_idp:{purpose}".encode()
    ).derive(secret_key.encode("utf-8"))


class Secrets:
    """Keyed operations bound to one SECRET_KEY (built once per app)."""

    def __init__(self, secret_key: str):
        self._hmac_key = derive_key(secret_key, "client-secret")
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret_key, "key-encryption")))

    def keyed_digest(self, value: str) -> str:
        return hmac.new(self._hmac_key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def check_keyed_digest(self, value: str, expected: str | None) -> bool:
        if not expected:
            # still spend the HMAC so timing does not tell "no secret" apart
            hmac.compare_digest(self.keyed_digest(value), "0" * 64)
            return False
        return hmac.compare_digest(self.keyed_digest(value), expected)

    def encrypt(self, data: bytes) -> str:
        return self._fernet.encrypt(data).decode("ascii")

    def decrypt(self, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode("ascii"))
        except InvalidToken as exc:
            raise ValueError(
                "cannot decrypt a stored secret (a private key or a queued message): was VISMA_IDP_SECRET_KEY changed?"
            ) from exc
