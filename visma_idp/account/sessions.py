"""Ending a user's sessions and tokens (after a password reset or change,
"sign out of all other sessions", an account lock)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .. import audit
from ..storage import queries


@dataclass(frozen=True)
class Revoked:
    sessions: int
    tokens: int


def revoke_everything(user_id: int, *, keep_session_id: str | None = None, tokens: bool = True,
                      reason: str) -> Revoked:
    """End the user's SSO sessions (all but ``keep_session_id``) and, with
    ``tokens``, revoke every refresh and access token they hold; audited as
    ``sessions_revoked``. The caller commits.

    Args:
        user_id: whose sessions.
        keep_session_id: the ``SsoSession.id`` (digest) to keep, or None for all.
        tokens: also revoke refresh and access tokens.
        reason: why (``password_reset``, ``password_changed``, ``sign_out_others``, ...), for the audit row.
    """
    now = current_app.extensions["visma_idp"].clock.now()
    ended = queries.end_sessions_of_user(user_id, now, except_id=keep_session_id)
    revoked = queries.revoke_tokens_of_user(user_id, now) if tokens else 0
    audit.record("sessions_revoked", user_id=user_id,
                 details={"reason": reason, "sessions": ended, "tokens": revoked})
    return Revoked(ended, revoked)
