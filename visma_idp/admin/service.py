"""Create, invite and list users. Used by the CLI, the Python API, demo seeding and tests
(clients: ``oidc/registration.py``). The Welcome email and its activation link,
and resending it, are ``account/activation.py``'s."""

from __future__ import annotations

from typing import Any

from .. import audit
from ..account.activation import send_welcome
from ..context import current_idp
from ..errors import InvalidInput
from ..storage import User, db, queries


def parse_email(value: object) -> str:
    """``value`` as one address in its stored spelling (``addresses.py``).

    Raises:
        InvalidInput: not exactly one valid address; the message says why, in plain English.
    """
    from ..addresses import AddressError, parse

    try:
        return parse(value).email
    except AddressError as exc:
        raise InvalidInput(f"not a valid email address: {value!r} ({exc.detail})") from None


def create_user(email: str, name: str, password: str | None = None, *, invite: bool = True,
                **claims: Any) -> User:
    """Create a user; the caller commits.

    With ``password`` the account is active at once (the password must meet
    the policy). Without it the account is *pending*: it has no password and
    no verified email until its owner follows the activation link of the
    "Welcome" email, which is queued here unless ``invite`` is False.

    Raises:
        InvalidInput: a bad or taken email address, or a password the policy refuses.
    """
    email = parse_email(email)
    if queries.user_by_email(email) is not None:
        raise InvalidInput(f"a user with email {email} already exists")
    now = current_idp().clock.now()
    claims.setdefault("email_verified", password is not None)
    user = User(email=email, name=name or "", created_at=now, updated_at=now, **claims)
    if password is not None:
        from ..errors import PasswordPolicyError
        from ..password.service import set_password

        try:
            set_password(user, password)
        except PasswordPolicyError as exc:
            raise InvalidInput("the password does not meet the policy: " + str(exc)) from None
        user.activated_at = now
    db.session.add(user)
    db.session.flush()
    audit.record("user_created", user_id=user.id, subject=email,
                 details=None if password is not None else {"pending": True, "invited": invite})
    if password is None and invite:
        send_welcome(user)
    return user


def invite_user(email: str, name: str, **claims: Any) -> User:
    """Create a pending user and queue the "Welcome" email with its activation link; the caller commits."""
    return create_user(email, name, None, invite=True, **claims)


def list_users() -> list[User]:
    return queries.all_users()
