"""Changing the email address (the username).

Rules:
- a request needs the current password (throttled like a login, per
  account) and a new address; it sends a confirmation link (kind
  ``email_change``, ``EMAIL_CHANGE_LIFETIME``) to the NEW address and a
  notice with a "this wasn't me" link (kind ``email_cancel``,
  ``EMAIL_CHANGE_CANCEL_LIFETIME``) to the OLD one; a newer request voids the older
  confirmation link; at most ``EMAIL_CHANGES_PER_HOUR`` requests an hour;
- the answer to a request is the same whether or not the new address
  already belongs to another account (the same mail goes out as well): the
  requester learns nothing about other accounts;
- nothing changes until the new address is confirmed (a GET shows a button,
  the POST redeems the link); uniqueness is checked again then, before the
  write and by the unique index inside a savepoint. Of two accounts racing
  for one address the first confirmation wins; the other gets 409 with a
  clear message. A link that lost the race is NOT spent: it keeps showing
  the conflict until it expires or a newer request replaces it (and works
  if the address becomes free meanwhile). Only the person who opens the
  confirmation link learns of the conflict, and that person reads the new
  mailbox, which could learn the same through "forgot password";
- the new address is parsed like every other (``addresses.py``: exactly one
  address, stored in its one spelling);
- on confirmation: the address is stored as parsed, ``email_verified`` is
  true, the password stays the same, reset and one-time login links sent to
  the old address stop working, "email_changed" goes to both addresses and
  the change is audited. The user's sessions and tokens keep working: the
  change needed the password and the new mailbox, and the sessions belong
  to the same person (a hijacker is stopped by the "this wasn't me" link);
- "this wasn't me" (GET confirm page, POST) voids a pending change; if the
  change was already confirmed it gives the old address back when no other
  account took it meanwhile; then it locks the account until the password
  is reset (``locked_at``), ends every session, revokes every token and
  voids every reset, one-time login and email change link (they may have
  gone to the other address: ``sessions.revoke_everything`` voids them, as
  after every password reset or change). Audited as ``account_locked_by_user``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import addresses, audit
from ..context import current_idp
from ..notify.messages import queue
from ..storage import AccountToken, User, db, queries
from . import tokens
from .sessions import revoke_everything

MAX_EMAIL = addresses.MAX_TYPED


class EmailChangeError(Exception):
    """``code``: ``taken`` (409) or ``locked``; ``email`` is the new address."""

    def __init__(self, code: str, email: str = ""):
        self.code = code
        self.email = email
        super().__init__(code)



def taken_by_other(address: str, user_id: int) -> bool:
    user = queries.user_by_email(address)
    return user is not None and user.id != user_id


def requests_last_hour(user_id: int) -> int:
    since = current_idp().clock.now() - 3600
    return db.session.scalar(
        select(func.count()).select_from(AccountToken)
        .where(AccountToken.user_id == user_id, AccountToken.kind == tokens.EMAIL_CHANGE,
               AccountToken.created_at > since)
    ) or 0


def request_change(user: User, new_address: str) -> None:
    """Send the confirmation link to ``new_address`` and the notice to the
    current one; the caller commits. The same happens whether or not the
    address is free (see the module rules)."""
    idp = current_idp()
    old = user.email
    confirm = tokens.issue(user, tokens.EMAIL_CHANGE, lifetime=idp.settings["EMAIL_CHANGE_LIFETIME"],
                           data={"email": new_address, "old": old}, void_kinds=(tokens.EMAIL_CHANGE,))
    cancel = tokens.issue(user, tokens.EMAIL_CANCEL, lifetime=idp.settings["EMAIL_CHANGE_CANCEL_LIFETIME"],
                          data={"email": new_address, "old": old, "change": confirm.row.id})
    hours = max(1, idp.settings["EMAIL_CHANGE_LIFETIME"] // 3600)
    queue("email_change_confirm", to=new_address, user=user, new_email=new_address, hours=hours,
          link=idp.url("account.email_confirm", token=confirm.raw))
    queue("email_change_notice", to=old, user=user, new_email=new_address,
          link=idp.url("account.email_cancel", token=cancel.raw))
    audit.record("email_change_requested", user_id=user.id, subject=old)


@dataclass(frozen=True)
class Changed:
    user: User
    old: str
    new: str


def confirm_change(raw: str | None) -> Changed:
    """Redeem a confirmation link and change the address; commits.

    Raises:
        tokens.LinkInvalid: the link is unknown, expired, used or voided.
        EmailChangeError: ``taken`` (another account has the address; the
            link is left as it was) or ``locked``.
    """
    row = tokens.peek(raw, (tokens.EMAIL_CHANGE,))
    user = row.user
    new = str((row.data or {}).get("email") or "")
    if user.locked_at is not None or not user.is_active:
        raise EmailChangeError("locked", new)
    if taken_by_other(new, user.id):
        _conflict(user, new)
    row = tokens.redeem(raw, (tokens.EMAIL_CHANGE,))
    old = user.email
    try:
        with db.session.begin_nested():
            user.email = new
            db.session.flush()
    except IntegrityError:
        # another account took the address after our check: the whole
        # transaction goes, so the link is not spent
        db.session.rollback()
        user = db.session.get(User, row.user_id)  # type: ignore[assignment]
        _conflict(user, new)
    now = current_idp().clock.now()
    user.email_verified = True
    user.updated_at = now
    # reset and one-time login links went to the old address
    tokens.void(user.id, (tokens.RESET, tokens.LOGIN_LINK), now=now)
    audit.record("email_changed", user_id=user.id, subject=new, details={"from": old})
    for to in (old, new):
        queue("email_changed", to=to, user=user, old_email=old, new_email=new)
    db.session.commit()
    return Changed(user, old, new)


def _conflict(user: User, new: str) -> NoReturn:
    audit.record("email_change_conflict", outcome="failure", user_id=user.id, subject=user.email)
    db.session.commit()
    raise EmailChangeError("taken", new)


@dataclass(frozen=True)
class Cancelled:
    user: User
    restored: bool  # the old address was given back
    kept_other: bool  # the old address was taken meanwhile: the account keeps the new one


def cancel_change(raw: str | None) -> Cancelled:
    """Redeem a "this wasn't me" link: void the change (or undo it), lock the
    account, end everything; commits.

    Raises:
        tokens.LinkInvalid: the link is unknown, expired, used or voided.
    """
    row = tokens.redeem(raw, (tokens.EMAIL_CANCEL,))
    user = row.user
    old = str((row.data or {}).get("old") or "")
    now = current_idp().clock.now()
    restored = kept_other = False
    if old and user.email != old:
        if taken_by_other(old, user.id):
            kept_other = True
        else:
            try:
                with db.session.begin_nested():
                    user.email = old
                    user.email_verified = True
                    db.session.flush()
                restored = True
            except IntegrityError:
                kept_other = True
        if restored:
            audit.record("email_restored", user_id=user.id, subject=old)
    user.locked_at = now
    user.updated_at = now
    revoke_everything(user.id, tokens=True, reason="account_locked_by_user")
    audit.record("account_locked_by_user", user_id=user.id, subject=user.email,
                 details={"restored": restored})
    db.session.commit()
    return Cancelled(user, restored, kept_other)
