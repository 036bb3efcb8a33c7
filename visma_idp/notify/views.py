"""The dev outbox: read the messages the outbox holds, in demo mode only.

- ``GET /dev/outbox``: the newest messages (time, recipient, subject, state),
  and below them the newest text messages of the ``outbox`` SMS backend
  (time, masked number, text);
- ``GET /dev/outbox/<id>``: one message's headers and its plain-text part;
- ``GET /dev/outbox/<id>/html``: its HTML part as its own document, under a
  CSP ``sandbox`` (an opaque origin: no script, no form, no cookie of ours)
  that lets only its inline styles and ``data:`` images load.

Outside demo mode (``MODE`` is not ``demo``) every one of these answers 404,
as if the pages did not exist. The pages show nothing but the outbox.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import format_datetime, lazy_gettext

from ..context import current_idp, request_state
from ..storage import MailOutbox, db
from .outbox import newest
from .sms import mask, newest_texts

bp = Blueprint("dev_outbox", __name__)

PAGE_SIZE = 200
SMS_PAGE_SIZE = 50
STATUS_LABELS = {
    "pending": lazy_gettext("Waiting to be sent"),
    "sent": lazy_gettext("Sent"),
    "failed": lazy_gettext("Failed"),
}
# the HTML part of a message, shown apart from our pages
MAIL_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'"


@bp.before_request
def _demo_only():
    if current_idp().settings["MODE"] != "demo":
        abort(404)


def _when(epoch: int | None) -> str:
    if epoch is None:
        return ""
    return format_datetime(datetime.fromtimestamp(epoch, UTC), "medium")


def _message(message_id: int) -> MailOutbox:
    row = db.session.get(MailOutbox, message_id)
    if row is None:
        abort(404)
    return row


@bp.get("/dev/outbox")
def outbox():
    status = request.args.get("status")
    rows = newest(limit=PAGE_SIZE, status=status if status in STATUS_LABELS else None)
    # text messages of the outbox SMS backend (bodies decrypted by SmsOutbox.body)
    sms_rows = newest_texts(limit=SMS_PAGE_SIZE)
    return render_template("dev_outbox.html", rows=rows, when=_when, labels=STATUS_LABELS,
                           status=status if status in STATUS_LABELS else None, sms_rows=sms_rows, sms_mask=mask)


@bp.get("/dev/outbox/<int:message_id>")
def message(message_id: int):
    row = _message(message_id)
    return render_template("dev_outbox_message.html", row=row, when=_when, labels=STATUS_LABELS)


@bp.get("/dev/outbox/<int:message_id>/html")
def message_html(message_id: int):
    row = _message(message_id)
    request_state().csp_override = MAIL_CSP
    response = Response(row.html_body, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response
