"""X-Request-Id: on every response, kept only from a trusted proxy and only
when well-formed, and the same id in the audit rows and the log lines."""

from __future__ import annotations

import json
import logging
import re

import pytest
from sqlalchemy import select

from visma_idp.observability.logs import JsonFormatter
from visma_idp.storage import AuditEvent, db

GENERATED = re.compile(r"[0-9a-f]{32}")


def test_every_response_has_an_id_of_its_own(app, client):
    app.add_url_rule("/test-only/boom", "test_only_boom", lambda: 1 / 0)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    seen = set()
    for method, path, status in (("GET", "/healthz", 200), ("GET", "/authorize", 400), ("GET", "/", 200),
                                 ("GET", "/no/such/page", 404), ("GET", "/test-only/boom", 500),
                                 ("GET", "/.well-known/openid-configuration", 200), ("POST", "/token", 400)):
        resp = client.open(path, method=method)
        assert resp.status_code == status, (path, resp.status_code)
        rid = resp.headers["X-Request-Id"]
        assert GENERATED.fullmatch(rid), rid
        assert resp.headers.getlist("X-Request-Id") == [rid]
        seen.add(rid)
    assert len(seen) == 7


def test_an_id_from_an_untrusted_peer_is_replaced(client):
    resp = client.get("/healthz", headers={"X-Request-Id": "from-the-client-12345"})
    assert resp.headers["X-Request-Id"] != "from-the-client-12345"
    assert GENERATED.fullmatch(resp.headers["X-Request-Id"])


@pytest.fixture
def behind_proxy(make_app):
    app = make_app(TRUSTED_PROXIES="127.0.0.1")
    return app.test_client()


def test_a_trusted_proxy_names_the_id(behind_proxy):
    resp = behind_proxy.get("/healthz", headers={"X-Request-Id": "lb-2f1c9a7e.0001_x"})
    assert resp.headers["X-Request-Id"] == "lb-2f1c9a7e.0001_x"


def test_a_trusted_proxy_is_believed_only_about_its_own_peer(make_app):
    client = make_app(TRUSTED_PROXIES="10.0.0.0/8").test_client()
    resp = client.get("/healthz", headers={"X-Request-Id": "lb-2f1c9a7e0001"})
    assert resp.headers["X-Request-Id"] != "lb-2f1c9a7e0001"  # the peer is 127.0.0.1
    client.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    assert client.get("/healthz", headers={"X-Request-Id": "lb-2f1c9a7e0001"}).headers["X-Request-Id"] == "lb-2f1c9a7e0001"


@pytest.mark.parametrize("offered", ["short", "x" * 65, "has space 123", "semi;colon-1234",
                                     "ünïcode-123456", "<script>alert(1)</script>"])
def test_a_malformed_id_is_refused_even_from_a_trusted_proxy(behind_proxy, offered):
    resp = behind_proxy.get("/healthz", headers={"X-Request-Id": offered})
    assert GENERATED.fullmatch(resp.headers["X-Request-Id"])


def test_the_audit_row_and_the_log_lines_carry_the_request_id(flow, app, client, caplog):
    caplog.set_level(logging.INFO, logger="visma_idp")
    resp = flow.login(flow.start())
    assert resp.status_code == 302
    rid = resp.headers["X-Request-Id"]
    with app.app_context():
        row = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "login_succeeded")).one()
    assert row.request_id == rid
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "visma_idp.audit"]
    assert any(line["request_id"] == rid and line["message"].startswith("login_succeeded") for line in lines)


def test_rows_recorded_outside_a_request_have_no_request_id(app, make_user):
    make_user()
    with app.app_context():
        row = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "user_created")).one()
    assert row.request_id is None
