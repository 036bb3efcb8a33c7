"""Security events land in audit_events with who, what, when and where from
(client IP and user agent of the request that caused them)."""

from __future__ import annotations

import pytest

from tests.helpers import Flow, csrf

IP = "203.0.113.7"
UA = "Mozilla/5.0 (audit test browser)"
RP_IP = "198.51.100.20"
RP_UA = "expense-backend/2.1"


@pytest.fixture
def settings(settings):
    settings.update(THROTTLE_FREE_ATTEMPTS=1, THROTTLE_MAX_FAILURES=2)
    return settings


@pytest.fixture
def client(app):
    c = app.test_client()
    c.environ_base.update({"REMOTE_ADDR": IP, "HTTP_USER_AGENT": UA})
    return c


@pytest.fixture
def backend(app):
    """The relying party's server calling the token endpoint."""
    c = app.test_client()
    c.environ_base.update({"REMOTE_ADDR": RP_IP, "HTTP_USER_AGENT": RP_UA})
    return c


def only(rows, event):
    found = [r for r in rows if r["event"] == event]
    assert len(found) == 1, (event, [r["event"] for r in rows])
    return found[0]


def assert_where(row, ip=IP, ua=UA):
    assert row["ip"] == ip, row
    assert row["user_agent"] == ua, row
    assert isinstance(row["at"], int) and row["at"] > 1_600_000_000


def login(client, email, password):
    page = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"email": email, "csrf_token": csrf(page)})
    page = client.get("/login/password").get_data(as_text=True)
    return client.post("/login/password", data={"password": password, "csrf_token": csrf(page)})


def test_login_success_and_failure(flow, client, audit_rows):
    assert login(client, flow.email, "wrong password").status_code == 401
    assert login(client, flow.email, flow.password).status_code == 302
    rows = audit_rows()
    failed = only(rows, "login_failed")
    assert_where(failed)
    assert failed["outcome"] == "failure" and failed["subject"] == flow.email and failed["user_id"]
    ok = only(rows, "login_succeeded")
    assert_where(ok)
    assert ok["outcome"] == "success" and ok["user_id"] == failed["user_id"]


def test_lockout(flow, client, audit_rows):
    assert login(client, flow.email, "wrong password").status_code == 401
    assert login(client, flow.email, "wrong password").status_code in (401, 429)
    rows = audit_rows()
    locked = only(rows, "account_locked")
    assert_where(locked)
    assert locked["outcome"] == "failure" and locked["subject"] == flow.email
    assert locked["details"]["seconds"] > 0
    # attempts refused while locked are recorded too
    assert login(client, flow.email, flow.password).status_code == 429
    throttled = [r for r in audit_rows("login_throttled")]
    assert throttled and all(r["ip"] == IP and r["user_agent"] == UA for r in throttled)


@pytest.mark.parametrize("decision", ["allow", "deny"])
def test_consent(flow, audit_rows, decision):
    flow.authorize(decision=decision, scope="openid email")
    row = only(audit_rows(), f"consent_{'granted' if decision == 'allow' else 'denied'}")
    assert_where(row)
    assert row["client_id"] == "expense" and row["user_id"]
    assert row["details"]["scope"] == "openid email"


def test_code_reuse(app, flow, backend, audit_rows):
    params = flow.authorize()
    rp = Flow(app, backend, flow.client_id, flow.client_secret, flow.redirect_uri, last=flow.last)
    assert rp.token(params["code"]).status_code == 200
    assert rp.token(params["code"]).status_code == 400
    row = only(audit_rows(), "code_reuse_detected")
    assert_where(row, RP_IP, RP_UA)
    assert row["outcome"] == "failure" and row["client_id"] == "expense" and row["user_id"]
    assert row["details"]["revoked_tokens"] >= 1


def test_refresh_reuse(app, flow, backend, audit_rows):
    tokens = flow.tokens(scope="openid offline_access")
    rp = Flow(app, backend, flow.client_id, flow.client_secret, flow.redirect_uri)
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert backend.post("/token", data=data, headers=rp.basic()).status_code == 200
    assert backend.post("/token", data=data, headers=rp.basic()).status_code == 400
    row = only(audit_rows(), "refresh_token_reuse_detected")
    assert_where(row, RP_IP, RP_UA)
    assert row["outcome"] == "failure" and row["client_id"] == "expense" and row["user_id"]


@pytest.mark.parametrize("path", ["/logout", "/signout"])
def test_logout(flow, client, audit_rows, path):
    flow.authorize()
    page = client.get(path).get_data(as_text=True)
    data = {"csrf_token": csrf(page)}
    if path == "/logout":
        data["confirm"] = "yes"
    assert client.post(path, data=data).status_code == 200
    row = only(audit_rows(), "logout")
    assert_where(row)
    assert row["user_id"]


def test_rp_initiated_logout_with_hint(flow, client, audit_rows):
    tokens = flow.tokens()
    assert client.get("/logout?id_token_hint=" + tokens["id_token"]).status_code == 200
    row = only(audit_rows(), "logout")
    assert_where(row)
    assert row["client_id"] == "expense"


def test_audit_signal_is_sent(app, flow, client):
    from visma_idp.audit import audit_event

    seen = []

    def listener(sender, event):
        seen.append(event.event)

    audit_event.connect(listener, app)
    try:
        login(client, flow.email, "wrong password")
    finally:
        audit_event.disconnect(listener, app)
    assert seen == ["login_failed"]


def test_log_lines_cannot_be_forged(flow, client, caplog, audit_rows):
    forged = "x@example.no\nvisma_idp.audit INFO login_succeeded outcome=success user_id=1"
    with caplog.at_level("INFO", logger="visma_idp.audit"):
        resp = client.get("/authorize", query_string={"client_id": forged, "response_type": "code"})
    assert resp.status_code == 400
    messages = [r.getMessage() for r in caplog.records if r.name == "visma_idp.audit"]
    assert messages and all("\n" not in m and "\r" not in m for m in messages)
    # the email step refuses such an address outright
    page = client.get("/login").get_data(as_text=True)
    for bad in (forged, "kari@example.no\r\nX: y", "kari @example.no", "kari@exa\x00mple.no"):
        resp = client.post("/login", data={"email": bad, "csrf_token": csrf(page)})
        assert resp.status_code == 400, repr(bad)
    assert not audit_rows("login_failed")


def test_overlong_request_values_fit_the_audit_columns(flow, client, audit_rows):
    resp = client.get("/authorize", query_string={"client_id": "c" * 300, "response_type": "code"})
    assert resp.status_code == 400
    row = only(audit_rows(), "authorization_refused")
    assert_where(row)
    assert 0 < len(row["client_id"]) <= 128


def test_a_nul_from_the_request_never_fails_the_audit_row(app):
    """PostgreSQL refuses NUL in text: a name or id sent with one (schemathesis
    found it through the admin API) is stored with U+FFFD instead."""
    from visma_idp import audit
    from visma_idp.storage import AuditEvent, db

    with app.test_request_context("/", headers={"User-Agent": "probe\x00"}):
        audit.record("upstream_api_refused", outcome="failure", subject="\x00", client_id="a\x00b")
        db.session.commit()
        row = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "upstream_api_refused")).one()
        assert (row.subject, row.client_id, row.user_agent) == ("\ufffd", "a\ufffdb", "probe\ufffd")
