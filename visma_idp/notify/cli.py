"""The ``visma-idp mail`` commands: run the mail worker, read the outbox,
send failed messages again."""

from __future__ import annotations

import click

from ..cli_support import provider_app, run_rounds, table, when
from ..errors import ConfigError, InvalidInput


@click.group()
def mail() -> None:
    """Outgoing mail: run the worker, read the outbox, retry failed messages."""


MAIL_BATCH = 100


def _mail_settings(idp) -> str:
    """Where mail goes, checked before the first round (a wrong SMTP_URL is exit status 2)."""
    from .smtp import SmtpSettings

    url = idp.settings["SMTP_URL"]
    if not url:
        return "nowhere: SMTP_URL is not set, messages stay in the outbox"
    try:
        return SmtpSettings.from_url(url, idp.settings["SMTP_TIMEOUT"]).describe()
    except ValueError as exc:
        raise ConfigError("SMTP_URL", str(exc)) from None


@mail.command("worker")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds to wait between rounds when nothing more is due.")
def mail_worker(once: bool, interval: float) -> None:
    """Send due mail from the outbox, with retries, until stopped.

    Each round first turns due profile-change batches into messages, then
    sends what is due. SIGTERM or SIGINT let the current round finish, then
    the worker exits with status 0. Run as many workers as you like, on as
    many nodes: a message is claimed before it is sent, so none goes twice.
    """
    from .outbox import run_once

    app = provider_app()
    idp = app.extensions["visma_idp"]
    click.echo(f"visma-idp mail worker: sending to {_mail_settings(idp)}")
    run_rounds(app, "mail", lambda: run_once(idp, limit=MAIL_BATCH), once=once, interval=interval,
               worth_telling=lambda report: report.tried or report.notices,
               more_due=lambda report: report.tried >= MAIL_BATCH)


def _outbox_row(message_id: int):
    from ..storage import MailOutbox, db

    row = db.session.get(MailOutbox, message_id)
    if row is None:
        raise InvalidInput(f"no message {message_id} in the outbox")
    return row


@mail.command("list")
@click.option("--status", type=click.Choice(["pending", "sent", "failed"]), help="Only messages in this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1), help="At most this many, newest first.")
def mail_list(status: str | None, limit: int) -> None:
    """List outbox messages (never their text: see `mail show`)."""
    from .outbox import newest

    app = provider_app()
    with app.app_context():
        rows = [
            [m.id, when(m.created_at), m.status, m.attempts, m.to_addr, m.kind, m.subject,
             when(m.sent_at if m.status == "sent" else m.next_attempt_at if m.status == "pending" else None),
             (m.last_error or "")[:60] or None]
            for m in newest(limit=limit, status=status)
        ]
    table(["id", "created", "status", "tries", "to", "kind", "subject", "sent/next", "last_error"], rows)


@mail.command("show")
@click.argument("message_id", type=int)
@click.option("--html", "as_html", is_flag=True, help="Print the HTML part instead of the plain text.")
def mail_show(message_id: int, as_html: bool) -> None:
    """Print one message: its headers and its plain-text part."""
    app = provider_app()
    with app.app_context():
        m = _outbox_row(message_id)
        for label, value in (
            ("Message-ID", m.message_id), ("To", m.to_addr), ("Subject", m.subject), ("Kind", m.kind),
            ("Language", m.locale), ("Created", when(m.created_at)), ("Status", m.status),
            ("Tries", m.attempts), ("Sent", when(m.sent_at)),
            ("Next try", when(m.next_attempt_at) if m.status == "pending" else None), ("Last error", m.last_error),
        ):
            if value is not None:
                click.echo(f"{label + ':':<12}{value}")
        click.echo("")
        click.echo((m.html_body if as_html else m.text_body).rstrip("\n"))


@mail.command("retry")
@click.argument("message_id", type=int, required=False)
@click.option("--failed", "all_failed", is_flag=True, help="Every failed message.")
def mail_retry(message_id: int | None, all_failed: bool) -> None:
    """Send a message again: a failed one goes back to pending with a fresh
    count of tries; a pending one is due at once. A sent message is never
    sent again."""
    from ..storage import db
    from .outbox import retry

    if (message_id is None) == (not all_failed):
        raise InvalidInput("give a message id or --failed (not both)")
    app = provider_app()
    idp = app.extensions["visma_idp"]
    with app.app_context():
        if not all_failed:
            assert message_id is not None
            row = _outbox_row(message_id)
            if row.status == "sent":
                raise InvalidInput(f"message {message_id} was sent at {when(row.sent_at)}; it is not sent twice")
        ids = retry(idp, message_id=None if all_failed else message_id)
        db.session.commit()
    click.echo(f"{len(ids)} message(s) due now: {' '.join(map(str, ids)) or '-'}")
