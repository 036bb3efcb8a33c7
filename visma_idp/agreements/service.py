"""Agreements and their members: creating them, adding and removing members
and their roles, and what the sign-in and the protocol ask about them.

Rules:
- an agreement has a unique Norwegian organisation number (``orgnr.py``)
  and a name; its email domains are ASCII host names; ``require`` is the
  level its members must reach to work in it (``mfa`` or ``phr``);
- a member has roles, each for every app of the agreement or for one app
  (client); role names are short words (letters, digits, ``_``, ``-``, ``:``);
- adding, changing and removing are audited, each row naming the agreement
  (``audit.record(agreement=...)``) and who did it (``by``: an admin, the
  person accepting an invitation; none for the operator's commands); a
  changed set of roles is told to the person in the batched "your roles have
  changed" email (``account/notifications.py``: changes within the window
  join one mail, a role given and taken away again cancels out), a role in
  one app named with the app's id (``approver (expense)``); the caller
  commits;
- the admin console (``console.py``) reads its lists here: one member, the
  pending invitations and one invitation, each looked up *within* one
  agreement, so another agreement's member or invitation is never found;
  and the agreement's audit log (:func:`audit_log`: only the rows naming
  *this* agreement, newest first, a page at a time; the rows are
  ``audit.py``'s to read) with the emails of who did what (:func:`audit_actors`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import String, cast, func, or_, select

from .. import audit
from ..addresses import domain_name
from ..assurance import ACR_MFA, ACR_PHISHING_RESISTANT
from ..context import current_idp
from ..errors import InvalidInput
from ..storage import Agreement, AgreementInvitation, AuditEvent, Membership, User, db, queries
from .orgnr import InvalidOrgNumber
from .orgnr import parse as parse_org_number

REQUIRE = {"mfa": ACR_MFA, "phr": ACR_PHISHING_RESISTANT}
_ROLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_:.-]{0,63}")
AUDIT_PAGE = 50  # rows of the audit log on one page


def by_details(by: User | None) -> dict[str, Any]:
    """The audit details naming who did it (nothing for the operator)."""
    return {"by": by.id} if by is not None else {}


def create(name: str, org_number: str, *, domains: Iterable[str] = (), require: str | None = None,
           by: User | None = None) -> Agreement:
    """A new active agreement (``by``: the person who made it, None for the operator); the caller commits.

    Raises:
        InvalidInput: no name, a bad or taken organisation number, a bad domain or level.
    """
    name = " ".join((name or "").split())
    if not 0 < len(name) <= 200:
        raise InvalidInput("--name: 1 to 200 characters")
    try:
        number = parse_org_number(org_number)
    except InvalidOrgNumber as exc:
        raise InvalidInput(f"--org-number: {exc}") from None
    if find(number) is not None:
        raise InvalidInput(f"an agreement with organisation number {number} exists already")
    if require is not None and require not in REQUIRE:
        raise InvalidInput("--require: mfa or phr")
    row = Agreement(name=name, org_number=number, domains=sorted({domain_name(d) for d in domains}), status="active",
                    require_acr=REQUIRE[require] if require else None, created_at=current_idp().clock.now())
    db.session.add(row)
    db.session.flush()
    audit.record("agreement_created", details={"agreement": row.public_id, "org_number": number, **by_details(by)},
                 agreement=row.public_id)
    return row


def find(value: str | int | None) -> Agreement | None:
    """An agreement by its public id, its organisation number or its row id."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return db.session.get(Agreement, value)
    text = "".join(str(value).split())
    return db.session.scalar(select(Agreement).where(or_(Agreement.public_id == text, Agreement.org_number == text)))


def all_agreements() -> list[Agreement]:
    return list(db.session.scalars(select(Agreement).order_by(Agreement.name)))


def matches(agreement: Agreement, q: str) -> bool:
    """Whether ``q`` finds ``agreement``: part of its name (any case), digits of its
    organisation number, its public id, or part of one of its domains (:func:`search`'s rule)."""
    folded = q.casefold()
    digits = "".join(q.split())
    return (folded in agreement.name.casefold() or (digits.isdigit() and digits in agreement.org_number)
            or q == agreement.public_id or any(folded in d for d in agreement.domains or []))


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search(q: str = "", *, limit: int = 200) -> tuple[list[Agreement], int]:
    """The agreements ``q`` finds (:func:`matches`, in the database: the list of a
    system admin with 100,000 agreements is never loaded whole), by name, at most
    ``limit``; and how many it finds in all. SQLite folds the case of ASCII letters only."""
    stmt = select(Agreement)
    q = q.strip()
    if q:
        pattern = _like(q.lower())
        digits = "".join(q.split())
        found = [func.lower(Agreement.name).like(pattern, escape="\\"), Agreement.public_id == q,
                 func.lower(cast(Agreement.domains, String)).like(pattern, escape="\\")]
        if digits.isdigit():
            found.append(Agreement.org_number.like(_like(digits), escape="\\"))
        stmt = stmt.where(or_(*found))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    return list(db.session.scalars(stmt.order_by(Agreement.name, Agreement.id).limit(limit))), total


