"""What the metrics count: requests by endpoint, sign-ins, tokens by grant,
errors, the throttle, audit events, and the queues read at scrape time.

The counters belong to the test process (every app of it adds to them), so
each test compares before and after."""

from __future__ import annotations

import base64

from visma_idp.storage import LogoutDelivery, MailOutbox, db

from .metering import sample, scraped, value


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_a_login_counts_one_sign_in_and_each_request_by_endpoint(flow):
    before = {
        "sign_in": value("visma_idp_sign_ins_total", outcome="success", method="password"),
        "password_post": value("visma_idp_http_requests_total", endpoint="login.password", method="POST", status="302"),
        "authorize": value("visma_idp_http_request_duration_seconds_count", endpoint="oidc.authorize"),
        "audit": value("visma_idp_audit_events_total", event="login_succeeded", outcome="success"),
    }
    params = flow.authorize()
    assert "code" in params
    assert value("visma_idp_sign_ins_total", outcome="success", method="password") == before["sign_in"] + 1
    assert value("visma_idp_http_requests_total", endpoint="login.password", method="POST",
                 status="302") == before["password_post"] + 1
    assert value("visma_idp_http_request_duration_seconds_count", endpoint="oidc.authorize") == before["authorize"] + 1
    assert value("visma_idp_audit_events_total", event="login_succeeded", outcome="success") == before["audit"] + 1


def test_a_wrong_password_counts_a_failed_sign_in(flow):
    before = value("visma_idp_sign_ins_total", outcome="failure", method="password")
    resp = flow.login(flow.start(), password="not the right one at all")
    assert resp.status_code == 401, resp.status_code
    assert value("visma_idp_sign_ins_total", outcome="failure", method="password") == before + 1


