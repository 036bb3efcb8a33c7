"""SMTP transport: one connection per batch, from ``SMTP_URL``.

``smtp://[user:password@]host[:port]`` speaks plain SMTP and upgrades with
STARTTLS when the server offers it (``?starttls=require`` refuses to send
otherwise, ``?starttls=never`` never tries); ``smtps://`` is TLS from the
first byte (port 465 by default). User and password, when given, log in
after TLS.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    implicit_tls: bool
    starttls: str  # "auto" | "require" | "never"
    username: str | None
    password: str | None
    timeout: float

    @classmethod
    def from_url(cls, url: str, timeout: float = 10.0) -> SmtpSettings:
        parts = urlsplit(url)
        implicit = parts.scheme == "smtps"
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        starttls = options.get("starttls", "auto")
        if starttls not in {"auto", "require", "never"}:
            raise ValueError("starttls must be auto, require or never")
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (465 if implicit else 25),
            implicit_tls=implicit,
            starttls="never" if implicit else starttls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
        )


class SmtpTransport:
    """Open a connection, send messages over it, close it."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self._conn: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpTransport:
        s = self.settings
        context = ssl.create_default_context()
        conn: smtplib.SMTP
        if s.implicit_tls:
            conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            conn.ehlo()
            if s.starttls != "never" and conn.has_extn("starttls"):
                conn.starttls(context=context)
                conn.ehlo()
            elif s.starttls == "require":
                conn.close()
                raise smtplib.SMTPNotSupportedError("the SMTP server does not offer STARTTLS")
        if s.username:
            conn.login(s.username, s.password or "")
        self._conn = conn
        return self

    def send(self, message: EmailMessage) -> None:
        assert self._conn is not None, "use the transport as a context manager"
        self._conn.send_message(message)

    def __exit__(self, *exc) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                self._conn.close()
            self._conn = None
