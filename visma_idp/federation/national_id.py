"""National identity numbers: linking one to an account, and finding the account.

Rules:
- the number comes from a national eID upstream (ID-porten: ``pid``;
  BankID OIDC: ``nnin_altsub``; the claim is set per upstream) and is checked
  by ``national_id_number.py`` (both check digits, D- and H-numbers,
  synthetic test numbers only from an upstream marked as a test environment,
  the 2032 rule);
- it is stored as a keyed digest (to find it) and encrypted (to show it,
  always masked: ``010190*****``); one account per number, one number per
  account;
- a number linked to another account is never moved: the person sees which
  account has it (its address masked, ``h***@g***.com``) and how to unlink it
  there; the attempt is audited and that account's owner is emailed;
- the upstream's ``acr`` becomes the session's (``assurance.py`` ranks
  ``idporten-loa-high`` as phishing-resistant, the others as two factors), and
  its ``amr`` (a string or a list) joins ``fed``;
- linking and unlinking (after the password again) are audited and emailed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..assurance import AMR_FEDERATED, national_level
from ..context import current_idp
from ..notify import messages
from ..storage import NationalIdentity, Upstream, User, db
from .linking import upstream_amr
from .national_id_number import InvalidNationalId, mask, mask_email, parse


class NumberRefused(Exception):
    """The upstream gave no usable number (``reason`` is audited)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Proof:
    """What a national eID sign-in proved: the number and how strongly."""

    number: str
    acr: str | None
    amr: list[str]

    @property
    def masked(self) -> str:
        return mask(self.number)


def proof(row: Upstream, claims: dict[str, Any]) -> Proof:
    """The number and level in checked ID token ``claims`` of national eID upstream ``row``.

    Raises:
        NumberRefused: no number, an invalid one, or an eID level we do not know.
    """
    assert row.national_id_claim
    raw = claims.get(row.national_id_claim)
    if not isinstance(raw, str):
        raise NumberRefused(f"no {row.national_id_claim} claim")
    try:
        number = parse(raw, test_environment=row.test_environment).number
    except InvalidNationalId as exc:
        raise NumberRefused(f"invalid number ({exc.reason})") from None
    acr = claims.get("acr")
    if not isinstance(acr, str) or national_level(acr) is None:
        raise NumberRefused(f"unknown eID level {acr!r}")
    return Proof(number, acr, list(dict.fromkeys([AMR_FEDERATED, *upstream_amr(claims.get("amr"))])))


def _digest(number: str) -> str:
    return current_idp().secrets.keyed_digest("national-id:" + number)


def owner(number: str) -> NationalIdentity | None:
    return db.session.scalar(select(NationalIdentity).where(NationalIdentity.digest == _digest(number)))


def of_user(user_id: int) -> NationalIdentity | None:
    return db.session.scalar(select(NationalIdentity).where(NationalIdentity.user_id == user_id))


@dataclass(frozen=True)
class LinkOutcome:
    """``linked`` (now), ``already`` (to this account), ``other`` (another account has it:
    ``other_email`` masked), or ``has_other`` (this account has another number)."""

    status: str
    masked: str
    other_email: str | None = None


def link(user: User, row: Upstream, found: Proof) -> LinkOutcome:
    """Link ``found`` to ``user`` (signed in, or proved now); the caller commits."""
    existing = owner(found.number)
    masked = found.masked
    if existing is not None and existing.user_id == user.id:
        return LinkOutcome("already", masked)
    if existing is not None:
        other = existing.user
        audit.record("national_id_link_refused", outcome="failure", user_id=user.id, subject=user.email,
                     details={"reason": "linked to another account", "other_user_id": other.id, "upstream": row.name})
        messages.queue("national_id_link_attempt", to=other.email, user=other, masked=masked, upstream=row.label)
        return LinkOutcome("other", masked, mask_email(other.email))
    mine = of_user(user.id)
    if mine is not None:
        audit.record("national_id_link_refused", outcome="failure", user_id=user.id,
                     details={"reason": "the account has another number", "upstream": row.name})
        return LinkOutcome("has_other", mask(mine.number))
    now = current_idp().clock.now()
    entry = NationalIdentity(user_id=user.id, digest=_digest(found.number), upstream_id=row.id, linked_at=now,
                             last_used_at=now)
    entry.number = found.number
    try:
        with db.session.begin_nested():  # two links racing (the number, or this account): the keys decide
            db.session.add(entry)
    except IntegrityError:
        audit.record("national_id_link_refused", outcome="failure", user_id=user.id,
                     details={"reason": "linked meanwhile", "upstream": row.name})
        winner = owner(found.number)
        if winner is not None and winner.user_id != user.id:
            return LinkOutcome("other", masked, mask_email(winner.user.email))
        return LinkOutcome("already" if winner is not None else "has_other", masked)
    audit.record("national_id_linked", user_id=user.id, subject=user.email, details={"upstream": row.name})
    messages.queue("sign_in_method_changed", to=user.email, user=user, action="linked", what=row.label,
                   detail=masked)
    return LinkOutcome("linked", masked)


def unlink(user: User) -> bool:
    """Remove ``user``'s number (after the password again); the caller commits."""
    entry = of_user(user.id)
    if entry is None:
        return False
    masked = mask(entry.number)
    db.session.delete(entry)
    audit.record("national_id_unlinked", user_id=user.id, subject=user.email)
    messages.queue("sign_in_method_changed", to=user.email, user=user, action="unlinked", what=None, detail=masked)
    return True


def used(entry: NationalIdentity) -> None:
    entry.last_used_at = current_idp().clock.now()
