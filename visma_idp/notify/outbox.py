"""Sending what the outbox holds, with retries and backoff.

Rules:
- a message is claimed before it is sent: a conditional UPDATE sets a lease
  (``lease_until``) and counts the try, committed before the SMTP
  conversation, so two workers never send the same row;
- a message the SMTP server accepted is marked ``sent`` and never tried again;
- a failure waits ``MAIL_RETRY_SECONDS`` × 2^(tries−1) (at most an hour) and
  is tried again, up to ``MAIL_MAX_ATTEMPTS``, then marked ``failed`` (kept);
- without ``SMTP_URL`` nothing leaves: messages stay pending in the outbox
  (demo mode shows them at ``/dev/outbox``);
- the ``Message-ID`` header is fixed when the message is composed, so in the
  one case where a worker dies after the server accepted a message and
  before it wrote ``sent``, the retry carries the same id and receivers can
  drop the duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update

from ..storage import MailOutbox, db
from .smtp import SmtpSettings, SmtpTransport

LEASE_SECONDS = 120
MAX_BACKOFF = 3600


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def sender_address(idp) -> str:
    configured = idp.settings.get("MAIL_FROM")
    if configured:
        return configured
    return formataddr(("Visma IdP", f"no-reply@{urlsplit(idp.issuer).hostname or 'localhost'}"))


def as_email(row: MailOutbox, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row.to_addr
    message["Subject"] = row.subject
    message["Message-ID"] = row.message_id
    message["Date"] = formatdate(row.created_at, usegmt=True)
    message["Content-Language"] = row.locale
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(row.text_body)
    message.add_alternative(row.html_body, subtype="html")
    return message


def backoff(idp, attempts: int) -> int:
    return int(min(MAX_BACKOFF, idp.settings["MAIL_RETRY_SECONDS"] * 2 ** max(0, attempts - 1)))


def _claim(row_id: int, now: int) -> bool:
    result = db.session.execute(
        update(MailOutbox)
        .where(MailOutbox.id == row_id, MailOutbox.status == "pending",
               or_(MailOutbox.lease_until.is_(None), MailOutbox.lease_until <= now))
        .values(lease_until=now + LEASE_SECONDS, attempts=MailOutbox.attempts + 1),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def deliver_due(idp, *, limit: int = 100) -> DeliveryReport:
    """Send the messages that are due, once each; needs an app context.

    Returns:
        How many were sent, will be retried, and failed for good.
    """
    report = DeliveryReport()
    url = idp.settings.get("SMTP_URL")
    if not url:
        return report
    now = idp.clock.now()
    ids = list(db.session.scalars(
        select(MailOutbox.id)
        .where(MailOutbox.status == "pending", MailOutbox.next_attempt_at <= now,
               or_(MailOutbox.lease_until.is_(None), MailOutbox.lease_until <= now))
        .order_by(MailOutbox.id).limit(limit)
    ))
    claimed = [i for i in ids if _claim(i, now)]
    db.session.commit()
    if not claimed:
        return report
    sender = sender_address(idp)
    rows = list(db.session.scalars(select(MailOutbox).where(MailOutbox.id.in_(claimed)).order_by(MailOutbox.id)))
    try:
        with SmtpTransport(SmtpSettings.from_url(url, idp.settings["SMTP_TIMEOUT"])) as transport:
            for row in rows:
                try:
                    transport.send(as_email(row, sender))
                except Exception as exc:  # noqa: BLE001 - any refusal of one message
                    _failed(idp, row, exc, now, report)
                else:
                    row.status, row.sent_at, row.lease_until, row.last_error = "sent", idp.clock.now(), None, None
                    report.sent += 1
                db.session.commit()
    except Exception as exc:  # noqa: BLE001 - the server is down or refused us
        for row in rows:
            if row.status == "pending" and row.lease_until is not None:
                _failed(idp, row, exc, now, report)
        db.session.commit()
    return report


def _failed(idp, row: MailOutbox, exc: Exception, now: int, report: DeliveryReport) -> None:
    row.last_error = f"{type(exc).__name__}: {exc}"[:1000]
    row.lease_until = None
    if row.attempts >= idp.settings["MAIL_MAX_ATTEMPTS"]:
        row.status = "failed"
        report.failed += 1
    else:
        row.next_attempt_at = now + backoff(idp, row.attempts)
        report.retrying += 1
