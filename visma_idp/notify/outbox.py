"""Sending what the outbox holds, with retries and backoff.

Rules (docs/mail.md says the same for operators):

- a message is claimed before it is sent: a conditional UPDATE sets a lease
  (``lease_until``) and counts the try (``attempts``), committed before the
  SMTP conversation starts, so two workers (threads, processes, nodes) never
  send the same row. ``attempts`` doubles as the claim's fencing token: a
  worker whose lease ran out only writes the outcome, or renews its lease,
  while ``attempts`` is still the value its own claim set;
- a message the SMTP server accepted is marked ``sent`` and never tried again;
- a failure waits ``MAIL_RETRY_SECONDS`` × 2^(tries−1) (at most an hour) and
  is tried again, up to ``MAIL_MAX_ATTEMPTS``, then marked ``failed`` (kept;
  ``visma-idp mail retry`` puts it back: :func:`retry`). A 5xx answer about one message
  (unknown recipient, rejected content) is final at once: trying again
  cannot help;
- without ``SMTP_URL`` nothing leaves: messages stay pending in the outbox
  (demo mode shows them at ``/dev/outbox`` and in the console);
- the ``Message-ID`` header is fixed when the message is composed, so in the
  one case where a worker dies (or loses the database) after the server
  accepted a message and before it wrote ``sent``, the retry carries the same
  id and receivers can drop the duplicate.
"""

from __future__ import annotations

import importlib
import logging
import smtplib
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update

from .. import audit
from ..context import request_state
from ..storage import MailOutbox, db
from .smtp import MESSAGE_REFUSED, SmtpSettings, SmtpTransport, is_permanent

log = logging.getLogger("visma_idp.mail")

LEASE_SECONDS = 300
MAX_BACKOFF = 3600
FLUSH_EVERY_SECONDS = 30


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    lost_lease: int = 0  # claimed, but another worker took it over before we sent it
    notices: int = 0  # profile-change batches turned into messages first (run_once)

    @property
    def tried(self) -> int:
        return self.sent + self.retrying + self.failed + self.lost_lease

    def __str__(self) -> str:
        text = f"sent {self.sent}, retrying {self.retrying}, failed {self.failed}"
        return f"{text}, notices {self.notices}" if self.notices else text


def sender_address(idp) -> str:
    configured = idp.settings.get("MAIL_FROM")
    if configured:
        return configured
    return formataddr(("Visma IdP", f"no-reply@{_issuer_host(idp)}"))


def _issuer_host(idp) -> str:
    return urlsplit(idp.issuer).hostname or "localhost"


