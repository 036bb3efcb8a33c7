"""Security events: who, what, when, where from.

``record()`` adds a row to the audit table in the current transaction, logs
a line to the ``visma_idp.audit`` logger and sends the ``audit_event``
signal. Callers commit with the change the event describes; events about
refusals (failed logins, reuse detection) are committed by the view even
though the request fails.

Rules:
- an event about an agreement names it (``agreement``: its public id, in a
  column of its own), so the agreement's admins read its log without seeing
  any other agreement's rows (:func:`events_of_agreement`); in such a row
  ``details["by"]`` is the id of the person who did it (an admin, or the
  invited person accepting), absent when the operator's command did;
- details hold ids, names of roles and apps, reasons: never a secret (a code,
  a link, a password);
- a row recorded while serving a request carries the request's id
  (``request_id``, the ``X-Request-Id`` of its response), and every row is
  counted in ``visma_idp_audit_events_total`` (``observability/``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from blinker import Namespace
from flask import current_app, g, has_request_context, request
from sqlalchemy import select

from . import observability
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


def act_as(*, by: int | None, via_client: str | None = None, via: str | None = None) -> None:
    """Name who acts in the rest of this request (an admin on the console or
    the admin API's caller): every row recorded afterwards says so in its
    details (``by``: the person's user id; ``via_client``: the client whose
    token was used; ``via``: where, like ``admin_console``), unless the row
    names its own. Kept in the request's ``g``: another request's rows,
    recorded meanwhile in another thread, are never stamped."""
    g.audit_actor = {key: value for key, value in (("by", by), ("via_client", via_client), ("via", via))
                     if value is not None}


@contextmanager
def acting(*, by: int | None, via_client: str | None = None, via: str | None = None) -> Iterator[None]:
    """:func:`act_as` for the rows recorded inside the block only."""
    before = g.get("audit_actor")
    act_as(by=by, via_client=via_client, via=via)
    try:
        yield
    finally:
        g.audit_actor = before


def _column(value: str | None, size: int) -> str | None:
    """A value that may come straight from a request, fit for its text column:
    cut to its size, NUL written as U+FFFD (PostgreSQL refuses NUL in text;
    an audit row must never be the reason a request fails)."""
    if not value:
        return value
    return value[:size].replace("\x00", "\ufffd")


def record(
    event: str,
    *,
    outcome: str = "success",
    user_id: int | None = None,
    subject: str | None = None,
    client_id: str | None = None,
    details: dict[str, Any] | None = None,
    agreement: str | None = None,
) -> AuditEvent:
    """Add the event's row (``agreement``: the public id of the agreement it is
    about); the caller commits."""
    idp = current_idp()
    actor = g.get("audit_actor") if has_request_context() else None
    if actor:
        details = {**actor, **(details or {})}
    ua = _column(request.headers.get("User-Agent", ""), 400) if has_request_context() else None
    # subject and client_id may come straight from a request: cut them to their columns
    row = AuditEvent(
        at=idp.clock.now(), event=event, outcome=outcome, user_id=user_id,
        subject=_column(subject, 320), client_id=_column(client_id, 128),
        ip=client_ip(), user_agent=ua, details=details or None, agreement=_column(agreement, 36),
        request_id=observability.current_request_id(),
    )
    db.session.add(row)
    log.info(
        "%s outcome=%s user_id=%s subject=%s client_id=%s ip=%s details=%s%s",
        event, outcome, user_id, _loggable(row.subject), _loggable(row.client_id), row.ip, details or {},
        f" agreement={_loggable(row.agreement)}" if row.agreement else "",
        extra={"request_id": row.request_id},
    )
    observability.audit_recorded(event, outcome, details)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    audit_event.send(app, event=row)
    return row


def events_of_user(user_id: int, *, events: list[str], limit: int) -> list[AuditEvent]:
    """The user's own events among ``events``, newest first, at most ``limit``."""
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.user_id == user_id, AuditEvent.event.in_(events))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    ))


def events_of_agreement(agreement: str, *, limit: int, before: int | None = None) -> list[AuditEvent]:
    """The events about the agreement whose public id is ``agreement``, newest
    (highest id) first, at most ``limit``; with ``before``, only rows with a
    smaller id (the next page). One statement, on the index (agreement, id)."""
    query = select(AuditEvent).where(AuditEvent.agreement == agreement)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    return list(db.session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)))


def newer_page_of_agreement(agreement: str, before: int, *, limit: int) -> int | None:
    """The ``before`` of the page of ``limit`` events just newer than the page
    that starts below ``before`` (None: that newer page is the newest one)."""
    return db.session.scalar(
        select(AuditEvent.id).where(AuditEvent.agreement == agreement, AuditEvent.id >= before)
        .order_by(AuditEvent.id).offset(limit).limit(1))
