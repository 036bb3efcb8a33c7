"""The single sign-on session.

Rules:
- the session lives in the ``sso_sessions`` table, keyed by the SHA-256
  digest of a random id; the browser holds the id in the ``SSO`` cookie
  (``browser/cookies.py``: ``__Host-``, HttpOnly, Secure, SameSite=Lax);
- a sign-in always makes a new session (a new id: no fixation) and ends the
  browser's previous one; the CSRF token is renewed with it;
- a session counts only while it has not ended or expired and its user is
  active and not locked;
- "last active" (My details) is written at most once a minute.
"""

from __future__ import annotations

import secrets

from flask import request, session
from sqlalchemy.orm.attributes import set_committed_value

from ..context import UNSET, current_idp, request_state
from ..crypto import digest
from ..storage import SsoSession, db, queries
from ..storage.models import new_sub
from . import cookies, signin

LAST_SEEN_EVERY = 60  # seconds between updates of a session's last_seen_at


def current_session() -> SsoSession | None:
    """The live SSO session of this browser, or None (looked up once per request)."""
    state = request_state()
    if state.sso_session is not UNSET:
        return state.sso_session
    found = None
    raw = cookies.read(cookies.SSO)
    if raw and len(raw) < 200:
        row = queries.session_by_digest(digest(raw))
        now = current_idp().clock.now()
        if (row is not None and row.ended_at is None and row.expires_at > now and row.user.is_active
                and row.user.locked_at is None):
            found = row
            if now - row.last_seen_at >= LAST_SEEN_EVERY:
                queries.touch_session(row.id, now)
                set_committed_value(row, "last_seen_at", now)  # already stored: nothing to flush
    state.sso_session = found
    return found


def start_session(user, *, amr: list[str], acr: str, password_at: int | None = None) -> SsoSession:
    """Make a fresh session (new id) for ``user``; ends the browser's previous one.
    The caller commits."""
    idp = current_idp()
    now = idp.clock.now()
    old = current_session()
    if old is not None:
        old.ended_at = now
    raw = secrets.token_urlsafe(32)
    row = SsoSession(
        id=digest(raw), public_id=new_sub(), user_id=user.id, created_at=now, auth_time=now, last_seen_at=now,
        expires_at=now + idp.settings["SESSION_LIFETIME"], amr=amr, acr=acr, password_at=password_at,
        ip=request.remote_addr, user_agent=request.headers.get("User-Agent", "")[:400],
    )
    row.user = user
    db.session.add(row)
    request_state().sso_session = row
    cookies.set(cookies.SSO, raw, max_age=idp.settings["SESSION_LIFETIME"])
    session.pop("csrf_token", None)  # a new CSRF token after sign-in (the old one was an anonymous page's)
    return row


def end_current_session() -> SsoSession | None:
    """End this browser's session (if any), forget its cookie and anything of a
    sign-in (the typed email too). The caller commits."""
    row = current_session()
    if row is not None:
        row.ended_at = current_idp().clock.now()
    request_state().sso_session = None
    cookies.clear(cookies.SSO)
    signin.forget()
    return row