def member_counts() -> dict[int, int]:
    return dict(db.session.execute(select(Membership.agreement_id, func.count()).group_by(Membership.agreement_id))
                .tuples().all())


def check_roles(roles: Iterable[str], client_id: str | None) -> list[dict[str, Any]]:
    """The role entries for ``roles`` (in every app, or in ``client_id``'s), each name checked.

    Raises:
        InvalidInput: a name that is not a short word.
    """
    out = []
    for role in roles:
        if not _ROLE.fullmatch(role):
            raise InvalidInput(f"--role: a short word (letters, digits, _ - : .): {role!r}")
        out.append({"role": role, "client": client_id})
    return out


def membership(user_id: int, agreement_id: int) -> Membership | None:
    return db.session.scalar(select(Membership).where(Membership.user_id == user_id,
                                                      Membership.agreement_id == agreement_id))


def members(agreement: Agreement) -> list[tuple[User, Membership]]:
    """The agreement's members and their memberships, by email (one statement)."""
    return [(user, row) for row, user in db.session.execute(
        select(Membership, User).join(User, User.id == Membership.user_id)
        .where(Membership.agreement_id == agreement.id).order_by(User.email)).tuples()]


def memberships_of(user_id: int) -> list[Membership]:
    """The user's memberships of active agreements, the last used first."""
    return queries.memberships_of(user_id)


def role_label(role: str, client_id: str | None) -> str:
    """How the "your roles have changed" email names a role: ``approver``, or
    ``approver (expense)`` for a role in one app (its client id)."""
    return role if client_id is None else f"{role} ({client_id})"


def _labels(pairs: Iterable[tuple[str, str | None]]) -> list[str]:
    return sorted(role_label(role, client) for role, client in pairs)


