"""Security events: who, what, when, where from.

``record()`` adds a row to the audit table in the current transaction, logs
a line to the ``visma_idp.audit`` logger and sends the ``audit_event``
signal. Callers commit with the change the event describes; events about
refusals (failed logins, reuse detection) are committed by the view even
though the request fails.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from blinker import Namespace
from flask import current_app, has_request_context, request
from sqlalchemy import select

from .context import current_idp
from .storage import AuditEvent, db

log = logging.getLogger("visma_idp.audit")
signals = Namespace()
audit_event = signals.signal("audit-event")


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def _loggable(value: str | None) -> str | None:
    """Escape control characters in request-supplied text (emails, client ids),
    so a value cannot end the log line and forge another one."""
    if value is None:
        return None
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def client_ip() -> str | None:
    if not has_request_context():
        return None
    return request.remote_addr


def record(
    event: str,
    *,
    outcome: str = "success",
    user_id: int | None = None,
    subject: str | None = None,
    client_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    idp = current_idp()
    ua = request.headers.get("User-Agent", "")[:400] if has_request_context() else None
    # subject and client_id may come straight from a request: cut them to their columns
    row = AuditEvent(
        at=idp.clock.now(), event=event, outcome=outcome, user_id=user_id,
        subject=subject[:320] if subject else subject, client_id=client_id[:128] if client_id else client_id,
        ip=client_ip(), user_agent=ua, details=details or None,
    )
    db.session.add(row)
    log.info(
        "%s outcome=%s user_id=%s subject=%s client_id=%s ip=%s details=%s",
        event, outcome, user_id, _loggable(row.subject), _loggable(row.client_id), row.ip, details or {},
    )
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    audit_event.send(app, event=row)
    return row


def events_of_user(user_id: int, *, events: list[str], limit: int) -> list[AuditEvent]:
    """The user's own events among ``events``, newest first, at most ``limit``."""
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.user_id == user_id, AuditEvent.event.in_(events))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    ))
