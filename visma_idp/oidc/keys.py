"""Signing keys: generated into the database (private part encrypted),
parsed once per process and cached, looked at again every
KEY_CACHE_SECONDS for rotations made by another process or node.

One key per algorithm is active (the newest not retired). ``rotate()`` makes
a new key active for each algorithm and retires the old one; a retired
public key stays in the JWKS until every token it may have signed has
expired (the longest token lifetime after retirement), then drops out.

The first keys: ``visma-idp db upgrade`` (``migrate.upgrade``) creates them,
and so does the first request to an endpoint of ours that signs or
verifies (``ensure_active``, run before the endpoint writes anything), so a
fresh database never answers ``/jwks`` or ``/token`` with an error.
Creating and rotating take a lock on the key table first (PostgreSQL:
``LOCK TABLE``; SQLite: a write that takes the database's write lock), then
read again what is there: workers or nodes that start at once end with one
active key per algorithm, not one each.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey
from sqlalchemy import select, text

from ..storage import SigningKey, db

KEY_FACTORIES = {
    "RS256": lambda: RSAKey.generate_key(2048, private=True),
    "PS256": lambda: RSAKey.generate_key(2048, private=True),
    "ES256": lambda: ECKey.generate_key("P-256", private=True),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519", private=True),
}
ALGORITHMS = tuple(KEY_FACTORIES)


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    alg: str
    key: Any  # joserfc private key
    public_jwk: dict[str, Any]
    retired_at: int | None


def _import_private(alg: str, pem: bytes):
    if alg in ("RS256", "PS256"):
        return RSAKey.import_key(pem)
    if alg == "ES256":
        return ECKey.import_key(pem)
    return OKPKey.import_key(pem)


def new_key(alg: str, secrets, now: int) -> SigningKey:
    key: Any = KEY_FACTORIES[alg]()
    kid = uuid.uuid4().hex[:16]
    public = key.as_dict(private=False)
    public.update({"kid": kid, "alg": alg, "use": "sig"})
    pem = key.as_pem(private=True)
    return SigningKey(
        kid=kid, alg=alg, public_jwk=public, private_key_enc=secrets.encrypt(pem), created_at=now
    )


class KeyStore:
    """Per-process cache of the signing keys of one app."""

    def __init__(self, idp) -> None:
        self.idp = idp
        self._lock = threading.Lock()
        self._loaded_at = -1e18
        self._keys: dict[str, LoadedKey] = {}
        self._active: dict[str, LoadedKey] = {}
        self._jwks: dict[str, Any] = {"keys": []}
        self._public_set: KeySet | None = None
        self._last_forced = -1e18

    # -- management (CLI, start-up, first use) ----------------------------
    def ensure_keys(self) -> list[str]:
        """Create an active key for every algorithm that has none, in a
        transaction of its own (whatever the caller's session holds) under the
        key table's lock, and audit it. Safe when several processes do it at once.

        Returns:
            The new keys' kids (empty when every algorithm had its key).
        """
        from .. import audit

        assert self.idp.app is not None
        with self.idp.app.app_context():  # a session of its own, committed here
            _lock_key_table()
            existing = set(db.session.scalars(select(SigningKey.alg).where(SigningKey.retired_at.is_(None))))
            missing = [alg for alg in ALGORITHMS if alg not in existing]
            created: list[str] = []
            if missing:
                now = self.idp.clock.now()
                rows = [new_key(alg, self.idp.secrets, now) for alg in missing]
                db.session.add_all(rows)
                created = [row.kid for row in rows]
                audit.record("signing_keys_created", details={"new": created})
            db.session.commit()  # ends the transaction and its lock
        self.invalidate()  # ours, or those another process made while we waited for the lock
        return created

    def ensure_active(self) -> None:
        """Run before our protocol endpoints (they sign or verify): if an
        algorithm has no active key, create the missing ones
        (:meth:`ensure_keys`) before the request's own transaction writes
        anything (on SQLite a second writer would wait for it). Once the keys
        are loaded this is the cache's clock check."""
        self._refresh()
        if len(self._active) < len(ALGORITHMS):
            self.ensure_keys()
            self._refresh()

    def rotate(self, algs: tuple[str, ...] = ALGORITHMS) -> list[SigningKey]:
        """Make a new active key for each of ``algs`` and retire the old ones; commits."""
        _lock_key_table()
        now = self.idp.clock.now()
        old = db.session.scalars(
            select(SigningKey).where(SigningKey.retired_at.is_(None), SigningKey.alg.in_(algs))
        ).all()
        for row in old:
            row.retired_at = now
        fresh = [new_key(alg, self.idp.secrets, now) for alg in algs]
        db.session.add_all(fresh)
        db.session.commit()
        self.invalidate()
        return fresh

    def rotate_audited(self) -> list[SigningKey]:
        """:meth:`rotate` every algorithm now and audit it (``keys_rotated``:
        the new kids and the retired ones); commits (``visma-idp keys rotate``
        and the system admins' console)."""
        from .. import audit

        retired = [k.kid for k in self.list_all() if k.retired_at is None]
        fresh = self.rotate()
        audit.record("keys_rotated", details={"new": [k.kid for k in fresh], "retired": retired})
        db.session.commit()
        return fresh

    def publish_window(self) -> int:
        s = self.idp.settings
        return max(s["ID_TOKEN_LIFETIME"], s["ACCESS_TOKEN_LIFETIME"]) + 60

    # -- cached reads (request path) -------------------------------------
    def invalidate(self) -> None:
        self._loaded_at = -1e18

    def _refresh(self) -> None:
        now = self.idp.clock.time()
        if now - self._loaded_at < self.idp.settings["KEY_CACHE_SECONDS"]:
            return
        with self._lock:
            if now - self._loaded_at < self.idp.settings["KEY_CACHE_SECONDS"]:
                return
            horizon = int(now) - self.publish_window()
            rows = db.session.execute(
                select(SigningKey.kid, SigningKey.alg, SigningKey.public_jwk, SigningKey.private_key_enc,
                       SigningKey.retired_at, SigningKey.created_at)
                .where((SigningKey.retired_at.is_(None)) | (SigningKey.retired_at > horizon))
                .order_by(SigningKey.created_at, SigningKey.id)
            ).all()
            keys: dict[str, LoadedKey] = {}
            active: dict[str, LoadedKey] = {}
            for kid, alg, public_jwk, enc, retired_at, _created in rows:
                loaded = self._keys.get(kid)
                if loaded is None or loaded.retired_at != retired_at:
                    key = self._keys[kid].key if kid in self._keys else _import_private(
                        alg, self.idp.secrets.decrypt(enc))
                    loaded = LoadedKey(kid, alg, key, dict(public_jwk), retired_at)
                keys[kid] = loaded
                if retired_at is None:
                    active[alg] = loaded  # newest wins
            self._keys = keys
            self._active = active
            self._jwks = {"keys": [k.public_jwk for k in keys.values()]}
            # no keys yet (ensure_active creates them): an empty set, not joserfc's MissingKeyError
            self._public_set = KeySet.import_key_set(self._jwks) if keys else KeySet([])  # type: ignore[arg-type]
            self._loaded_at = now

    def loaded_algorithms(self) -> set[str]:
        """The algorithms this process holds an active key for, loading (never
        creating) them: what a readiness probe asks.

        Raises:
            Exception: a key this SECRET_KEY cannot decrypt or parse.
        """
        self._refresh()
        return set(self._active)

    def signing_key(self, alg: str) -> LoadedKey:
        self._refresh()
        if alg not in self._active and alg in KEY_FACTORIES:
            self.ensure_active()  # normally done before the request (ensure_active); here for other callers
        try:
            return self._active[alg]
        except KeyError:
            raise RuntimeError(f"no active signing key for {alg}") from None

    def jwks(self) -> dict[str, Any]:
        self._refresh()
        return self._jwks

    def public_key_set(self) -> KeySet:
        self._refresh()
        assert self._public_set is not None
        return self._public_set

    def verification_key(self, kid: str | None) -> LoadedKey | None:
        """The key with this ``kid``. An unknown kid may be a key another node
        just created: look again, at most once a second (so forged kids cannot
        make every request query the database)."""
        self._refresh()
        if not kid or not isinstance(kid, str):
            return None
        found = self._keys.get(kid)
        if found is None and len(kid) <= 64:
            now = self.idp.clock.time()
            if now - self._last_forced >= 1.0:
                self._last_forced = now
                self.invalidate()
                self._refresh()
                found = self._keys.get(kid)
        return found

    def list_all(self) -> list[SigningKey]:
        return list(db.session.scalars(select(SigningKey).order_by(SigningKey.created_at, SigningKey.id)))


def _lock_key_table() -> None:
    """Begin the session's transaction with the signing-key table locked
    against other writers (readers go on), until commit or rollback."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE"))
    else:  # SQLite: a write takes the database's write lock at once (readers go on, under WAL)
        db.session.execute(text("UPDATE signing_keys SET alg = alg WHERE 1 = 0"))
