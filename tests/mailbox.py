"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives,
and helpers to read those messages in tests."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller

LINK_RE = re.compile(r"https?://[^\s\"'<>]+")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Keep:
    def __init__(self, server: SmtpCapture):
        self.server = server

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.server.refuse:
            return "451 4.3.0 try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.server.lock:
            self.server.received.append(message)  # type: ignore[arg-type]
        return "250 OK"


class SmtpCapture:
    """aiosmtpd on 127.0.0.1; ``stop()``/``start()`` simulate an outage,
    ``refuse = True`` makes it answer 451 to every message."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.refuse = False
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._controller is None:
            self._controller = Controller(_Keep(self), hostname="127.0.0.1", port=self.port)
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def clear(self) -> None:
        with self.lock:
            self.received.clear()


class Mailbox:
    """What one test's app sent through the real SMTP server."""

    def __init__(self, capture: SmtpCapture, app):
        self.capture = capture
        self.app = app

    @property
    def messages(self) -> list[EmailMessage]:
        with self.capture.lock:
            return list(self.capture.received)

    def deliver(self):
        """Run one round of the mail worker (as `visma-idp mail worker` does:
        due profile-change notices, then due mail) and return its report."""
        from visma_idp.notify.outbox import run_once

        with self.app.app_context():
            return run_once(self.app.extensions["visma_idp"])

    def to(self, address: str) -> list[EmailMessage]:
        self.deliver()
        return [m for m in self.messages if m["To"] == address]

    def last(self, address: str) -> EmailMessage:
        found = self.to(address)
        assert found, f"no message to {address}; got {[(m['To'], m['Subject']) for m in self.messages]}"
        return found[-1]

    @staticmethod
    def text(message: EmailMessage) -> str:
        return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    @staticmethod
    def html(message: EmailMessage) -> str:
        return message.get_body(("html",)).get_content()  # type: ignore[union-attr]

    @classmethod
    def links(cls, message: EmailMessage) -> list[str]:
        return LINK_RE.findall(cls.text(message))
