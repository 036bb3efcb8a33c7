"""OpenID Connect Back-Channel Logout 1.0, the provider's side: when an SSO
session ends, each relying app that took part in it and registered a
``backchannel_logout_uri`` is sent a signed logout token. Authlib has no
part of this; it is written here in the style of its endpoints.

Rules:
- Every way a session ends is caught in one place: a session with
  ``ended_at`` set (sign-out, RP-initiated logout, a password change or
  reset, "sign out everywhere", an admin or a provisioning deactivation) or
  past ``expires_at`` (expiry, which Keycloak does not tell) is found by
  :func:`queue_ended_sessions`; a conditional UPDATE of
  ``SsoSession.logout_queued_at`` lets exactly one worker queue its tokens.
- The apps that took part are those the session gave a code or a token
  (by ``sid``); each gets one ``LogoutDelivery`` row, with the URI it has
  registered at that moment and a fixed ``jti``.
- The logout token (§2.4): ``typ`` ``logout+jwt``, signed with the app's ID
  token algorithm; ``iss``, ``aud`` (the client id), ``iat``, ``exp``
  (``LOGOUT_TOKEN_LIFETIME``), ``jti``, ``events`` with the back-channel
  logout event, ``sub``, and ``sid`` (always: every session has one); never
  ``nonce``. It is signed afresh at each try (a fresh ``exp``) with the same
  ``jti``.
- Delivery (§2.5) is a POST of ``logout_token`` as a form, without
  redirects, with a timeout (``LOGOUT_TIMEOUT_SECONDS``); 200 or 204 is
  done. Like the mail outbox, a row is claimed with a lease before it is
  sent (a conditional UPDATE that counts the try, committed first), so
  several workers or nodes never send it twice; a failure waits
  ``LOGOUT_RETRY_SECONDS`` x 2^(tries-1) (at most an hour) and is tried
  again, up to ``LOGOUT_MAX_ATTEMPTS``, then is ``failed`` (kept, shown by
  ``visma-idp logout list``, sent again by ``visma-idp logout retry``).
- An RP-initiated logout tries each of its session's apps once, briefly,
  before it redirects (:func:`tell_now`), so the common case is done before
  the person lands back; what fails is left to the queue.
- Nothing here decides whether a session ends: it only tells the apps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import func, select, update

from .. import audit
from ..storage import LogoutDelivery, SsoSession, db, queries
from .tokens import new_jti, sign

log = logging.getLogger("visma_idp.logout")

EVENT = "http://schemas.openid.net/event/backchannel-logout"
LEASE_SECONDS = 120
MAX_BACKOFF = 3600


@dataclass
class Report:
    queued: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    lost_lease: int = 0

    @property
    def tried(self) -> int:
        return self.sent + self.retrying + self.failed


def logout_token(idp, client, *, sub: str, sid: str | None, jti: str) -> str:
    """The signed logout token for ``client`` (§2.4)."""
    now = idp.clock.now()
    claims: dict[str, Any] = {"iss": idp.issuer, "aud": client.client_id, "iat": now,
                              "exp": now + idp.settings["LOGOUT_TOKEN_LIFETIME"], "jti": jti,
                              "events": {EVENT: {}}, "sub": sub}
    if sid:
        claims["sid"] = sid
    alg = client.id_token_signed_response_alg or idp.settings["ID_TOKEN_SIGNING_ALG"]
    return sign(idp.keys, alg, claims, typ="logout+jwt")


def _queue_session(idp, row: SsoSession, reason: str, now: int) -> list[LogoutDelivery]:
    """The deliveries of one session whose queueing this caller has claimed."""
    out = []
    for client_id in sorted(queries.clients_of_session(row.public_id)):
        client = idp.clients.get(client_id)
        if client is None or not client.backchannel_logout_uri:
            continue
        delivery = LogoutDelivery(client_id=client_id, uri=client.backchannel_logout_uri, sub=row.user.sub,
                                  sid=row.public_id, jti=new_jti(), reason=reason, status="pending", attempts=0,
                                  created_at=now, next_attempt_at=now)
        db.session.add(delivery)
        out.append(delivery)
    if out:
        db.session.flush()
        audit.record("logout_tokens_queued", user_id=row.user_id,
                     details={"sid": row.public_id, "reason": reason, "clients": [d.client_id for d in out]})
    return out


def queue_session(idp, row: SsoSession, *, reason: str) -> list[LogoutDelivery]:
    """Queue the logout tokens of one ended session now, unless another
    caller did already (then nothing). The caller commits."""
    now = idp.clock.now()
    if not queries.claim_session_logout(row.id, now):
        return []
    return _queue_session(idp, row, reason, now)


def queue_ended_sessions(idp, *, limit: int = 200) -> int:
    """Queue the tokens of sessions that ended or expired since the last round; commits."""
    now = idp.clock.now()
    queued = 0
    for row in queries.sessions_to_tell(now, limit=limit):
        if not queries.claim_session_logout(row.id, now):
            continue  # another worker has it
        reason = "ended" if row.ended_at is not None else "expired"
        queued += len(_queue_session(idp, row, reason, now))
    db.session.commit()
    return queued


# -- delivery --------------------------------------------------------------------------


def _claim(row_id: int, attempts: int, now: int) -> bool:
    result = db.session.execute(
        update(LogoutDelivery)
        .where(LogoutDelivery.id == row_id, LogoutDelivery.status == "pending",
               LogoutDelivery.attempts == attempts, LogoutDelivery.next_attempt_at <= now)
        .where((LogoutDelivery.lease_until.is_(None)) | (LogoutDelivery.lease_until <= now))
        .values(attempts=attempts + 1, lease_until=now + LEASE_SECONDS),
        execution_options={"synchronize_session": False})
    db.session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


def _write(row_id: int, attempts: int, **values: Any) -> bool:
    """Record an outcome, only while the claim is still ours (``attempts`` is its fencing token)."""
    result = db.session.execute(
        update(LogoutDelivery).where(LogoutDelivery.id == row_id, LogoutDelivery.attempts == attempts)
        .values(**values), execution_options={"synchronize_session": False})
    db.session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


def backoff(idp, attempts: int) -> int:
    return int(min(MAX_BACKOFF, idp.settings["LOGOUT_RETRY_SECONDS"] * 2 ** max(0, attempts - 1)))


def _post(idp, uri: str, token: str, timeout: float) -> str | None:
    """POST the token; None when the app took it, else why not."""
    try:
        answer = requests.post(uri, data={"logout_token": token}, timeout=timeout, allow_redirects=False,
                               headers={"Cache-Control": "no-store"})
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    if answer.status_code in (200, 204):
        return None
    return f"HTTP {answer.status_code}"


def _deliver(idp, row: LogoutDelivery, report: Report, *, timeout: float) -> None:
    now = idp.clock.now()
    seen = row.attempts
    if not _claim(row.id, seen, now):
        report.lost_lease += 1
        return
    attempts = seen + 1
    client = idp.clients.get(row.client_id)
    error = "the client is gone" if client is None else _post(
        idp, row.uri, logout_token(idp, client, sub=row.sub, sid=row.sid, jti=row.jti), timeout)
    now = idp.clock.now()
    if error is None:
        if _write(row.id, attempts, status="sent", sent_at=now, lease_until=None, last_error=None):
            report.sent += 1
            log.info("logout token %s sent to %s", row.id, row.client_id)
        return
    if client is None or attempts >= idp.settings["LOGOUT_MAX_ATTEMPTS"]:
        if _write(row.id, attempts, status="failed", lease_until=None, last_error=error):
            report.failed += 1
            audit.record("logout_delivery_failed", outcome="failure", client_id=row.client_id,
                         details={"delivery": row.id, "attempts": attempts, "error": error})
            db.session.commit()
        return
    if _write(row.id, attempts, lease_until=None, last_error=error, next_attempt_at=now + backoff(idp, attempts)):
        report.retrying += 1
        log.warning("logout token %s to %s not taken (%s); trying again later", row.id, row.client_id, error)


def deliver_due(idp, *, limit: int = 100) -> Report:
    """Send the tokens that are due; needs an app context."""
    now = idp.clock.now()
    report = Report()
    rows = db.session.scalars(
        select(LogoutDelivery).where(LogoutDelivery.status == "pending", LogoutDelivery.next_attempt_at <= now)
        .order_by(LogoutDelivery.next_attempt_at, LogoutDelivery.id).limit(limit)).all()
    for row in rows:
        _deliver(idp, row, report, timeout=idp.settings["LOGOUT_TIMEOUT_SECONDS"])
    return report


def tell_now(idp, deliveries: list[LogoutDelivery], *, timeout: float = 2.0) -> Report:
    """Try each of ``deliveries`` once, briefly (an RP-initiated logout,
    before its redirect); what fails stays queued. Commits."""
    db.session.commit()
    report = Report()
    for row in deliveries:
        _deliver(idp, row, report, timeout=min(timeout, idp.settings["LOGOUT_TIMEOUT_SECONDS"]))
    return report


def run_once(idp, *, limit: int = 100) -> Report:
    """One round of the logout worker: queue the tokens of ended and expired
    sessions, then send what is due. Needs an app context."""
    queued = queue_ended_sessions(idp, limit=limit * 2)
    report = deliver_due(idp, limit=limit)
    report.queued = queued
    return report


# -- reading and retrying (the logout commands) ------------------------------------------


def newest(*, limit: int, status: str | None = None) -> list[LogoutDelivery]:
    query = select(LogoutDelivery).order_by(LogoutDelivery.id.desc()).limit(limit)
    if status:
        query = query.where(LogoutDelivery.status == status)
    return list(db.session.scalars(query))


def count(*, status: str) -> int:
    """How many deliveries are in ``status``."""
    return db.session.scalar(select(func.count()).where(LogoutDelivery.status == status)) or 0


def retry(idp, *, delivery_id: int | None = None) -> list[int]:
    """Send again: a failed delivery goes back to pending with a fresh count
    of tries, due now; ``delivery_id`` None: every failed one. Audited; the caller commits."""
    query = select(LogoutDelivery).where(LogoutDelivery.status == "failed")
    if delivery_id is not None:
        query = select(LogoutDelivery).where(LogoutDelivery.id == delivery_id,
                                             LogoutDelivery.status.in_(("failed", "pending")))
    rows = list(db.session.scalars(query))
    now = idp.clock.now()
    for row in rows:
        row.status, row.attempts, row.next_attempt_at, row.lease_until = "pending", 0, now, None
    if rows:
        audit.record("logout_delivery_retry", details={"deliveries": [r.id for r in rows]})
    return [r.id for r in rows]