def test_tokens_are_counted_by_grant(flow, make_client, client):
    code_before = value("visma_idp_tokens_issued_total", grant="authorization_code")
    refresh_before = value("visma_idp_tokens_issued_total", grant="refresh_token")
    service_before = value("visma_idp_tokens_issued_total", grant="client_credentials")
    tokens = flow.tokens(scope="openid offline_access", prompt="consent")
    resp = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                       headers=flow.basic())
    assert resp.status_code == 200, resp.get_data(as_text=True)
    make_client("svc", secret="svc-secret-0123456789abcdef", grant_types=["client_credentials"], redirect_uris=[],
                scope="idp:admin:keys")
    resp = client.post("/token", data={"grant_type": "client_credentials"},
                       headers=basic("svc", "svc-secret-0123456789abcdef"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    bad = client.post("/token", data={"grant_type": "client_credentials"}, headers=basic("svc", "wrong-secret-0000"))
    assert bad.status_code == 401
    assert value("visma_idp_tokens_issued_total", grant="authorization_code") == code_before + 1
    assert value("visma_idp_tokens_issued_total", grant="refresh_token") == refresh_before + 1
    assert value("visma_idp_tokens_issued_total", grant="client_credentials") == service_before + 1  # not the 401


def test_a_5xx_counts_as_an_error_of_its_endpoint(app, client):
    def boom():
        raise RuntimeError("a bug")

    app.add_url_rule("/test-only/boom", "test_only_boom", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    before = value("visma_idp_http_errors_total", endpoint="test_only_boom")
    before_500 = value("visma_idp_http_requests_total", endpoint="test_only_boom", method="GET", status="500")
    resp = client.get("/test-only/boom")
    assert resp.status_code == 500
    assert resp.headers["X-Request-Id"]
    assert value("visma_idp_http_errors_total", endpoint="test_only_boom") == before + 1
    assert value("visma_idp_http_requests_total", endpoint="test_only_boom", method="GET",
                 status="500") == before_500 + 1


def test_unmatched_paths_and_odd_methods_keep_the_labels_bounded(client):
    before = value("visma_idp_http_requests_total", endpoint="unknown", method="GET", status="404")
    odd = value("visma_idp_http_requests_total", endpoint="unknown", method="other", status="405")
    for path in ("/no/such/page", "/another/random/path/1234"):
        assert client.get(path).status_code == 404
    assert client.open("/token", method="BREW").status_code == 405
    assert value("visma_idp_http_requests_total", endpoint="unknown", method="GET", status="404") == before + 2
    assert value("visma_idp_http_requests_total", endpoint="unknown", method="other", status="405") == odd + 1


def test_the_histogram_has_buckets_per_endpoint(client):
    client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    assert '# TYPE visma_idp_http_request_duration_seconds histogram' in text
    samples = scraped(text)
    count = sample(samples, "visma_idp_http_request_duration_seconds_count", endpoint="health.healthz")
    assert count >= 1
    assert sample(samples, "visma_idp_http_request_duration_seconds_bucket", endpoint="health.healthz",
                  le="+Inf") == count
    assert sample(samples, "visma_idp_http_request_duration_seconds_bucket", endpoint="health.healthz", le="10.0") == count


def test_throttle_hits_and_trips(idp):
    hits = value("visma_idp_throttle_hits_total", kind="account", result="wait")
    trips = value("visma_idp_throttle_trips_total", result="wait")
    ip_hits = value("visma_idp_throttle_hits_total", kind="ip", result="locked")
    held = None
    for _ in range(idp.settings["THROTTLE_FREE_ATTEMPTS"] + 2):
        verdict = idp.throttle.attempt("acct-metrics@example.no", "192.0.2.10")
        if not verdict.allowed:
            held = verdict
            break
        idp.throttle.failed("acct-metrics@example.no", "192.0.2.10")
    assert held is not None and not held.locked
    assert value("visma_idp_throttle_hits_total", kind="account", result="wait") == hits + 1
    assert value("visma_idp_throttle_trips_total", result="wait") >= trips + 1
    for _ in range(idp.settings["THROTTLE_IP_MAX_FAILURES"] + 1):
        verdict = idp.throttle.attempt(None, "192.0.2.99")
    assert not verdict.allowed and verdict.locked
    assert value("visma_idp_throttle_hits_total", kind="ip", result="locked") == ip_hits + 1


def test_the_queues_are_read_when_scraped(app, idp, client):
    now = idp.clock.now()
    with app.app_context():
        for age, status in ((300, "pending"), (60, "pending"), (900, "failed"), (5, "sent")):
            row = MailOutbox(kind="test", to_addr="kari@example.no", subject="s", locale="en",
                             message_id=f"<{age}@test>", status=status, attempts=0, created_at=now - age,
                             next_attempt_at=now)
            row.text_body = row.html_body = "body"
            db.session.add(row)
        db.session.add(LogoutDelivery(client_id="expense", uri="https://rp.example.com/bcl", sub="s", sid="x",
                                      jti="jti-1", reason="logout", status="pending", attempts=0,
                                      created_at=now - 42, next_attempt_at=now))
        db.session.commit()
    samples = scraped(client.get("/metrics").get_data(as_text=True))
    assert sample(samples, "visma_idp_queue_depth", queue="mail", status="pending") == 2
    assert sample(samples, "visma_idp_queue_depth", queue="mail", status="failed") == 1
    assert sample(samples, "visma_idp_queue_depth", queue="logout", status="pending") == 1
    assert sample(samples, "visma_idp_queue_depth", queue="logout", status="failed") == 0
    assert 300 <= sample(samples, "visma_idp_queue_oldest_age_seconds", queue="mail") < 330
    assert 42 <= sample(samples, "visma_idp_queue_oldest_age_seconds", queue="logout") < 72
    assert sample(samples, "visma_idp_queue_scrape_ok") == 1


def test_a_database_that_does_not_answer_leaves_the_queues_out(make_app):
    from tests.test_cli import free_port

    down = make_app(DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/idp",
                    DATABASE_CONNECT_TIMEOUT=1)
    resp = down.test_client().get("/metrics")
    assert resp.status_code == 200
    samples = scraped(resp.get_data(as_text=True))
    assert sample(samples, "visma_idp_queue_scrape_ok") == 0
    assert ("visma_idp_queue_depth", (("queue", "mail"), ("status", "pending"))) not in samples
