"""SMS senders: the outbox backend (encrypted rows in the caller's
transaction), the HTTP backend against a real local HTTP server (JSON body,
bearer token, 2xx only, no redirects, timeouts) and the choice by SMS_BACKEND."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from visma_idp.notify.sms import HttpSender, OutboxSender, SmsNotSent, sender_for


class SmsProvider:
    """A real HTTP server on loopback that plays an SMS provider and records
    every request: ``requests`` is a list of dicts (method, path, headers, json).

    ``status`` is the answer to the next requests; ``hang`` makes it wait
    (until :meth:`stop`) before answering; ``location`` adds a redirect target.
    """

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 202
        self.hang = False
        self.location: str | None = None
        self.release = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                provider.requests.append({"method": "POST", "path": self.path, "headers": dict(self.headers),
                                          "json": body})
                if provider.hang:
                    provider.release.wait(10)
                try:
                    self.send_response(provider.status)
                    if provider.location:
                        self.send_header("Location", provider.location)
                    self.send_header("Content-Type", "application/json")
                    payload = b'{"id":"msg-1"}'
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout test)

            def do_GET(self):  # noqa: N802
                provider.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers),
                                          "json": None})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):  # noqa: A002
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1/messages"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def start(self) -> SmsProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def texts(self) -> list[str]:
        return [r["json"]["text"] for r in self.requests if r["json"]]


@pytest.fixture
def provider():
    server = SmsProvider().start()
    yield server
    server.stop()


def test_http_sender_posts_json_with_the_bearer_token(provider):
    HttpSender(provider.url, "provider-token-123", "VismaIdP").send(to="+4791234567", text="123456 is your code")
    assert len(provider.requests) == 1
    req = provider.requests[0]
    assert req["method"] == "POST" and req["path"] == "/v1/messages"
    assert req["headers"]["Authorization"] == "Bearer provider-token-123"
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["json"] == {"to": "+4791234567", "from": "VismaIdP", "text": "123456 is your code"}


@pytest.mark.parametrize("status", [200, 201, 204])
def test_any_2xx_is_sent(provider, status):
    provider.status = status
    HttpSender(provider.url, "t", "VismaIdP").send(to="+4791234567", text="hello")
    assert len(provider.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
def test_an_error_status_is_not_sent(provider, status):
    provider.status = status
    with pytest.raises(SmsNotSent) as caught:
        HttpSender(provider.url, "t", "VismaIdP").send(to="+4791234567", text="secret 654321")
    assert str(status) in caught.value.message
    assert "654321" not in caught.value.message  # the text (a live code) never goes into errors


def test_a_redirect_is_not_followed(provider):
    """A 3xx is a failure, and the token is not carried to another address."""
    provider.status = 307
    provider.location = f"http://127.0.0.1:{provider.port}/elsewhere"
    with pytest.raises(SmsNotSent):
        HttpSender(provider.url, "t", "VismaIdP").send(to="+4791234567", text="hello")
    assert [r["path"] for r in provider.requests] == ["/v1/messages"]


def test_a_timeout_is_not_sent(provider):
    provider.hang = True
    with pytest.raises(SmsNotSent) as caught:
        HttpSender(provider.url, "t", "VismaIdP", timeout=0.3).send(to="+4791234567", text="hello")
    assert "timed out" in caught.value.message
    assert len(provider.requests) == 1


def test_an_unreachable_provider_is_not_sent():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SmsNotSent) as caught:
        HttpSender(f"http://127.0.0.1:{port}/send", "t", "VismaIdP", timeout=2).send(to="+4791234567", text="x")
    assert "unreachable" in caught.value.message


def test_outbox_sender_keeps_the_text_encrypted_in_the_callers_transaction(app, idp):
    from sqlalchemy import select

    from visma_idp.storage import SmsOutbox, db

    with app.app_context():
        OutboxSender(idp.clock).send(to="+4791234567", text="Your code is 271828")
        db.session.rollback()  # the caller's transaction decides
        assert db.session.scalars(select(SmsOutbox)).all() == []
        OutboxSender(idp.clock).send(to="+4791234567", text="Your code is 271828")
        db.session.commit()
        row = db.session.scalars(select(SmsOutbox)).one()
        assert row.to_number == "+4791234567"
        assert row.body == "Your code is 271828"
        assert "271828" not in row.body_enc


def test_sender_for_picks_the_configured_backend(app, make_app, provider):
    assert isinstance(sender_for(app.extensions["visma_idp"]), OutboxSender)
    http_app = make_app(SMS_BACKEND="http", SMS_HTTP_URL=provider.url, SMS_HTTP_TOKEN="tok", SMS_SENDER="Acme")
    sender = sender_for(http_app.extensions["visma_idp"])
    assert isinstance(sender, HttpSender) and sender.timeout == 10.0
    assert sender_for(make_app(SMS_BACKEND="http", SMS_HTTP_URL=provider.url,
                               SMS_HTTP_TIMEOUT="2.5").extensions["visma_idp"]).timeout == 2.5
    sender.send(to="+4612345678", text="hi")
    assert provider.requests[0]["json"]["from"] == "Acme"
    assert provider.requests[0]["headers"]["Authorization"] == "Bearer tok"


def test_the_demo_outbox_lists_text_messages_masked(app, make_app, caplog):
    from visma_idp.storage import db

    demo = make_app(MODE="demo", SMTP_URL=None)
    with demo.app_context(), caplog.at_level("INFO", logger="visma_idp.sms"):
        sender = sender_for(demo.extensions["visma_idp"])
        sender.send(to="+4791234567", text="314159 is your code <b>")
        db.session.commit()
    assert "314159 is your code" in caplog.text  # the demo console tells it
    page = demo.test_client().get("/dev/outbox").get_data(as_text=True)
    assert "Text messages" in page
    assert "+47 \u2022\u2022\u2022 \u2022\u2022 567" in page and "+4791234567" not in page
    assert "314159 is your code &lt;b&gt;" in page
    assert app.test_client().get("/dev/outbox").status_code == 404  # not outside demo mode


def test_production_never_logs_the_text(app, idp, caplog):
    from visma_idp.storage import db

    with app.app_context(), caplog.at_level("INFO", logger="visma_idp.sms"):
        sender_for(idp).send(to="+4791234567", text="Your code is 161803")
        db.session.commit()
    assert "161803" not in caplog.text and "…567" in caplog.text
