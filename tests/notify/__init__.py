"""Mail: composition, the outbox worker, SMTP transports, the dev outbox, the CLI."""

from __future__ import annotations


def queue_mail(app, user_id: int, *, kind: str = "password_changed", commit: bool = True, **context) -> int:
    """Queue one message about the user (as a flow would) and return its outbox id."""
    from visma_idp.notify.messages import queue
    from visma_idp.storage import User, db

    context.setdefault("via", "change")
    with app.app_context():
        user = db.session.get(User, user_id)
        row = queue(kind, to=user.email, user=user, **context)
        db.session.flush()
        row_id = row.id
        if commit:
            db.session.commit()
        else:
            db.session.rollback()
        return row_id


def outbox_row(app, row_id: int):
    """A snapshot of one outbox row, its bodies decrypted (they are encrypted at rest)."""
    from types import SimpleNamespace

    from visma_idp.storage import MailOutbox, db

    with app.app_context():
        row = db.session.get(MailOutbox, row_id)
        if row is None:
            return None
        values = {c.name: getattr(row, c.name) for c in MailOutbox.__table__.columns}
        return SimpleNamespace(**values, text_body=row.text_body, html_body=row.html_body)
