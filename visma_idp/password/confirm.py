"""The throttled check of a user's current password: one rule for the sign-in's
password step, the current password on My details (change password, change
email) and the password confirmation before changing how one signs in.

Rules, in order:

- an attempt is counted before the password is checked, against the account
  (its email address) and the client IP (``login/throttle.py``): an account or
  IP that must wait is refused at once (``THROTTLED``, with the seconds for
  ``Retry-After``), without any Argon2 work;
- a password longer than :data:`~visma_idp.password.policy.MAX_LENGTH` is
  wrong (no password that long can be set; nothing is ever cut off);
- the Argon2id check costs the same for an unknown, disabled or pending user
  and for a wrong password (a dummy hash stands in), so the answer and its
  time say nothing about the account;
- a failure stands as counted, and is audited; the failure that reaches
  ``THROTTLE_MAX_FAILURES`` pauses the account (``THROTTLED``, audited as the
  pause) instead of a plain ``WRONG``;
- the right password clears the account's count and gives the IP its attempt
  back; then an account locked by its owner (``locked_at``: "This wasn't me")
  is refused (``LOCKED``: only someone who knows the password learns of it);
- otherwise ``OK``, and a hash made with older Argon2 parameters is replaced.

Every refusal is audited and committed here, as the caller answers it at
once; after ``OK`` the caller goes on and commits.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask_babel import gettext as _

from .. import audit
from ..context import current_idp
from ..storage import db
from .policy import MAX_LENGTH

if TYPE_CHECKING:
    from ..storage import User


class Outcome(enum.Enum):
    OK = "ok"  # the right password of a usable account
    WRONG = "wrong"  # a wrong password (or no such account): the caller's "not right" page
    THROTTLED = "throttled"  # wait ``wait_seconds`` first: 429 with ``Retry-After``
    LOCKED = "locked"  # the right password of an account its owner locked: 403, the locked page


@dataclass(frozen=True)
class Events:
    """The audit events one caller records; the defaults are the sign-in's
    (``account/activity.py`` names each of them on My details)."""

    throttled: str = "login_throttled"  # refused before the check: must wait
    failed: str = "login_failed"  # a wrong password
    paused: str = "account_locked"  # the failure that paused the account
    refused_locked: str = "login_refused_locked"  # the right password of a locked account


SIGN_IN_EVENTS = Events()


@dataclass(frozen=True)
class PasswordCheck:
    """What :func:`check_current_password` found, and so what the caller answers.

    Args:
        outcome: see :class:`Outcome`.
        wait_seconds: ``THROTTLED``: seconds before the next attempt may be
            made (the ``Retry-After`` value); 0 otherwise.
        paused: ``THROTTLED``: the wait is the account's (or the IP's) pause
            after too many failures, not the short growing delay.
        user: the account checked (None when there is none).
    """

    outcome: Outcome
    wait_seconds: int = 0
    paused: bool = False
    user: User | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def throttled(self) -> bool:
        return self.outcome is Outcome.THROTTLED

    @property
    def locked(self) -> bool:
        """The account is locked by its owner (``locked_at``), as the sign-in refuses it."""
        return self.outcome is Outcome.LOCKED

    @property
    def headers(self) -> dict[str, str]:
        """The response headers the answer needs: ``Retry-After`` when throttled."""
        return {"Retry-After": str(self.wait_seconds)} if self.throttled else {}


def check_current_password(*, user: User | None, email: str, password: str, ip: str | None,
                           events: Events = SIGN_IN_EVENTS) -> PasswordCheck:
    """Check ``password`` as the current password of ``user``, throttled.

    Args:
        user: the account, or None when the address has none (the same work
            is done, against a dummy hash).
        email: the address the attempt is counted against (the throttle key
            and the audit subject): the account's, or the one typed on the
            sign-in page for an unknown account.
        password: exactly as typed.
        ip: the client address (``request.remote_addr``), counted as well;
            None counts the account only.
        events: the audit events to record (default: the sign-in's).

    Returns:
        The :class:`PasswordCheck`. Refusals are audited and committed;
        after ``OK`` the caller commits (a rehashed password with it).

    Raises:
        redis.RedisError: the shared throttle store cannot be reached (the
            attempt cannot be counted, so it is not checked either).
    """
    idp = current_idp()
    user_id = user.id if user is not None else None
    verdict = idp.throttle.attempt(email, ip)
    if not verdict.allowed:
        audit.record(events.throttled, outcome="failure", user_id=user_id, subject=email,
                     details={"wait_seconds": verdict.wait_seconds, "locked": verdict.locked})
        db.session.commit()
        return PasswordCheck(Outcome.THROTTLED, verdict.wait_seconds, verdict.locked, user)

    usable = user is not None and user.is_active and len(password) <= MAX_LENGTH
    stored = user.password_hash if usable and user is not None else None
    if not idp.hasher.verify(stored, password[:MAX_LENGTH]):
        after = idp.throttle.failed(email, ip)
        audit.record(events.failed, outcome="failure", user_id=user_id, subject=email)
        if after.locked:
            audit.record(events.paused, outcome="failure", user_id=user_id, subject=email,
                         details={"seconds": after.wait_seconds})
        db.session.commit()
        if after.locked:
            return PasswordCheck(Outcome.THROTTLED, after.wait_seconds, True, user)
        return PasswordCheck(Outcome.WRONG, user=user)

    assert user is not None and user.password_hash is not None  # verify() is False without a stored hash
    idp.throttle.succeeded(email, ip)
    if user.locked_at is not None:
        audit.record(events.refused_locked, outcome="failure", user_id=user.id, subject=email)
        db.session.commit()
        return PasswordCheck(Outcome.LOCKED, user=user)
    if idp.hasher.needs_rehash(user.password_hash):
        user.password_hash = idp.hasher.hash(password)
    return PasswordCheck(Outcome.OK, user=user)


def wait_message(check: PasswordCheck) -> str:
    """The translated line for a ``THROTTLED`` answer on My details and the
    password confirmation (the sign-in page says it its own way)."""
    if check.paused:
        minutes = max(1, (check.wait_seconds + 59) // 60)
        return _("Too many wrong passwords. Try again in %(minutes)d minute(s).", minutes=minutes)
    return _("Too many wrong passwords. Wait %(seconds)d second(s) and try again.", seconds=check.wait_seconds)