def _store_roles(row: Membership, pairs: set[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """Write (role, client) ``pairs`` to ``row`` in their stored order (by role, then app); return them so."""
    ordered = sorted(pairs, key=lambda r: (r[0], r[1] or ""))
    row.roles = [{"role": r, "client": c} for r, c in ordered]
    return ordered


def add_member(agreement: Agreement, user: User, roles: Iterable[str] = (), *, client_id: str | None = None,
               by: User | None = None) -> Membership:
    """Make ``user`` a member of ``agreement`` with ``roles`` (for one app with
    ``client_id``), or add those roles to their membership (``by``: who did
    it, None for the operator); the caller commits."""
    from ..account.notifications import roles_changed

    wanted = check_roles(roles, client_id)
    row = membership(user.id, agreement.id)
    before: set[tuple[str, str | None]] = set()
    if row is None:
        row = Membership(agreement_id=agreement.id, user_id=user.id, roles=[], created_at=current_idp().clock.now())
        db.session.add(row)
        audit.record("agreement_member_added", user_id=user.id, subject=user.email,
                     details={"agreement": agreement.public_id, **by_details(by)}, agreement=agreement.public_id)
    else:
        before = {(r["role"], r.get("client")) for r in row.roles or []}
    merged = _store_roles(row, before | {(r["role"], r["client"]) for r in wanted})
    if set(merged) != before:
        audit.record("agreement_roles_changed", user_id=user.id, subject=user.email,
                     details={"agreement": agreement.public_id, "roles": row.roles, **by_details(by)},
                     agreement=agreement.public_id)
        roles_changed(user, agreement=agreement, added=_labels(set(merged) - before), removed=[])
    db.session.flush()
    return row


def remove_member(agreement: Agreement, user: User, *, by: User | None = None) -> bool:
    """End ``user``'s membership of ``agreement`` (``by``: the admin who did,
    None for the operator); the caller commits. Their
    sessions working in it no longer name it, and their refresh tokens cannot
    switch to it (``oidc/grants.py`` looks the membership up)."""
    from ..account.notifications import roles_changed

    row = membership(user.id, agreement.id)
    if row is None:
        return False
    removed = _labels((r["role"], r.get("client")) for r in row.roles or [])
    db.session.delete(row)
    audit.record("agreement_member_removed", user_id=user.id, subject=user.email,
                 details={"agreement": agreement.public_id, **by_details(by)}, agreement=agreement.public_id)
    roles_changed(user, agreement=agreement, added=[], removed=removed)
    return True


def set_roles(agreement: Agreement, user: User, roles: Iterable[str], client_id: str | None = None, *,
              by: User | None = None) -> bool:
    """Replace ``user``'s agreement-wide roles in ``agreement`` (or, with
    ``client_id``, their roles in that app only) with ``roles``; the roles of
    the other apps stay. Only a real change is audited
    (``agreement_roles_changed``, with ``by``: who changed them) and told to
    the person in the "your roles have changed" email (a role for one app is
    named with the app's id). Returns whether anything changed; the caller commits.

    Raises:
        InvalidInput: a name that is not a short word, or ``user`` is not a member.
    """
    from ..account.notifications import roles_changed

    wanted = {r["role"] for r in check_roles(sorted(set(roles)), client_id)}
    row = membership(user.id, agreement.id)
    if row is None:
        raise InvalidInput(f"{user.email} is not a member of {agreement.name}")
    before = {r["role"] for r in row.roles or [] if r.get("client") == client_id}
    if wanted == before:
        return False
    kept = {(r["role"], r.get("client")) for r in row.roles or [] if r.get("client") != client_id}
    _store_roles(row, kept | {(r, client_id) for r in wanted})
    details: dict[str, Any] = {"agreement": agreement.public_id, "roles": row.roles}
    if client_id is not None:
        details["client"] = client_id
    details.update(by_details(by))
    audit.record("agreement_roles_changed", user_id=user.id, subject=user.email, details=details,
                 agreement=agreement.public_id)
    roles_changed(user, agreement=agreement, added=_labels((r, client_id) for r in wanted - before),
                  removed=_labels((r, client_id) for r in before - wanted))
    db.session.flush()
    return True


def member_by_sub(agreement: Agreement, sub: str) -> tuple[User, Membership] | None:
    """The member of ``agreement`` whose user has the subject ``sub`` (None: no
    such user, or not a member of *this* agreement)."""
    if not isinstance(sub, str) or not 0 < len(sub) <= 36:
        return None
    found = db.session.execute(
        select(User, Membership).join(Membership, Membership.user_id == User.id)
        .where(User.sub == sub, Membership.agreement_id == agreement.id)).tuples().first()
    return None if found is None else (found[0], found[1])


def pending_invitations(agreement: Agreement) -> list[AgreementInvitation]:
    """The invitations to ``agreement`` whose link still works (not accepted,
    not revoked, not expired), by email."""
    now = current_idp().clock.now()
    return list(db.session.scalars(
        select(AgreementInvitation)
        .where(AgreementInvitation.agreement_id == agreement.id, AgreementInvitation.accepted_at.is_(None),
               AgreementInvitation.revoked_at.is_(None), AgreementInvitation.expires_at > now)
        .order_by(AgreementInvitation.email, AgreementInvitation.id)))


def invitation_of(agreement: Agreement, invitation_id: int) -> AgreementInvitation | None:
    """The invitation ``invitation_id`` when it is one to ``agreement`` (whatever its state)."""
    return db.session.scalar(select(AgreementInvitation).where(
        AgreementInvitation.id == invitation_id, AgreementInvitation.agreement_id == agreement.id))


# -- the audit log -------------------------------------------------------------------------


def audit_log(agreement: Agreement, *, limit: int = AUDIT_PAGE, before: int | None = None) -> list[AuditEvent]:
    """The audit rows about ``agreement`` (and no other), newest first, at most
    ``limit``; ``before``: only rows older than the row with that id (the next
    page). One statement."""
    return audit.events_of_agreement(agreement.public_id, limit=limit, before=before)


def audit_log_newer(agreement: Agreement, before: int, *, limit: int = AUDIT_PAGE) -> int | None:
    """The ``before`` of the page of ``limit`` rows just newer than the page
    ``before`` starts (None: that page is the newest, asked for without ``before``)."""
    return audit.newer_page_of_agreement(agreement.public_id, before, limit=limit)


def audit_actors(rows: Iterable[AuditEvent]) -> dict[int, str]:
    """The email of each person the rows name as who did it (``details["by"]``),
    by user id, in one statement (none when no row names anyone; a deleted
    account is missing)."""
    ids = {row.details["by"] for row in rows
           if isinstance(row.details, dict) and isinstance(row.details.get("by"), int)}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.email).where(User.id.in_(ids))).tuples().all())


# -- a system admin's changes: the level, the domains, closing and reopening ------------------
#
# - the level is one of REQUIRE (``mfa``, ``phr``) or none; the domains are
#   ASCII host names (``addresses.domain_name``), stored sorted without repeats;
# - a closed agreement is out of use at once: its members no longer choose it
#   at sign-in or switch to it with a refresh token (``storage/queries.py``
#   reads active agreements only), and nobody can be invited to it; reopening
#   brings back the memberships as they were;
# - only a real change is stored and audited (``agreement_updated`` with the
#   changed fields and the new values, ``agreement_closed``,
#   ``agreement_reopened``); the caller commits.

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
