"""Setting a password: the policy (plus history) checked on the server,
the Argon2id hash stored, the history kept. Activation, reset, change and
the CLI all come through :func:`set_password`.

History (``PASSWORD_HISTORY`` = N, 0 = off): the new password must differ
from the current one and from the N-1 before it. The current hash lives on
the user; ``password_history`` keeps the N-1 earlier ones, newest first,
and nothing more: when N is lowered (or the rule switched off) the rows
beyond it are deleted at the next change. Each comparison is a full Argon2
verification, so the live check as the user types leaves this rule out
(``history=False``); it is always enforced when the password is set.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import delete, select

from ..context import current_idp
from ..errors import PasswordPolicyError
from ..storage import PasswordHistory, db
from .policy import PersonalInfo, Policy, Violation, check


def policy() -> Policy:
    """The policy this deployment configured."""
    return Policy.from_settings(current_idp().settings)


def person_of(user=None, *, email: str | None = None, given_name: str | None = None,
              family_name: str | None = None, company: str | None = None, name: str | None = None) -> PersonalInfo:
    """What the password of ``user`` (or of the person described) must not contain."""
    companies = tuple(c for c in (company, getattr(user, "company_name", None)) if c)
    return PersonalInfo(
        email=email or getattr(user, "email", "") or "",
        given_name=given_name or getattr(user, "given_name", None),
        family_name=family_name or getattr(user, "family_name", None),
        company_names=companies,
        name=name or getattr(user, "name", None),
    )


def _earlier_hashes(user, keep: int) -> list[str]:
    if user.id is None or keep <= 0:
        return []
    return list(db.session.scalars(
        select(PasswordHistory.password_hash).where(PasswordHistory.user_id == user.id)
        .order_by(PasswordHistory.created_at.desc(), PasswordHistory.id.desc()).limit(keep)
    ))


def _reused(user, password: str, count: int) -> bool:
    """Whether ``password`` is the current one or one of the ``count - 1`` before it."""
    hashes = ([user.password_hash] if user.password_hash else []) + _earlier_hashes(user, count - 1)
    hasher = current_idp().hasher
    # every hash is checked (no early exit): the time taken says nothing
    found = [hasher.verify(stored, password) for stored in hashes]
    return any(found)


def violations(password: str, user=None, *, history: bool = True, **person) -> list[Violation]:
    """Every rule the password breaks for this user (or for the person described).

    Args:
        password: the proposed password, exactly as typed.
        user: the account it is for, if known (its names, email, company and
            history are used).
        history: also check ``PASSWORD_HISTORY`` (needs ``user``; costs one
            Argon2 verification per remembered password).
        **person: ``email``, ``given_name``, ``family_name``, ``company``,
            ``name``, overriding or standing in for the user's.
    """
    rules = policy()
    found = check(password, policy=rules, person=person_of(user, **person))
    if (history and user is not None and rules.history and len(password) <= rules.max_length
            and _reused(user, password, rules.history)):
        found.append(Violation("reused", {"count": rules.history}))
    return found


@dataclass(frozen=True)
class NewPasswordRefused:
    """Why a new password typed twice was not set: the policy's messages and
    whether the two fields differ (both at once, so the form shows both)."""

    messages: list[str]
    mismatch: bool


def set_new_password(user, password: str, repeated: str) -> NewPasswordRefused | None:
    """Set a new password typed twice (activation, reset, change); the policy
    runs once. Returns None when it was set (the caller commits), or what is
    wrong, with nothing changed.
    """
    if not password:
        return NewPasswordRefused([_("Enter a new password.")], repeated != password)
    if repeated != password:
        return NewPasswordRefused([v.message() for v in violations(password, user)], True)
    try:
        set_password(user, password)
    except PasswordPolicyError as exc:
        return NewPasswordRefused([v.message() for v in exc.violations], False)
    return None


def set_password(user, password: str) -> None:
    """Check and store a new password for ``user``; the caller commits.

    Works for a new user too (no id yet, not even in the session).

    Raises:
        PasswordPolicyError: with every violation.
    """
    found = violations(password, user)
    if found:
        raise PasswordPolicyError(found)
    idp = current_idp()
    now = idp.clock.now()
    keep = max(policy().history - 1, 0)
    old = user.password_hash
    if old and keep:
        if user.id is None:
            db.session.add(user)
            db.session.flush()
        db.session.add(PasswordHistory(user_id=user.id, password_hash=old, created_at=now))
        db.session.flush()
    if user.id is not None:
        _trim_history(user.id, keep)
    user.password_hash = idp.hasher.hash(password)
    user.password_changed_at = now


def _trim_history(user_id: int, keep: int) -> None:
    stale = select(PasswordHistory.id).where(PasswordHistory.user_id == user_id).order_by(
        PasswordHistory.created_at.desc(), PasswordHistory.id.desc()).offset(keep)
    ids = list(db.session.scalars(stale))
    if ids:
        db.session.execute(delete(PasswordHistory).where(PasswordHistory.id.in_(ids)),
                           execution_options={"synchronize_session": False})
