"""The single sign-on session (server side) and the login transactions.

* The SSO session lives in the ``sso_sessions`` table; the browser holds a
  random id in the ``__Host-visma_idp_sid`` cookie (HttpOnly, Secure,
  SameSite=Lax; without ``__Host-``/Secure only for a loopback issuer). The
  table keys on the id's digest. A login always creates a new session id.
* A login transaction remembers one pending authorization request while the
  user goes through the login pages. It lives in Flask's signed session
  cookie, keyed by a random ``tx`` id, at most ``MAX_TX`` at a time and at
  most ``TX_BUDGET`` characters together: older ones give way, so a request
  with huge parameters (a link on someone else's page) cannot push the cookie
  past the ~4 KB browsers keep and break every later sign-in in that browser.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from flask import g, request, session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy.orm.attributes import set_committed_value

from ..context import current_idp
from ..crypto import digest
from ..storage import SsoSession, db, queries
from ..storage.models import new_sub

MAX_TX = 5
TX_BUDGET = 2400  # JSON characters for all pending transactions (the cookie must stay under 4 KB)
TX_MAX_AGE = 3600  # a pending request is worth at most an hour
LAST_SEEN_EVERY = 60  # seconds between updates of a session's last_seen_at


class TransactionCookieInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session (it carries only the login transactions),
    with its serializer built once per secret instead of on every request."""

    def __init__(self) -> None:
        self._cached: tuple[Any, Any] | None = None

    def get_signing_serializer(self, app):
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = self._cached
        if cached is None or cached[0] != keys:
            cached = (keys, super().get_signing_serializer(app))
            self._cached = cached
        return cached[1]



def current_session() -> SsoSession | None:
    """The live SSO session of this browser, or None."""
    if "idp_session" in g:
        return g.idp_session
    found = None
    raw = request.cookies.get(current_idp().sid_cookie)
    if raw and len(raw) < 200:
        row = queries.session_by_digest(digest(raw))
        now = current_idp().clock.now()
        if (row is not None and row.ended_at is None and row.expires_at > now and row.user.is_active
                and row.user.locked_at is None):
            found = row
            if now - row.last_seen_at >= LAST_SEEN_EVERY:
                # "last active" on My details: one write a minute at most
                queries.touch_session(row.id, now)
                set_committed_value(row, "last_seen_at", now)  # already stored: nothing to flush
    g.idp_session = found
    return found


def start_session(user, *, amr: list[str], acr: str) -> SsoSession:
    """Create a fresh session (new id) for ``user``; ends the browser's previous one."""
    idp = current_idp()
    now = idp.clock.now()
    old = current_session()
    if old is not None:
        old.ended_at = now
    raw = secrets.token_urlsafe(32)
    row = SsoSession(
        id=digest(raw), public_id=new_sub(), user_id=user.id, created_at=now, auth_time=now, last_seen_at=now,
        expires_at=now + idp.settings["SESSION_LIFETIME"], amr=amr, acr=acr,
        ip=request.remote_addr, user_agent=request.headers.get("User-Agent", "")[:400],
    )
    row.user = user
    db.session.add(row)
    g.idp_session = row
    g.set_sid_cookie = raw
    # new CSRF token after login (the old one was issued to an anonymous page)
    session.pop("csrf_token", None)
    return row


def end_current_session() -> SsoSession | None:
    row = current_session()
    if row is not None:
        row.ended_at = current_idp().clock.now()
    g.idp_session = None
    g.clear_sid_cookie = True
    session.pop("login_email", None)
    return row


def apply_cookies(response):
    """after_request: write or clear the session cookie."""
    idp = current_idp()
    raw = g.get("set_sid_cookie")
    if raw:
        response.set_cookie(
            idp.sid_cookie, raw, max_age=idp.settings["SESSION_LIFETIME"], path="/",
            secure=idp.secure_cookies, httponly=True, samesite="Lax",
        )
    elif g.get("clear_sid_cookie"):
        response.delete_cookie(idp.sid_cookie, path="/", secure=idp.secure_cookies, httponly=True, samesite="Lax")
    return response


# -- login transactions ----------------------------------------------------

def _size(txs: dict[str, Any]) -> int:
    return len(json.dumps(txs, separators=(",", ":")))


def new_transaction(params: dict[str, Any]) -> str:
    now = current_idp().clock.now()
    txs: dict[str, Any] = {k: v for k, v in (session.get("tx") or {}).items() if now - v["created"] <= TX_MAX_AGE}
    tx_id = secrets.token_urlsafe(12)
    txs[tx_id] = {"params": params, "created": now}
    while len(txs) > 1 and (len(txs) > MAX_TX or _size(txs) > TX_BUDGET):
        oldest = min((k for k in txs if k != tx_id), key=lambda k: txs[k]["created"])
        txs.pop(oldest)
    session["tx"] = txs
    return tx_id


def get_transaction(tx_id: str | None) -> dict[str, Any] | None:
    if not tx_id:
        return None
    tx = (session.get("tx") or {}).get(tx_id)
    if tx is None:
        return None
    if current_idp().clock.now() - tx["created"] > TX_MAX_AGE:
        drop_transaction(tx_id)
        return None
    return tx


def pending_redirect_uris() -> list[str]:
    """Where this browser's pending sign-ins will return: the redirect URI each
    authorization request named (checked before its transaction was saved in
    the signed cookie), or the client's only registered one."""
    if "tx" not in session:
        return []
    uris = []
    for tx in (session.get("tx") or {}).values():
        params = tx.get("params") or {}
        uri = params.get("redirect_uri")
        if not uri and isinstance(params.get("client_id"), str):
            client = current_idp().clients.get(params["client_id"])
            uri = client.get_default_redirect_uri() if client is not None else None
        if isinstance(uri, str) and uri:
            uris.append(uri)
    return uris


def update_transaction(tx_id: str, **changes: Any) -> None:
    txs = dict(session.get("tx") or {})
    if tx_id in txs:
        txs[tx_id] = {**txs[tx_id], **changes}
        session["tx"] = txs


def drop_transaction(tx_id: str) -> None:
    txs = dict(session.get("tx") or {})
    if txs.pop(tx_id, None) is not None:
        session["tx"] = txs
