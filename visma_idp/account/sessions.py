"""Ending a user's sessions and tokens, and voiding the mailed links that
would change the account.

Rules:
- :func:`revoke_everything` runs after a password reset or change, "sign out
  of all other sessions" and an account lock ("this wasn't me"). It ends the
  SSO sessions (all but the caller's own when asked), revokes the tokens when
  asked, and ALWAYS voids the pending links (:func:`void_pending_links`): no
  caller can end the sessions and forget a link that would give the account
  away, such as an email change asked for by someone who knew the old
  password;
- :func:`void_pending_links` also runs on its own for an admin's action on the
  account that ends no session: an admin-issued one-time code and a resent
  activation email;
- which kinds of link die is ``tokens.VOIDED_BY_SECURITY_EVENTS`` (the rule
  for each kind is in ``tokens.py``); "this wasn't me" stays: it is the
  owner's way back;
- the caller learns the address of a live email change that was cancelled,
  so the owner is told (the password-changed notice, the pages), and only
  when there was one; an expired one is not reported;
- the throttle's pause after wrong passwords is not an account lock: anyone
  can cause it by typing wrong passwords, so it voids nothing;
- audited: ``sessions_revoked`` (with the number of links), and
  ``email_change_cancelled`` (shown on My details) when a live email change
  was voided; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from .. import audit
from ..context import current_idp
from ..storage import AccountToken, db, queries
from . import tokens as links


@dataclass(frozen=True)
class Voided:
    links: int  # live links voided, of every kind
    email_change: str | None  # the new address of a live email change that was cancelled


@dataclass(frozen=True)
class Revoked:
    sessions: int
    tokens: int
    links: int = 0
    email_change: str | None = None


def _now() -> int:
    return current_idp().clock.now()


def void_pending_links(user_id: int, *, reason: str, now: int | None = None) -> Voided:
    """Void the user's live links that would change the account or sign
    someone in (``tokens.VOIDED_BY_SECURITY_EVENTS``). The caller commits.

    Args:
        user_id: whose links.
        reason: why (``password_reset``, ``one_time_code_issued``, ...), for the audit row.
        now: the time of the event (default: the app clock).

    Returns:
        How many links were voided, and the new address of a live email
        change among them (None when there was none).
    """
    now = _now() if now is None else now
    pending = db.session.scalars(
        select(AccountToken)
        .where(AccountToken.user_id == user_id, AccountToken.kind == links.EMAIL_CHANGE,
               AccountToken.used_at.is_(None), AccountToken.voided_at.is_(None), AccountToken.expires_at > now)
        .order_by(AccountToken.id.desc()).limit(1)
    ).first()
    new_address = None
    if pending is not None:
        new_address = str((pending.data or {}).get("email") or "") or None
    count = links.void(user_id, links.VOIDED_BY_SECURITY_EVENTS, now=now)
    if new_address is not None:
        audit.record("email_change_cancelled", user_id=user_id, subject=new_address,
                     details={"reason": reason, "to": new_address})
    return Voided(count, new_address)


def revoke_everything(user_id: int, *, keep_session_id: str | None = None, tokens: bool = True,
                      reason: str) -> Revoked:
    """End the user's SSO sessions (all but ``keep_session_id``), with
    ``tokens`` revoke every refresh and access token they hold, and void
    every pending link that would change the account (:func:`void_pending_links`);
    audited as ``sessions_revoked``. The caller commits.

    Args:
        user_id: whose sessions.
        keep_session_id: the ``SsoSession.id`` (digest) to keep, or None for all.
        tokens: also revoke refresh and access tokens.
        reason: why (``password_reset``, ``password_changed``, ``sign_out_others``, ...), for the audit rows.

    Returns:
        What ended: sessions, tokens, links, and the address of a cancelled email change.
    """
    now = _now()
    ended = queries.end_sessions_of_user(user_id, now, except_id=keep_session_id)
    revoked = queries.revoke_tokens_of_user(user_id, now) if tokens else 0
    voided = void_pending_links(user_id, reason=reason, now=now)
    audit.record("sessions_revoked", user_id=user_id,
                 details={"reason": reason, "sessions": ended, "tokens": revoked, "links": voided.links})
    return Revoked(ended, revoked, voided.links, voided.email_change)
