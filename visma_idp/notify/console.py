"""Demo mode: every message written to the outbox is also told on the console.

Once a transaction that queued mail commits, the logger ``visma_idp.mail``
gets one INFO record per message: recipient, subject and the plain-text part
(so a developer sees activation and reset links in the terminal). A message
whose transaction is rolled back is never told, as it is never sent.
Production never does this: message texts carry single-use links.
"""

from __future__ import annotations

import logging

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..storage import MailOutbox

log = logging.getLogger("visma_idp.mail")
_KEY = "visma_idp_mail_to_tell"
_installed = False


def install_console(app, idp) -> None:
    """Tell queued messages on the console when the app is in demo mode."""
    global _installed
    if idp.settings["MODE"] != "demo":
        return
    app.logger  # noqa: B018 - Flask adds its stderr handler to the "visma_idp" logger if it has none
    if _installed:
        return
    _installed = True  # the listeners are per process; each looks at the app of the moment
    event.listen(Session, "after_flush", _collect)
    event.listen(Session, "after_commit", _tell)
    event.listen(Session, "after_soft_rollback", _forget)


def _demo() -> bool:
    if not has_app_context():
        return False
    idp = current_app.extensions.get("visma_idp")
    return idp is not None and idp.settings["MODE"] == "demo"


def _collect(session: Session, _flush_context) -> None:
    new = [o for o in session.new if isinstance(o, MailOutbox)]
    if new and _demo():
        session.info.setdefault(_KEY, []).extend((o.id, o.to_addr, o.subject, o.text_body) for o in new)


def _tell(session: Session) -> None:
    for row_id, to_addr, subject, text in session.info.pop(_KEY, []):
        log.info("mail %s queued for %s: %s\n%s", row_id, to_addr, subject, text.rstrip())


def _forget(session: Session, _previous_transaction) -> None:
    if not session.in_transaction():
        session.info.pop(_KEY, None)
