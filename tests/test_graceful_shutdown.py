"""Graceful shutdown of `visma-idp serve`: on SIGTERM a request already in
flight is answered, new connections are refused, and the server exits 0.

The request in flight is a token request whose body arrives in two parts,
the second only after the SIGTERM: the worker is inside it, reading, when
the signal comes (the way a slow client or a long request looks to the
server). Both production servers are checked: granian (the default) and
gunicorn.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from tests.helpers import drop_all_tables
from tests.test_cli import free_port, start_server, wait_until_up

SECRET = "svc-secret-0123456789abcdef"
BODY = b"grant_type=client_credentials&scope=api%3Aread"


@pytest.fixture
def served(settings, make_app):
    """A migrated database with a client_credentials client, and its settings as environment."""
    from visma_idp import api

    drop_all_tables(settings["DATABASE_URL"])
    app = make_app()
    api.upgrade_database(app)
    api.create_client(app, "svc", grant_types=["client_credentials"], scope="api:read", secret=SECRET)
    yield {f"VISMA_IDP_{key}": str(value) for key, value in settings.items()}
    drop_all_tables(settings["DATABASE_URL"])


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.mark.slow
@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_a_request_in_flight_is_answered_and_new_ones_are_refused(served, tmp_path, server):
    import base64

    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = start_server(["--port", str(port), "--workers", "1", "--threads", "2", "--server", server],
                        {**served, "VISMA_IDP_ISSUER": issuer}, log)
    try:
        assert wait_until_up(proc, f"{issuer}/healthz", log).status_code == 200
        auth = base64.b64encode(f"svc:{SECRET}".encode()).decode()
        conn = socket.create_connection(("127.0.0.1", port), timeout=30)
        conn.sendall((f"POST /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      "Content-Type: application/x-www-form-urlencoded\r\n"
                      f"Authorization: Basic {auth}\r\nContent-Length: {len(BODY)}\r\nConnection: close\r\n\r\n"
                      ).encode() + BODY[:10])
        time.sleep(0.5)  # the worker has the request and waits for the rest of its body
        proc.send_signal(signal.SIGTERM)
        late = None
        if server == "granian":
            deadline = time.monotonic() + 10
            while not refused(port):  # granian closes its listening socket at once
                assert time.monotonic() < deadline, "new connections still accepted after SIGTERM"
                time.sleep(0.1)
        else:
            # gunicorn's master keeps the socket until it exits: the kernel still
            # queues a new connection, but no worker takes it
            time.sleep(1)
            late = socket.create_connection(("127.0.0.1", port), timeout=30)
            late.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        assert proc.poll() is None, "the server exited before the request in flight was answered"
        conn.sendall(BODY[10:])
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        conn.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert b'"access_token"' in answer
        assert proc.wait(timeout=30) == 0, log.read_text()
        if late is not None:
            try:
                late_answer = late.recv(65536)
            except OSError:
                late_answer = b""
            late.close()
            assert not late_answer.startswith(b"HTTP/1.1"), late_answer[:200]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
