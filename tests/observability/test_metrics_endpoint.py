"""Who may read /metrics, and what reading it leaves behind (nothing)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from visma_idp.errors import ConfigError
from visma_idp.storage import AuditEvent, db

TOKEN = "scrape-token-0123456789abcdef"


def test_loopback_reads_it_without_a_token(client):
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in resp.headers
    assert "visma_idp_http_requests_total" in resp.get_data(as_text=True)


@pytest.mark.parametrize("environ", [
    {"REMOTE_ADDR": "10.0.0.9"},
    {"REMOTE_ADDR": "192.0.2.1"},
    {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"},  # through a proxy on this host
    {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=203.0.113.9"},
])
def test_anyone_else_gets_a_404(client, environ):
    resp = client.get("/metrics", environ_base=environ)
    assert resp.status_code == 404
    assert "visma_idp_" not in resp.get_data(as_text=True)


def test_metrics_allow_names_the_scrapers(make_app):
    client = make_app(METRICS_ALLOW="10.20.0.0/16, 192.0.2.7").test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.20.3.4"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200
    assert client.get("/metrics").status_code == 404  # loopback is no longer in the list


def test_a_trusted_proxy_does_not_open_it(make_app):
    client = make_app(TRUSTED_PROXIES="127.0.0.1").test_client()
    # the proxy says the client is loopback: still no, a forwarded request never scrapes without the token
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 404


def test_with_a_token_only_the_token_counts(make_app):
    client = make_app(METRICS_TOKEN=TOKEN).test_client()
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                    environ_base={"REMOTE_ADDR": "198.51.100.4", "HTTP_X_FORWARDED_FOR": "203.0.113.9"})
    assert ok.status_code == 200 and ok.headers["Cache-Control"] == "no-store"


def test_a_short_token_or_a_bad_network_stops_start_up(make_app):
    with pytest.raises(ConfigError) as short:
        make_app(METRICS_TOKEN="short")
    assert short.value.setting == "METRICS_TOKEN"
    with pytest.raises(ConfigError) as bad:
        make_app(METRICS_ALLOW="10.0.0.1/8")
    assert bad.value.setting == "METRICS_ALLOW"


def test_metrics_off_means_no_endpoint(make_app):
    client = make_app(METRICS=False).test_client()
    resp = client.get("/metrics")
    assert resp.status_code == 404
    assert resp.headers["X-Request-Id"]  # the request id stays


def test_scraping_records_no_audit_row_and_no_throttle_count(app, client, idp):
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(AuditEvent))
    for _ in range(idp.settings["THROTTLE_IP_MAX_FAILURES"] + 5):
        assert client.get("/metrics").status_code == 200
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == before
    assert idp.throttle.attempt(None, "127.0.0.1").allowed
