"""The settings of outgoing mail and text messages (``notify/``).

Rows of :class:`visma_idp.config.Setting`, gathered by ``config.py`` (which
validates them and generates docs/configuration.md from them). This module
imports nothing but config's parsers, so reading the settings never loads
the package's views.
"""

from __future__ import annotations

from ..config import Setting, boolean, integer, number, optional_text, text

SETTINGS: tuple[Setting, ...] = (
    Setting("SMTP_URL", None, optional_text,
            "Optional SMTP URL for outgoing mail: `smtp://user:pass@host:587` (STARTTLS when the server offers it; "
            "`?starttls=require` refuses to send without it, `?starttls=never` never tries), `smtps://host:465` "
            "(TLS from the start); `?ca_file=/path.pem` trusts a private CA. A password is never sent without TLS "
            "unless the URL says `starttls=never`. Without it mail stays in the outbox table, readable at "
            "`/dev/outbox` in demo mode and with `visma-idp mail list` / `mail show`. See docs/mail.md."),
    Setting("MAIL_FROM", None, optional_text,
            "The From address of every message. Default: `no-reply@<issuer host>`."),
    Setting("SMTP_TIMEOUT", 10.0, number(0.5), "Seconds to wait for the SMTP server before a try counts as failed."),
    Setting("MAIL_MAX_ATTEMPTS", 10, integer(1),
            "Tries per message before it is marked failed (it stays in the outbox; `visma-idp mail retry` sends it again)."),
    Setting("MAIL_RETRY_SECONDS", 30, integer(1),
            "Wait after the first failed try; it doubles with every further failure, up to one hour."),
    Setting("MAIL_FLUSH_AFTER_REQUEST", False, boolean,
            "Send due mail right after each request that queued some, or every 30 s at most (the dev server and "
            "demo mode turn it on; production runs `visma-idp mail worker`)."),
    Setting("SMS_BACKEND", "outbox", text,
            "`outbox` (kept in the database, shown at /dev/outbox in demo mode) or `http` (JSON POST to SMS_HTTP_URL)."),
    Setting("SMS_HTTP_URL", None, optional_text, "The SMS provider's endpoint for the `http` backend (https)."),
    Setting("SMS_HTTP_TOKEN", None, optional_text, "Bearer token sent to SMS_HTTP_URL."),
    Setting("SMS_SENDER", "VismaIdP", text, "Sender name or number of text messages."),
    Setting("SMS_HTTP_TIMEOUT", 10.0, number(0.5), "Seconds to wait for the SMS provider before a send counts as failed."),
)
