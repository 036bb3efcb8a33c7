"""Admin rights limited to email domains.

An :class:`~visma_idp.storage.AdminRight` row gives one user one right for a
list of email domains (lower-case, without ``@``). The rights are
``issue_one_time_codes``: create a one-time code that lets a user of those
domains pass the second step of a sign-in once (``one_time_codes.py``, ``factors/admin_codes.py``);
``invite_users``: create users of those domains, who get the Welcome
email with an activation link (``admin/api.py``); and ``manage_upstreams``:
add, see and remove upstream OpenID providers (a company's ADFS or Entra ID)
through the admin API, but only those whose every ``domains`` value is
granted (``covers_all``); an upstream with no domains (a national eID or a
button-only upstream) is never an admin's: the operator manages it with
``visma-idp upstreams`` (``admin/api.py``).

One right is held without domains: ``system_admin`` (its row's ``domains``
is ``[]``): the system admins' console (``admin/console.py``: agreements,
clients, upstream providers, signing keys). :func:`is_system_admin` says
whether someone holds it now.

Rules:
- a user's email domain is what follows the last ``@`` of their address; it
  matches a granted domain only when the two are equal, character for
  character. There is no suffix or wildcard matching: ``evil-example.no``,
  ``example.no.evil.com``, ``example.no.`` and ``sub.example.no`` do NOT match
  ``example.no``. Subdomains are granted one by one (safest: a subdomain may
  belong to someone else);
- granted domains are ASCII host names (international names in their
  ``xn--`` form); a non-ASCII email domain never matches;
- only an active admin holds rights (a disabled, locked or pending account
  holds none), and nobody may issue a code for their own account;
- ``system_admin`` is granted and revoked with no domains (giving one is
  refused), every other right with at least one;
- granting and revoking are audited (``admin_right_granted``,
  ``admin_right_revoked``); the caller commits.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from .. import audit
from ..addresses import domain_name
from ..context import current_idp
from ..storage import AdminRight, User, db
from .service import InvalidInput

ISSUE_ONE_TIME_CODES = "issue_one_time_codes"
INVITE_USERS = "invite_users"  # create (invite) users of the domains through the admin API
MANAGE_UPSTREAMS = "manage_upstreams"  # add/list/remove upstreams serving only granted domains (admin API)
RIGHTS = (ISSUE_ONE_TIME_CODES, INVITE_USERS, MANAGE_UPSTREAMS)  # the rights held for email domains
SYSTEM_ADMIN = "system_admin"  # the system admins' console; held with no domains
ALL_RIGHTS = (*RIGHTS, SYSTEM_ADMIN)

def normalise_domain(value: str) -> str:
    """``"@Example.NO "`` -> ``"example.no"`` (``addresses.domain_name``: the one rule).

    Raises:
        InvalidInput: not a plain host name with at least one dot (no
            wildcards, no trailing dot, no ports, ASCII only).
    """
    return domain_name(value)


def domain_of(email: str | None) -> str | None:
    """The domain of an email address (after the last ``@``), lower-case; None if there is none
    or it is not ASCII."""
    if not email or "@" not in email:
        return None
    domain = email.strip().rsplit("@", 1)[1].lower()
    if not domain or not domain.isascii():
        return None
    return domain


def _row(user: User, right: str) -> AdminRight | None:
    return db.session.scalar(select(AdminRight).where(AdminRight.user_id == user.id, AdminRight.right == right))


def _check_right(right: str) -> None:
    if right not in ALL_RIGHTS:
        raise InvalidInput(f"unknown right {right!r}; known: {', '.join(ALL_RIGHTS)}")


def is_system_admin(user: User | None) -> bool:
    """Whether ``user`` is a system admin now: an active account holding ``system_admin``."""
    return user is not None and user.status == "active" and _row(user, SYSTEM_ADMIN) is not None


def system_admins() -> list[User]:
    """The accounts holding ``system_admin`` (whatever their status), by email."""
    return list(db.session.scalars(
        select(User).join(AdminRight, AdminRight.user_id == User.id).where(AdminRight.right == SYSTEM_ADMIN)
        .order_by(User.email)))


def domains(user: User | None, right: str = ISSUE_ONE_TIME_CODES) -> list[str]:
    """The domains for which ``user`` holds ``right`` now (none unless the account is active)."""
    if user is None or user.status != "active":
        return []
    row = _row(user, right)
    return sorted(row.domains or []) if row is not None else []


def holds(user: User | None, right: str = ISSUE_ONE_TIME_CODES) -> bool:
    return bool(domains(user, right))


def covers(user: User | None, email: str | None, right: str = ISSUE_ONE_TIME_CODES) -> bool:
    """Whether ``user`` holds ``right`` for the domain of ``email`` (exact match only)."""
    domain = domain_of(email)
    return domain is not None and domain in domains(user, right)


def covers_all(user: User | None, some_domains: Iterable[str], right: str) -> bool:
    """Whether ``user`` holds ``right`` for every one of ``some_domains`` (normalised
    domains, exact match only); False for no domains at all."""
    wanted = list(some_domains)
    held = set(domains(user, right))
    return bool(wanted) and all(d in held for d in wanted)


def may_issue(admin: User | None, target: User) -> bool:
    """Whether ``admin`` may issue a one-time code for ``target``: an active admin
    holding the right for exactly the target's email domain, and not for themselves."""
    if admin is None or admin.id == target.id:
        return False
    return covers(admin, target.email, ISSUE_ONE_TIME_CODES)


