"""Single-use links sent by email (activation, password reset, one-time
login, email change and its "this wasn't me" cancel link).

Rules:
- the link carries 32 random bytes; only their SHA-256 digest is stored;
- each link has a kind and a lifetime and works once: :func:`redeem` marks it
  used with a conditional UPDATE, so of two clicks racing, one wins;
- issuing a link can void the user's other live links of given kinds (a newer
  reset request voids the older one and the one-time login link);
- :func:`peek` reads a link without using it (the GET that shows a form);
  the POST that acts on it calls :func:`redeem`;
- a security event on the account (a password reset or change, "sign out of
  all other sessions", an account lock, an admin-issued one-time code, a
  resent activation email) voids every live link that would change the
  account or sign someone in, through one function
  (:func:`~visma_idp.account.sessions.void_pending_links`). Per kind:

  ``email_change``  VOIDED: it moves the account to another mailbox; one
                    asked for by someone who knew the old password must not
                    outlive the owner's reset;
  ``reset``         VOIDED: it sets a password; an older one would overwrite
                    the password just chosen (after a reset, the one used is
                    spent and the others die anyway);
  ``login_link``    VOIDED: a sign-in waiting to happen, which "sign out
                    everywhere" must end like a session;
  ``activation``    VOIDED: it sets the first password; a reset completes the
                    activation, and a resent activation email carries a new
                    link;
  ``email_cancel``  KEPT: "this wasn't me" goes to the OLD address, the
                    owner's; it is their way back when someone else has
                    confirmed a change and then reset the password from the
                    new address.

  A new kind must be added to one of the two lists below (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..context import current_idp
from ..crypto import digest, random_token
from ..errors import VismaIdpError
from ..storage import AccountToken, db

ACTIVATION = "activation"
RESET = "reset"
LOGIN_LINK = "login_link"
EMAIL_CHANGE = "email_change"
EMAIL_CANCEL = "email_cancel"
KINDS = (ACTIVATION, RESET, LOGIN_LINK, EMAIL_CHANGE, EMAIL_CANCEL)
# what a security event on the account does to each kind (see the module rules)
VOIDED_BY_SECURITY_EVENTS = (EMAIL_CHANGE, RESET, LOGIN_LINK, ACTIVATION)
KEPT_BY_SECURITY_EVENTS = (EMAIL_CANCEL,)


class LinkInvalid(VismaIdpError):
    """A link cannot be used. ``reason`` is ``unknown``, ``expired``, ``used``
    or ``voided``; ``token`` is the row when it exists (to offer a new link)."""

    def __init__(self, reason: str, token: AccountToken | None = None):
        self.reason = reason
        self.token = token
        super().__init__(reason)


@dataclass(frozen=True)
class IssuedLink:
    raw: str
    row: AccountToken


def _now() -> int:
    return current_idp().clock.now()


def issue(user, kind: str, *, lifetime: int, data: dict[str, Any] | None = None,
          void_kinds: tuple[str, ...] = ()) -> IssuedLink:
    """Create a link for ``user``; the caller commits (with the mail that carries it).

    Args:
        user: the User the link acts for.
        kind: one of :data:`KINDS`.
        lifetime: seconds it stays valid.
        data: what the link acts on (for example ``{"email": new_address}``).
        void_kinds: the user's live links of these kinds stop working now.

    Returns:
        The raw value (to put in the email) and the row.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown link kind {kind!r}")
    now = _now()
    if void_kinds:
        void(user.id, void_kinds, now=now)
    raw = random_token(32)
    row = AccountToken(digest=digest(raw), kind=kind, user_id=user.id, created_at=now,
                       expires_at=now + lifetime, data=data)
    db.session.add(row)
    db.session.flush()
    return IssuedLink(raw, row)


def void(user_id: int, kinds: tuple[str, ...], *, now: int | None = None) -> int:
    """Make the user's live links of ``kinds`` unusable; returns how many."""
    now = _now() if now is None else now
    result = db.session.execute(
        update(AccountToken)
        .where(AccountToken.user_id == user_id, AccountToken.kind.in_(kinds),
               AccountToken.used_at.is_(None), AccountToken.voided_at.is_(None))
        .values(voided_at=now),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount  # type: ignore[attr-defined]


def _find(raw: str | None, kinds: tuple[str, ...]) -> AccountToken:
    if not isinstance(raw, str) or not (20 <= len(raw) <= 100):
        raise LinkInvalid("unknown")
    row = db.session.scalar(select(AccountToken).where(AccountToken.digest == digest(raw)))
    if row is None or row.kind not in kinds:
        raise LinkInvalid("unknown")
    if row.used_at is not None:
        raise LinkInvalid("used", row)
    if row.voided_at is not None:
        raise LinkInvalid("voided", row)
    if row.expires_at <= _now():
        raise LinkInvalid("expired", row)
    return row


def peek(raw: str | None, kinds: tuple[str, ...]) -> AccountToken:
    """The live link, without using it.

    Raises:
        LinkInvalid: unknown, used, voided or expired.
    """
    return _find(raw, kinds)


def redeem(raw: str | None, kinds: tuple[str, ...]) -> AccountToken:
    """Use a link once. Of concurrent callers exactly one succeeds; the caller
    commits together with what the link does.

    Raises:
        LinkInvalid: unknown, used, voided or expired (or used meanwhile).
    """
    row = _find(raw, kinds)
    now = _now()
    result = db.session.execute(
        update(AccountToken)
        .where(AccountToken.id == row.id, AccountToken.used_at.is_(None), AccountToken.voided_at.is_(None))
        .values(used_at=now),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkInvalid("used", row)
    set_committed_value(row, "used_at", now)  # already written by the UPDATE: nothing more to flush
    return row
