"""Requests made while the database does not answer get a 503 with
Retry-After, JSON or a page as the caller expects, and the log gets one
warning, not a traceback per request (visma_idp/outage.py)."""

from __future__ import annotations

import base64
import logging

import pytest

DEAD_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"  # nothing listens on port 1


@pytest.fixture
def down(make_app):
    return make_app(DATABASE_URL=DEAD_DATABASE, DATABASE_CONNECT_TIMEOUT=1)


def test_the_token_endpoint_answers_503_json_with_retry_after(down, caplog):
    c = down.test_client()
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            r = c.post("/token", data={"grant_type": "client_credentials"},
                       headers={"Authorization": "Basic " + base64.b64encode(b"svc:secret").decode()})
            assert r.status_code == 503
            assert r.headers["Retry-After"] == "1"
            assert r.headers["Cache-Control"] == "no-store"
            assert r.get_json()["error"] == "temporarily_unavailable"
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1, [r.getMessage() for r in records]  # one warning for the five, no traceback
    assert records[0].levelno == logging.WARNING and records[0].exc_info is None
    assert "127.0.0.1" not in records[0].getMessage() and "postgres" not in records[0].getMessage()


def test_a_page_gets_a_short_translated_page(down):
    c = down.test_client()
    r = c.get("/authorize?client_id=expense&response_type=code&scope=openid",
              headers={"Accept": "text/html", "Accept-Language": "nb"})
    assert r.status_code == 503 and r.mimetype == "text/html"
    assert r.headers["Retry-After"] == "1"
    body = r.get_data(as_text=True)
    assert 'lang="nb"' in body
    assert "Traceback" not in body and "psycopg" not in body


def test_a_wrong_statement_is_not_hidden_as_an_outage(app):
    """Only errors of reaching the database are outages: a programming error stays a 500."""
    from sqlalchemy import text

    from visma_idp.storage import db

    @app.get("/test-bad-sql")
    def bad_sql():
        db.session.execute(text("SELECT no_such_column FROM users"))
        return "unreachable"

    app.config["PROPAGATE_EXCEPTIONS"] = False
    r = app.test_client().get("/test-bad-sql")
    assert r.status_code == 500
