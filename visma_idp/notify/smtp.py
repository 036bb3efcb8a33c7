"""SMTP transport: one connection per batch, from ``SMTP_URL``.

URL forms (see docs/mail.md):

- ``smtp://host[:port]`` (port 25 by default) upgrades with STARTTLS whenever
  the server offers it. ``?starttls=require`` refuses to send unless the
  upgrade happened; ``?starttls=never`` never tries (a local relay).
- ``smtps://host[:port]`` is TLS from the first byte (port 465 by default).
- ``user:password@`` logs in (AUTH) once the connection is encrypted. The
  password is never sent in clear: without TLS the try fails, unless the URL
  says ``?starttls=never`` (an explicit choice for a relay on loopback).
  Characters such as ``@ : /`` in either part are percent-encoded.
- ``?ca_file=/path/ca.pem`` trusts the certificates in that PEM file
  instead of the system's (a private CA, a self-signed test server). The
  certificate and the host name are always verified; there is no switch
  that turns verification off.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

STARTTLS_CHOICES = ("auto", "require", "never")
OPTIONS = ("starttls", "ca_file")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    implicit_tls: bool
    starttls: str  # "auto" | "require" | "never"
    username: str | None
    password: str | None = field(repr=False)
    timeout: float
    ca_file: str | None = None
    local_hostname: str | None = None

    @classmethod
    def from_url(cls, url: str, timeout: float = 10.0, *, local_hostname: str | None = None) -> SmtpSettings:
        """Parse ``SMTP_URL``.

        Args:
            url: ``smtp://`` or ``smtps://`` URL (see the module text).
            timeout: seconds for each network operation.
            local_hostname: the name we greet the server with (EHLO);
                default: what the operating system says.

        Raises:
            ValueError: a scheme, option or value this transport does not know
                (the message names it, never the password).
        """
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"}:
            raise ValueError("must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("names no host")
        port = parts.port  # raises ValueError for a port that is not a number in range
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown option {unknown[0]!r} (known: {', '.join(OPTIONS)})")
        options = {k: v[-1] for k, v in query.items()}
        starttls = options.get("starttls", "auto")
        if starttls not in STARTTLS_CHOICES:
            raise ValueError("starttls must be auto, require or never")
        ca_file = options.get("ca_file") or None
        if ca_file is not None and not os.path.isfile(ca_file):
            raise ValueError(f"ca_file {ca_file} is not a readable file")
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=port or (465 if implicit else 25),
            implicit_tls=implicit,
            starttls="never" if implicit else starttls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
            ca_file=ca_file,
            local_hostname=local_hostname,
        )

    def describe(self) -> str:
        """Where mail goes, for logs (no password)."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        who = f"{self.username}@" if self.username else ""
        return f"{scheme}://{who}{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext:
        # verification of the certificate chain and the host name stays on
        return ssl.create_default_context(cafile=self.ca_file)


class SmtpTransport:
    """Open a connection, send messages over it, close it.

    ``encrypted`` tells, once open, whether the connection is TLS.
    """

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self.encrypted = False
        self._conn: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpTransport:
        s = self.settings
        conn: smtplib.SMTP
        if s.implicit_tls:
            conn = smtplib.SMTP_SSL(s.host, s.port, local_hostname=s.local_hostname, timeout=s.timeout,
                                    context=s.tls_context())
        else:
            conn = smtplib.SMTP(s.host, s.port, local_hostname=s.local_hostname, timeout=s.timeout)
        try:
            self.encrypted = s.implicit_tls
            conn.ehlo()
            if not s.implicit_tls and s.starttls != "never":
                if conn.has_extn("starttls"):
                    conn.starttls(context=s.tls_context())
                    conn.ehlo()
                    self.encrypted = True
                elif s.starttls == "require":
                    raise smtplib.SMTPNotSupportedError(
                        "the SMTP server does not offer STARTTLS and the URL says starttls=require")
            if s.username:
                if not self.encrypted and s.starttls != "never":
                    raise smtplib.SMTPNotSupportedError(
                        "the SMTP server does not offer STARTTLS: the password is not sent in clear "
                        "(add ?starttls=never to the URL to allow it)")
                conn.login(s.username, s.password or "")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return self

    def send(self, message: EmailMessage) -> None:
        """Send one message; raises smtplib's errors (see :func:`is_permanent`)."""
        assert self._conn is not None, "use the transport as a context manager"
        self._conn.send_message(message)

    def __exit__(self, *exc) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                self._conn.close()
            self._conn = None


# The server answered about this one message (the connection is still good).
MESSAGE_REFUSED = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError,
                   smtplib.SMTPNotSupportedError, ValueError, UnicodeError)


def is_permanent(exc: BaseException) -> bool:
    """Whether trying the same message again cannot help: a 5xx answer to it,
    or a message that cannot be put on the wire (e.g. an address that needs
    SMTPUTF8 from a server without it)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return isinstance(exc, smtplib.SMTPNotSupportedError | ValueError | UnicodeError)
