"""Sending text messages: the :class:`SmsSender` interface and its backends.

- ``outbox`` (:class:`OutboxSender`, the default): the message is written to
  the ``sms_outbox`` table in the caller's transaction, its text encrypted
  (it holds a live code); nothing leaves the server. For demo and tests; the
  demo shows the rows at ``/dev/outbox`` and tells each text on the console.
- ``http`` (:class:`HttpSender`): one JSON POST ``{"to", "from", "text"}`` to
  ``SMS_HTTP_URL`` with ``Authorization: Bearer SMS_HTTP_TOKEN``. A 2xx answer
  means sent; any other status, a redirect, a timeout or a network error
  raises :class:`SmsNotSent`. Redirects are not followed (the token must not
  go anywhere else).

:func:`sender_for` picks the backend from ``SMS_BACKEND``. A sender never
logs or raises with the text of a message. A number is shown masked
(:func:`mask`: ``+47 ••• •• 567``, the country code and the last digits) on
every page but the one where it was typed (``factors/sms.py``), and in the
dev outbox.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Protocol

log = logging.getLogger("visma_idp.sms")

TIMEOUT_SECONDS = 10.0
MAX_TEXT = 640  # four concatenated GSM-7 messages at most


class SmsNotSent(Exception):
    """The message could not be handed over; ``message`` says why (for logs,
    never shown to users as is, never containing the text)."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class SmsSender(Protocol):
    def send(self, *, to: str, text: str) -> None:
        """Hand ``text`` over for delivery to ``to`` (E.164) or raise :class:`SmsNotSent`."""
        ...


# ITU country calling codes are prefix-free: 1 and 7 have one digit, these
# have two, every other one has three
_TWO_DIGIT_CODES = frozenset(
    "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 "
    "60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98".split()
)
BULLET = "\u2022"


def country_code(phone: str) -> str:
    digits = phone.lstrip("+")
    if digits[:1] in ("1", "7"):
        return digits[:1]
    if digits[:2] in _TWO_DIGIT_CODES:
        return digits[:2]
    return digits[:3]


def mask(phone: str | None) -> str:
    """``+4791234567`` → ``+47 ••• •• 567``: the country code and the last digits."""
    if not phone:
        return ""
    cc = country_code(phone)
    national = phone.lstrip("+")[len(cc):]
    shown = 3 if len(national) >= 6 else 2
    hidden = len(national) - shown
    groups = [BULLET * min(3, hidden - i) for i in range(0, hidden, 3)]
    return " ".join([f"+{cc}", *groups, national[-shown:]])


def _tail(number: str) -> str:
    return "…" + number[-3:]


def newest_texts(*, limit: int) -> list:
    """The newest rows of the ``outbox`` backend first, at most ``limit`` (the dev outbox shows them)."""
    from sqlalchemy import select

    from ..storage import SmsOutbox, db

    return list(db.session.scalars(select(SmsOutbox).order_by(SmsOutbox.id.desc()).limit(limit)))


class OutboxSender:
    """Keeps the message in ``sms_outbox`` (caller's transaction; caller commits)."""

    def __init__(self, clock, *, demo: bool = False) -> None:
        self.clock = clock
        self.demo = demo

    def send(self, *, to: str, text: str) -> None:
        from ..storage import SmsOutbox, db

        if len(text) > MAX_TEXT:
            raise SmsNotSent("text too long")
        row = SmsOutbox(to_number=to, created_at=self.clock.now())
        row.body = text
        db.session.add(row)
        if self.demo:  # a demo tells the text on the console, like its mail; production never does
            log.info("sms kept in the outbox for %s:\n%s", _tail(to), text)
        else:
            log.info("sms kept in the outbox for %s", _tail(to))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a 3xx becomes an HTTPError: not sent


class HttpSender:
    """JSON POST to an SMS provider; 2xx is sent, anything else :class:`SmsNotSent`."""

    def __init__(self, url: str, token: str | None, sender: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.url = url
        self.token = token
        self.sender = sender
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect())

    def send(self, *, to: str, text: str) -> None:
        if len(text) > MAX_TEXT:
            raise SmsNotSent("text too long")
        body = json.dumps({"to": to, "from": self.sender, "text": text}).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "visma-idp-sms/1"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
                response.read(65536)
        except urllib.error.HTTPError as exc:
            exc.close()
            log.warning("sms provider refused the message for %s: HTTP %s", _tail(to), exc.code)
            raise SmsNotSent(f"provider answered HTTP {exc.code}") from None
        except TimeoutError as exc:
            log.warning("sms provider timed out for %s", _tail(to))
            raise SmsNotSent("provider timed out") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                log.warning("sms provider timed out for %s", _tail(to))
                raise SmsNotSent("provider timed out") from exc
            log.warning("sms provider unreachable for %s: %s", _tail(to), type(reason).__name__)
            raise SmsNotSent(f"provider unreachable ({type(reason).__name__})") from exc
        if not 200 <= status < 300:
            log.warning("sms provider refused the message for %s: HTTP %s", _tail(to), status)
            raise SmsNotSent(f"provider answered HTTP {status}")
        log.info("sms handed to the provider for %s", _tail(to))


def sender_for(idp) -> SmsSender:
    """The sender configured by ``SMS_BACKEND`` (``outbox`` or ``http``)."""
    s = idp.settings
    if s["SMS_BACKEND"] == "http":
        return HttpSender(s["SMS_HTTP_URL"], s["SMS_HTTP_TOKEN"], s["SMS_SENDER"], timeout=s["SMS_HTTP_TIMEOUT"])
    return OutboxSender(idp.clock, demo=s["MODE"] == "demo")
