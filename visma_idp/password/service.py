"""Setting a password: the policy (plus history) checked on the server,
the Argon2id hash stored, the history kept. Activation, reset, change and
the CLI all come through :func:`set_password`.

(Skeleton: history and the full policy arrive in this same issue; the API is fixed.)
"""

from __future__ import annotations

from flask import current_app

from ..errors import PasswordPolicyError
from .policy import PersonalInfo, Policy, Violation, check


def _idp():
    return current_app.extensions["visma_idp"]


def person_of(user=None, *, email: str | None = None, given_name: str | None = None,
              family_name: str | None = None, company: str | None = None) -> PersonalInfo:
    companies = tuple(c for c in (company, getattr(user, "company_name", None)) if c)
    return PersonalInfo(
        email=email or getattr(user, "email", "") or "",
        given_name=given_name or getattr(user, "given_name", None),
        family_name=family_name or getattr(user, "family_name", None),
        company_names=companies,
    )


def violations(password: str, user=None, **person) -> list[Violation]:
    """Every rule the password breaks for this user (or for the person described)."""
    return check(password, policy=Policy.from_settings(_idp().settings), person=person_of(user, **person))


def set_password(user, password: str) -> None:
    """Check and store a new password for ``user``; the caller commits.

    Raises:
        PasswordPolicyError: with every violation.
    """
    found = violations(password, user)
    if found:
        raise PasswordPolicyError(found)
    idp = _idp()
    user.password_hash = idp.hasher.hash(password)
    user.password_changed_at = idp.clock.now()
