"""Signing keys: generated into the database (private part encrypted),
parsed once per process and cached, looked at again every
KEY_CACHE_SECONDS for rotations made by another process or node.

One key per algorithm is active (the newest not retired). ``rotate()`` makes
a new key active for each algorithm and retires the old one; a retired
public key stays in the JWKS until every token it may have signed has
expired (the longest token lifetime after retirement), then drops out.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey
from sqlalchemy import select

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

    # -- management (CLI, start-up) -------------------------------------
    def ensure_keys(self) -> list[str]:
        """Create an active key for every algorithm that has none. Returns new kids."""
        now = self.idp.clock.now()
        existing = {
            row.alg
            for row in db.session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None)))
        }
        created = []
        for alg in ALGORITHMS:
            if alg not in existing:
                row = new_key(alg, self.idp.secrets, now)
                db.session.add(row)
                created.append(row.kid)
        if created:
            db.session.commit()
            self.invalidate()
        return created

    def rotate(self, algs: tuple[str, ...] = ALGORITHMS) -> list[SigningKey]:
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
            self._public_set = KeySet.import_key_set(self._jwks)  # type: ignore[arg-type]
            self._loaded_at = now

    def signing_key(self, alg: str) -> LoadedKey:
        self._refresh()
        try:
            return self._active[alg]
        except KeyError:
            raise RuntimeError(f"no active signing key for {alg}: run `visma-idp keys rotate`") from None

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
