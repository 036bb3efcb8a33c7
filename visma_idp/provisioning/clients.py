"""Provisioning clients: the payroll and HR systems allowed to push people
into one agreement over SCIM.

Rules:
- A client belongs to exactly one agreement; everything it reads or writes is
  its own resources in that agreement (``store.py`` scopes every statement by
  the client).
- Its bearer token is shown once, when it is created or rotated, and stored
  only as a keyed digest (HMAC with the app's key); rotating it ends the old
  token at once. A token is looked up by its digest, so a wrong token costs the
  same as a right one and tells nothing.
- ``authoritative_for`` names the person attributes (``sources.ATTRIBUTES``)
  this client is the configured authority for in its agreement.
- Creating, rotating, changing and removing a client are audited in the
  agreement's log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, or_, select

from .. import audit
from ..context import current_idp
from ..crypto import random_token
from ..errors import InvalidInput
from ..storage import Agreement, AttributeSource, ProvisioningClient, ProvisioningConflict, db
from .sources import ATTRIBUTES

TOKEN_PREFIX = "scim_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Issued:
    """A client and its new bearer token (the only time the token is known)."""

    client: ProvisioningClient
    token: str


def _new_token() -> tuple[str, str]:
    raw = TOKEN_PREFIX + random_token(32)
    return raw, current_idp().secrets.keyed_digest(raw)


def check_attributes(names: Iterable[str]) -> list[str]:
    """``names`` as a sorted list of known attributes.

    Raises:
        InvalidInput: a name that is not one of ``sources.ATTRIBUTES``.
    """
    out = sorted(set(names))
    for name in out:
        if name not in ATTRIBUTES:
            raise InvalidInput(f"--authoritative-for: {name!r} is not one of {', '.join(ATTRIBUTES)}")
    return out


def create(agreement: Agreement, name: str, *, authoritative_for: Iterable[str] = ()) -> Issued:
    """Register a provisioning client of ``agreement``; the caller commits.

    Raises:
        InvalidInput: a bad or taken name, or an unknown attribute.
    """
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"--name: letters, digits, _ . - (up to 64), starting with a letter or digit: {name!r}")
    if by_name(name) is not None:
        raise InvalidInput(f"--name: a provisioning client named {name!r} already exists")
    raw, digest = _new_token()
    row = ProvisioningClient(name=name, agreement_id=agreement.id, token_digest=digest,
                             authoritative_for=check_attributes(authoritative_for),
                             created_at=current_idp().clock.now())
    db.session.add(row)
    db.session.flush()
    audit.record("provisioning_client_created", subject=name, agreement=agreement.public_id,
                 details={"agreement": agreement.public_id, "authoritative_for": row.authoritative_for})
    return Issued(row, raw)


def rotate(row: ProvisioningClient) -> Issued:
    """Give ``row`` a new token; the old one stops working at once. The caller commits."""
    raw, digest = _new_token()
    row.token_digest = digest
    row.rotated_at = current_idp().clock.now()
    audit.record("provisioning_token_rotated", subject=row.name, agreement=row.agreement.public_id)
    return Issued(row, raw)


def set_authority(row: ProvisioningClient, attributes: Iterable[str]) -> bool:
    """Make ``row`` the configured authority for exactly ``attributes``; the caller commits."""
    wanted = check_attributes(attributes)
    if wanted == list(row.authoritative_for or []):
        return False
    row.authoritative_for = wanted
    audit.record("provisioning_authority_changed", subject=row.name, agreement=row.agreement.public_id,
                 details={"authoritative_for": wanted})
    return True


def remove(row: ProvisioningClient) -> None:
    """Delete ``row`` and its resources (the accounts and memberships they made
    stay); the caller commits. The attributes it owned have no owner any more
    (the next source takes them) and its open conflicts go: a source that no
    longer exists must not keep an attribute, nor pass it on to a client that
    later gets the same row id (SQLite reuses the highest one)."""
    owned = db.session.execute(
        delete(AttributeSource).where(AttributeSource.source == row.source),
    ).rowcount  # type: ignore[attr-defined]
    conflicts = db.session.execute(delete(ProvisioningConflict).where(
        ProvisioningConflict.resolved_at.is_(None),
        or_(ProvisioningConflict.current_source == row.source, ProvisioningConflict.other_source == row.source)),
    ).rowcount  # type: ignore[attr-defined]
    audit.record("provisioning_client_removed", subject=row.name, agreement=row.agreement.public_id,
                 details={"attributes": owned, "conflicts": conflicts})
    db.session.delete(row)


def by_name(name: str) -> ProvisioningClient | None:
    return db.session.scalar(select(ProvisioningClient).where(ProvisioningClient.name == name))


def of_agreement(agreement_id: int) -> list[ProvisioningClient]:
    return list(db.session.scalars(select(ProvisioningClient).where(ProvisioningClient.agreement_id == agreement_id)
                                   .order_by(ProvisioningClient.name)))


def all_clients() -> list[ProvisioningClient]:
    return list(db.session.scalars(select(ProvisioningClient).order_by(ProvisioningClient.name)))


def by_source(source: str) -> ProvisioningClient | None:
    """The client a source name (``scim:<id>``) stands for, if it still exists."""
    kind, _, ident = source.partition(":")
    if kind != "scim" or not ident.isdigit():
        return None
    return db.session.get(ProvisioningClient, int(ident))


def authenticate(token: str | None) -> ProvisioningClient | None:
    """The client whose bearer token is ``token``, if its agreement is active."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = current_idp().secrets.keyed_digest(token)
    row = db.session.scalar(select(ProvisioningClient).where(ProvisioningClient.token_digest == digest))
    if row is None or row.agreement.status != "active":
        return None
    return row
