"""Which local account an upstream identity is, and linking it.

Rules:
- an upstream identity is (upstream, issuer, subject); for a multi-tenant
  Entra ID the subject is ``tid`` + ``oid`` (``oid`` is the user's immutable
  object id; ``email`` and ``preferred_username`` are mutable, unverified and
  never identify anyone: the "nOAuth" takeover);
- an identity signs in only the account it is linked to; it is linked only
  when the person proves that account in the same browser: signed in already
  (My details), or the password and, when they have one, the second step,
  entered in this sign-in ("remember this browser" does not count). Never
  because an address matches, verified or not;
- just-in-time accounts only where the operator let the upstream create them
  (``create_accounts``), for an address in one of its domains, whose
  ``email`` it vouches for (``email_verified`` true, or ``trust_email``),
  and only when no account has that address: an existing account is never
  taken over, it is proved and linked;
- one account per identity; linking, unlinking and a refused link are audited
  and the account's owner gets an email.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import addresses, audit
from ..context import current_idp
from ..notify import messages
from ..storage import Upstream, UpstreamIdentity, User, db
from .upstreams import TENANT_TEMPLATE


class IdentityRefused(Exception):
    """The ID token does not name an identity we can use (``reason`` is audited)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    """Who the upstream says signed in."""

    upstream_id: int
    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str
    label: str  # what to show the person (an address, else a name)

    def as_dict(self) -> dict[str, Any]:
        return {"upstream_id": self.upstream_id, "issuer": self.issuer, "subject": self.subject,
                "email": self.email, "email_verified": self.email_verified, "name": self.name, "label": self.label}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Identity:
        return cls(int(data["upstream_id"]), str(data["issuer"]), str(data["subject"]), data.get("email"),
                   bool(data.get("email_verified")), str(data.get("name") or ""), str(data.get("label") or ""))


def _claim(row: Upstream, claims: dict[str, Any], name: str) -> Any:
    return claims.get((row.claim_map or {}).get(name, name))


def identity(row: Upstream, claims: dict[str, Any]) -> Identity:
    """The identity in checked ID token ``claims`` of ``row``.

    Raises:
        IdentityRefused: a multi-tenant token without ``oid``, or no subject.
    """
    if TENANT_TEMPLATE in row.issuer:
        tid, oid = claims.get("tid"), claims.get("oid")
        if not isinstance(tid, str) or not isinstance(oid, str) or not oid:
            raise IdentityRefused("a multi-tenant token without tid and oid")
        subject = f"{tid.lower()}/{oid.lower()}"
    else:
        value = _claim(row, claims, "sub")
        if not isinstance(value, str) or not value:
            raise IdentityRefused("no subject")
        subject = value
    email: str | None = None
    raw = _claim(row, claims, "email")
    if isinstance(raw, str):
        try:
            email = addresses.parse(raw).email
        except addresses.AddressError:
            email = None
    verified = email is not None and (_claim(row, claims, "email_verified") is True or row.trust_email)
    name = _claim(row, claims, "name")
    name = name.strip()[:200] if isinstance(name, str) else ""
    return Identity(row.id, str(claims["iss"]), subject[:255], email, verified, name, (email or name or subject)[:320])


def upstream_amr(value: Any) -> list[str]:
    """An upstream's ``amr`` claim as a list: a string (ID-porten sends one) or a
    list of strings; at most 8 values of 32 characters, anything else dropped."""
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return [v[:32] for v in values[:8] if isinstance(v, str) and v]


def linked_user(ident: Identity) -> tuple[UpstreamIdentity | None, User | None]:
    """The link of ``ident`` and its account (None, None when it is not linked)."""
    link = db.session.scalar(select(UpstreamIdentity).where(
        UpstreamIdentity.upstream_id == ident.upstream_id, UpstreamIdentity.issuer == ident.issuer,
        UpstreamIdentity.subject == ident.subject))
    if link is None:
        return None, None
    return link, db.session.get(User, link.user_id)


def may_create(row: Upstream, ident: Identity) -> bool:
    """Whether a just-in-time account may be made for ``ident`` (the rules above)."""
    if not row.create_accounts or not ident.email or not ident.email_verified:
        return False
    domain = ident.email.rsplit("@", 1)[1]
    if domain not in (row.domains or []):
        return False
    return db.session.scalar(select(User.id).where(User.email == ident.email)) is None


def create_account(row: Upstream, ident: Identity) -> User:
    """A new active account without a password for ``ident``, linked to it; the caller commits."""
    assert ident.email is not None
    now = current_idp().clock.now()
    # active without a password: the upstream vouched for the address (may_create), and it is how they sign in
    user = User(email=ident.email, name=ident.name, email_verified=True, created_at=now, updated_at=now,
                activated_at=now)
    db.session.add(user)
    db.session.flush()
    audit.record("user_created", user_id=user.id, subject=user.email, details={"upstream": row.name, "jit": True})
    link(user, row, ident, notify=False)
    return user


def link(user: User, row: Upstream, ident: Identity, *, notify: bool = True) -> UpstreamIdentity | None:
    """Link ``ident`` to ``user`` (proved in this browser); the caller commits.

    Returns None (and audits the refusal) when it is linked to another account already.
    """
    existing, owner = linked_user(ident)
    if existing is not None:
        if existing.user_id != user.id:
            audit.record("upstream_link_refused", outcome="failure", user_id=user.id,
                         details={"upstream": row.name, "reason": "linked to another account"})
            return None
        return existing
    now = current_idp().clock.now()
    entry = UpstreamIdentity(upstream_id=row.id, issuer=ident.issuer, subject=ident.subject, user_id=user.id,
                             label=ident.label, linked_at=now, last_used_at=now)
    try:
        with db.session.begin_nested():  # two links of one identity racing: the key decides
            db.session.add(entry)
    except IntegrityError:
        audit.record("upstream_link_refused", outcome="failure", user_id=user.id,
                     details={"upstream": row.name, "reason": "linked meanwhile"})
        return None
    audit.record("upstream_linked", user_id=user.id, subject=user.email,
                 details={"upstream": row.name, "identity": entry.id})
    if notify:
        messages.queue("sign_in_method_changed", to=user.email, user=user, action="linked", what=row.label,
                       detail=ident.label)
    return entry


def unlink(user: User, identity_id: int) -> bool:
    """Remove one of ``user``'s linked identities (after the password); the caller commits."""
    entry = db.session.get(UpstreamIdentity, identity_id)
    if entry is None or entry.user_id != user.id:
        return False
    label, upstream = entry.label, entry.upstream
    db.session.delete(entry)
    audit.record("upstream_unlinked", user_id=user.id, subject=user.email,
                 details={"upstream": upstream.name, "identity": identity_id})
    messages.queue("sign_in_method_changed", to=user.email, user=user, action="unlinked", what=upstream.label,
                   detail=label)
    return True


def used(entry: UpstreamIdentity) -> None:
    entry.last_used_at = current_idp().clock.now()
