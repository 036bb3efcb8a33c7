"""Compose a message apart from sending it.

:func:`queue` renders one message of a kind in the recipient's language and
adds it to the outbox in the caller's transaction, so the message leaves if
and only if the change that caused it is committed. The mail worker
(:mod:`visma_idp.notify.outbox`) sends it later.

A kind ``K`` is three templates under ``templates/mail/``: ``K.subject.txt``
(one line), ``K.txt`` (plain text) and ``K.html`` (HTML; both extend the
shared layouts). Templates get ``user``, ``issuer``, ``idp_url`` and the
keyword arguments given to :func:`queue`. Every link in a message is built
from the configured issuer. The recipient is parsed again
(``addresses.py``) and stored in its one spelling, so the ``To``
header of every message is exactly one validated address: never a list, a
display name or anything with a line break.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import render_template
from flask_babel import force_locale

from ..config import LOCALES
from ..context import current_idp, request_state
from ..storage import MailOutbox, db


def mail_locale(user=None, locale: str | None = None) -> str:
    """The language of a message: the one asked for, the user's setting, the
    page's current language, or the deployment's default."""
    from flask import has_request_context
    from flask_babel import get_locale

    for candidate in (locale, getattr(user, "locale", None)):
        if candidate in LOCALES:
            return candidate
    if has_request_context():
        current = str(get_locale() or "")
        if current in LOCALES:
            return current
    return current_idp().settings["DEFAULT_LOCALE"]


def render(kind: str, *, locale: str, **context: Any) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of a message of ``kind`` in ``locale``."""
    idp = current_idp()
    context.setdefault("issuer", idp.issuer)
    with force_locale(locale):
        subject = render_template(f"mail/{kind}.subject.txt", **context).strip()
        text = render_template(f"mail/{kind}.txt", **context)
        html = render_template(f"mail/{kind}.html", subject=subject, **context)
    return " ".join(subject.split()), text, html


def queue(kind: str, *, to: str, user=None, locale: str | None = None, **context: Any) -> MailOutbox:
    """Compose a message and add it to the outbox; the caller commits.

    Args:
        kind: the template name under ``templates/mail/``.
        to: the recipient address.
        user: the User it concerns (its language, and ``user`` in templates).
        locale: force a language (otherwise the user's, then the page's).
        **context: more template variables (links, changed fields, ...).

    Returns:
        The outbox row (pending).

    Raises:
        AddressError: ``to`` is not exactly one valid address.
    """
    from ..addresses import parse

    to = parse(to).email
    idp = current_idp()
    lang = mail_locale(user, locale)
    subject, text, html = render(kind, locale=lang, user=user, **context)
    now = idp.clock.now()
    host = urlsplit(idp.issuer).hostname or "localhost"
    row = MailOutbox(
        kind=kind, user_id=getattr(user, "id", None), to_addr=to, subject=subject[:300], text_body=text,
        html_body=html, locale=lang, message_id=f"<{secrets.token_hex(16)}@{host}>", status="pending",
        attempts=0, created_at=now, next_attempt_at=now,
    )
    db.session.add(row)
    try:
        request_state().mail_queued = True  # the dev server sends it right after the response
    except RuntimeError:  # no app context stack (never in practice: render needs one)
        pass
    return row