def as_email(row: Any, sender: str) -> EmailMessage:
    """The message as it goes on the wire: multipart/alternative (text, then
    HTML), with the Message-ID and Date fixed when it was composed."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row.to_addr
    message["Subject"] = row.subject
    message["Message-ID"] = row.message_id
    message["Date"] = formatdate(row.created_at, usegmt=True)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(row.text_body)
    message.add_alternative(row.html_body, subtype="html")
    # after the body: set_content() drops every Content-* header set before it
    message["Content-Language"] = row.locale
    return message


def backoff(idp, attempts: int) -> int:
    """Seconds to wait after the ``attempts``-th failed try."""
    return int(min(MAX_BACKOFF, idp.settings["MAIL_RETRY_SECONDS"] * 2 ** max(0, attempts - 1)))


def describe_error(exc: BaseException) -> str:
    """A short line for ``last_error`` (the server's answer when it gave one)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = "; ".join(f"{addr}: {code} {_text(msg)}" for addr, (code, msg) in exc.recipients.items())
        text = f"recipient refused: {answers}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        text = f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:1000]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _due(now: int):
    return (MailOutbox.status == "pending", MailOutbox.next_attempt_at <= now,
            or_(MailOutbox.lease_until.is_(None), MailOutbox.lease_until <= now))


def _lease(idp) -> int:
    # long enough to cover one message's SMTP conversation many times over
    return int(max(LEASE_SECONDS, 10 * idp.settings["SMTP_TIMEOUT"]))


def _claim(row_id: int, seen_attempts: int, now: int, lease: int) -> bool:
    """Take the row if it is still pending, due and unclaimed; True when we got it."""
    result = db.session.execute(
        update(MailOutbox)
        .where(MailOutbox.id == row_id, MailOutbox.attempts == seen_attempts, *_due(now))
        .values(lease_until=now + lease, attempts=seen_attempts + 1),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def _ours(row_id: int, attempts: int):
    return (MailOutbox.id == row_id, MailOutbox.attempts == attempts, MailOutbox.status == "pending")


def _write(row_id: int, attempts: int, **values: Any) -> bool:
    """Update the row only while our claim stands; True when it did."""
    result = db.session.execute(
        update(MailOutbox).where(*_ours(row_id, attempts)).values(**values),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def deliver_due(idp, *, limit: int = 100) -> DeliveryReport:
    """Send the messages that are due, once each; needs an app context.

    It commits the context's session several times: call it in a context of
    its own (the worker, the flush after requests, ``mailbox.deliver()``).

    Returns:
        How many were sent, will be retried, and failed for good.
    """
    report = DeliveryReport()
    url = idp.settings.get("SMTP_URL")
    if not url:
        return report
    now = idp.clock.now()
    lease = _lease(idp)
    seen = db.session.execute(
        select(MailOutbox.id, MailOutbox.attempts).where(*_due(now)).order_by(MailOutbox.id).limit(limit)
    ).all()
    db.session.commit()  # end the read before the claims (SQLite then takes its write lock afresh)
    claimed = {row_id: attempts + 1 for row_id, attempts in seen if _claim(row_id, attempts, now, lease)}
    db.session.commit()
    if not claimed:
        return report
    rows = list(db.session.scalars(select(MailOutbox).where(MailOutbox.id.in_(claimed)).order_by(MailOutbox.id)))
    db.session.expunge_all()  # plain snapshots from here on: every write below is a conditional UPDATE
    sender = sender_address(idp)
    lease_until = now + lease
    waiting = [(row, claimed[row.id]) for row in rows]
    try:
        settings = SmtpSettings.from_url(url, idp.settings["SMTP_TIMEOUT"], local_hostname=_issuer_host(idp))
        with SmtpTransport(settings) as transport:
            while waiting:
                row, attempts = waiting[0]
                if idp.clock.now() + lease // 2 > lease_until:  # renew before the lease gets short
                    lease_until = idp.clock.now() + lease
                    still_ours = _write(row.id, attempts, lease_until=lease_until)
                    db.session.commit()
                    if not still_ours:
                        waiting.pop(0)
                        report.lost_lease += 1
                        log.warning("mail %s: another worker took it over; not sending it", row.id)
                        continue
                try:
                    transport.send(as_email(row, sender))
                except MESSAGE_REFUSED as exc:  # the server refused this message; the connection is fine
                    waiting.pop(0)
                    _failed(idp, row, attempts, exc, report, permanent=is_permanent(exc))
                else:
                    # accepted: from here on this row is never tried again by us, whatever
                    # happens to the database (the crash window: docs/mail.md)
                    waiting.pop(0)
                    report.sent += 1
                    if not _write(row.id, attempts, status="sent", sent_at=idp.clock.now(), lease_until=None,
                                  last_error=None):
                        log.warning("mail %s: sent, but another worker had taken it over", row.id)
                    log.info("mail %s sent to %s (%s)", row.id, row.to_addr, row.kind)
                db.session.commit()
    except Exception as exc:  # noqa: BLE001 - the server is down, refused us, or hung up
        db.session.rollback()
        for row, attempts in waiting:
            _failed(idp, row, attempts, exc, report, permanent=False)
        db.session.commit()
    return report


def _failed(idp, row, attempts: int, exc: BaseException, report: DeliveryReport, *, permanent: bool) -> None:
    error = describe_error(exc)
    if permanent or attempts >= idp.settings["MAIL_MAX_ATTEMPTS"]:
        if _write(row.id, attempts, status="failed", lease_until=None, last_error=error):
            report.failed += 1
            log.error("mail %s to %s failed for good after %s tries: %s", row.id, row.to_addr, attempts, error)
    else:
        wait = backoff(idp, attempts)
        if _write(row.id, attempts, lease_until=None, last_error=error, next_attempt_at=idp.clock.now() + wait):
            report.retrying += 1
            log.warning("mail %s to %s not sent (try %s), again in %s s: %s", row.id, row.to_addr, attempts,
                        wait, error)


def flush_notices(idp) -> int:
    """Turn due batched notices (profile changes, changes of roles) into
    outbox messages, when that part of the package exists
    (``visma_idp.account.notifications``)."""
    try:
        flush = importlib.import_module("visma_idp.account.notifications").flush_due_notices
    except (ImportError, AttributeError):
        return 0
    result = flush(idp)
    db.session.commit()
    if isinstance(result, int):
        return result
    return len(result) if hasattr(result, "__len__") else 0


def run_once(idp, *, limit: int = 100) -> DeliveryReport:
    """One round of the mail worker: due notices into the outbox, then send
    what is due. Needs an app context."""
    notices = flush_notices(idp)
    report = deliver_due(idp, limit=limit)
    report.notices = notices
    return report


# -- reading and retrying (the mail commands, the dev outbox) ---------------------


def newest(*, limit: int, status: str | None = None) -> list[MailOutbox]:
    """The newest messages first, at most ``limit``; with ``status``, only those in that state."""
    query = select(MailOutbox).order_by(MailOutbox.id.desc()).limit(limit)
    if status:
        query = query.where(MailOutbox.status == status)
    return list(db.session.scalars(query))


def retry(idp, *, message_id: int | None = None) -> list[int]:
    """Send messages again: a failed one goes back to pending with a fresh
    count of tries; a pending one is due at once. A sent message is never
    touched. ``message_id`` None: every failed message. Audited
    (``mail_retry``) when there is any; the caller commits.

    Returns:
        The ids of the messages that are now due, in order.
    """
    now = idp.clock.now()
    if message_id is None:
        where = [MailOutbox.status == "failed"]
    else:
        where = [MailOutbox.id == message_id, MailOutbox.status.in_(["failed", "pending"])]
    ids = list(db.session.scalars(select(MailOutbox.id).where(*where).order_by(MailOutbox.id)))
    if ids:
        db.session.execute(
            update(MailOutbox).where(MailOutbox.id.in_(ids), MailOutbox.status == "failed")
            .values(status="pending", attempts=0, lease_until=None, next_attempt_at=now),
            execution_options={"synchronize_session": False},
        )
        db.session.execute(
            update(MailOutbox).where(MailOutbox.id.in_(ids), MailOutbox.status == "pending")
            .values(next_attempt_at=now),
            execution_options={"synchronize_session": False},
        )
        audit.record("mail_retry", details={"messages": ids})
    return ids


# -- flush after requests (dev server, demo) ------------------------------------


def install_flush(app, idp) -> None:
    """With ``MAIL_FLUSH_AFTER_REQUEST``: once a response has gone out, run a
    worker round when its request queued mail (``request_state().mail_queued``), or when
    the last round in this process was ``FLUSH_EVERY_SECONDS`` ago (retries,
    due notices). SMTP trouble never touches the response: it is logged and
    the messages stay in the outbox for the next round."""
    if not idp.settings["MAIL_FLUSH_AFTER_REQUEST"]:
        return

    state = {"last": float("-inf")}
    lock = threading.Lock()

    def due_now() -> bool:
        with lock:
            if request_state().mail_queued or idp.clock.now() - state["last"] >= FLUSH_EVERY_SECONDS:
                state["last"] = idp.clock.now()
                return True
            return False

    def flush() -> None:
        try:
            with app.app_context():
                try:
                    report = run_once(idp)
                    if report.tried or report.notices:
                        log.info("mail flushed after a request: %s", report)
                finally:
                    db.session.remove()
        except Exception:  # noqa: BLE001 - the response is already on its way
            log.exception("mail flush after a request failed; the worker or the next flush sends it")

    @app.after_request
    def _flush_mail(response):
        if due_now():
            response.call_on_close(flush)
        return response
