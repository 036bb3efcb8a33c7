"""What the system admins' console changes that ``agreements/service.py``
does not offer (yet): an agreement's required level and email domains, and
closing or reopening it.

Rules:
- the level is one of ``service.REQUIRE`` (``mfa``, ``phr``) or none; the
  domains are ASCII host names (``addresses.domain_name``: the one rule),
  stored sorted and without repeats;
- a closed agreement is out of use at once: its members no longer choose it
  at sign-in or switch to it with a refresh token (``storage/queries.py``
  reads active agreements only), and nobody can be invited to it; reopening
  brings back the memberships as they were;
- only a real change is stored and audited (``agreement_updated`` with the
  changed fields and the new values, ``agreement_closed``,
  ``agreement_reopened``, each naming the agreement for its audit log;
  ``by``: the admin who made it, left out for the operator); the caller
  commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import audit
from ..addresses import domain_name
from ..agreements.service import REQUIRE, by_details
from ..errors import InvalidInput
from ..storage import Agreement, User, db

STATUSES = ("active", "closed")


def require_of(agreement: Agreement) -> str | None:
    """The short word of the agreement's required level (``mfa``, ``phr``), or None."""
    return next((short for short, acr in REQUIRE.items() if acr == agreement.require_acr), None)


def update_agreement(agreement: Agreement, *, require: str | None, domains: Iterable[str],
                     by: User | None = None) -> list[str]:
    """Set the agreement's required level (``mfa``, ``phr`` or None) and its
    email domains. Returns the names of the changed fields (empty: nothing changed).

    Raises:
        InvalidInput: an unknown level or a bad domain (nothing is changed then).
    """
    if require is not None and require not in REQUIRE:
        raise InvalidInput("the required level is mfa, phr or none")
    wanted: dict[str, Any] = {"require_acr": REQUIRE[require] if require else None,
                              "domains": sorted({domain_name(d) for d in domains})}
    changed = [field for field, value in wanted.items() if getattr(agreement, field) != value]
    if not changed:
        return []
    for field in changed:
        setattr(agreement, field, wanted[field])
    db.session.flush()
    audit.record("agreement_updated", details={
        "agreement": agreement.public_id, "changed": changed, "require_acr": agreement.require_acr,
        "domains": list(agreement.domains), **by_details(by)}, agreement=agreement.public_id)
    return changed


def set_status(agreement: Agreement, status: str, *, by: User | None = None) -> bool:
    """Close (``closed``) or reopen (``active``) an agreement. Returns whether it changed.

    Raises:
        InvalidInput: another status.
    """
    if status not in STATUSES:
        raise InvalidInput(f"the status is {' or '.join(STATUSES)}")
    if agreement.status == status:
        return False
    agreement.status = status
    db.session.flush()
    audit.record("agreement_closed" if status == "closed" else "agreement_reopened",
                 details={"agreement": agreement.public_id, **by_details(by)}, agreement=agreement.public_id)
    return True