def grant(user: User, right: str, new_domains: Iterable[str]) -> AdminRight:
    """Give ``user`` the ``right`` for ``new_domains`` (added to any they hold);
    ``system_admin`` with no domains. The caller commits.

    Raises:
        InvalidInput: an unknown right, no domain (a domain for ``system_admin``),
            or a bad domain name.
    """
    _check_right(right)
    given = list(new_domains)
    if right == SYSTEM_ADMIN:
        if given:
            raise InvalidInput(f"{SYSTEM_ADMIN} is held without domains")
        wanted: list[str] = []
    else:
        wanted = sorted({normalise_domain(d) for d in given})
        if not wanted:
            raise InvalidInput("give at least one domain")
    row = _row(user, right)
    now = current_idp().clock.now()
    if row is None:
        row = AdminRight(user_id=user.id, right=right, domains=wanted, granted_at=now)
        db.session.add(row)
        added = wanted
    else:
        held = list(row.domains or [])
        added = [d for d in wanted if d not in held]
        row.domains = sorted(set(held) | set(wanted))
        row.granted_at = now
    db.session.flush()
    audit.record("admin_right_granted", user_id=user.id, subject=user.email,
                 details={"right": right, "added": added, "domains": list(row.domains)})
    return row


def revoke(user: User, right: str, some_domains: Iterable[str] | None = None) -> list[str]:
    """Take ``right`` from ``user``: for ``some_domains`` only, or entirely when None.
    Returns the domains that were taken away (none for ``system_admin``,
    which is taken entirely). The caller commits.

    Raises:
        InvalidInput: an unknown right, a bad domain name, or domains for ``system_admin``.
    """
    _check_right(right)
    if right == SYSTEM_ADMIN and some_domains:
        raise InvalidInput(f"{SYSTEM_ADMIN} is held without domains")
    row = _row(user, right)
    if row is None:
        return []
    if right == SYSTEM_ADMIN:
        db.session.delete(row)
        db.session.flush()
        audit.record("admin_right_revoked", user_id=user.id, subject=user.email,
                     details={"right": right, "removed": [], "domains": []})
        return []
    held = list(row.domains or [])
    if some_domains is None:
        removed = held
    else:
        gone = {normalise_domain(d) for d in some_domains}
        removed = [d for d in held if d in gone]
    left = [d for d in held if d not in removed]
    if left:
        row.domains = left
    else:
        db.session.delete(row)
    db.session.flush()
    audit.record("admin_right_revoked", user_id=user.id, subject=user.email,
                 details={"right": right, "removed": removed, "domains": left})
    return removed


def all_rights() -> list[tuple[User, AdminRight]]:
    """Every right held, by admin email."""
    rows = db.session.execute(
        select(User, AdminRight).join(AdminRight, AdminRight.user_id == User.id).order_by(User.email, AdminRight.right)
    )
    return [(u, r) for u, r in rows]
