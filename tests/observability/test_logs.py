"""The log formats, the request id on every line, and what is redacted."""

from __future__ import annotations

import json
import logging

import pytest

from visma_idp.observability.logs import JsonFormatter, TextFormatter, install_handler, redact

JWT = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJrYXJpIiwiaWF0IjoxNzAwMDAwMDAwfQ.c2lnbmF0dXJlLW9mLWl0"


@pytest.fixture
def json_lines(capsys):
    """The visma_idp loggers write JSON to stderr (as under `visma-idp serve`); returns a reader."""
    logger = logging.getLogger("visma_idp")
    level = logger.level
    handler = install_handler(log_format="json", level="INFO")
    capsys.readouterr()

    def read() -> list[dict]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]

    yield read
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.mark.parametrize(("text", "kept", "gone"), [
    (f"id_token_hint={JWT}&state=abc", "state=abc", JWT),
    ("Authorization: Bearer 2YotnFZFEjr1zCsicMWpAA", "Bearer [redacted]", "2YotnFZFEjr1"),
    (f"Authorization: Bearer {JWT}", "Bearer [jwt]", JWT[:30]),
    ("Authorization: Basic ZXhwZW5zZTpleHBlbnNlLXNlY3JldA==", "Basic [redacted]", "ZXhwZW5zZTpl"),
    ("grant_type=refresh_token&refresh_token=Q2hlY2sgdGhpcyBvdXQ", "grant_type=refresh_token", "Q2hlY2sgdGhp"),
    ("code=SplxlOBeZQQYbYS6WxSbIA&code_challenge=abc", "code_challenge=abc", "SplxlOBeZQQYbYS6WxSbIA"),
    ("client_id=expense&client_secret=expense-secret-0123456789", "client_id=expense", "expense-secret"),
    ("password=correct%20horse%20battery&email=kari@example.no", "email=kari@example.no", "correct%20horse"),
    ('{"password": "correct horse battery", "email": "kari@example.no"}', '"email": "kari@example.no"', "horse"),
    ("{'refresh_token': 'abcdefghijklmnop', 'scope': 'openid'}", "'scope': 'openid'", "abcdefghijklmnop"),
    ("GET /activate/Zm9vYmFyYmF6cXV4 200", "/activate/[redacted] 200", "Zm9vYmFy"),
    ("GET /password/reset/Zm9vYmFyYmF6cXV4?lang=nb", "/password/reset/[redacted]?lang=nb", "Zm9vYmFy"),
    ("GET /login/link/Zm9vYmFyYmF6cXV4", "/login/link/[redacted]", "Zm9vYmFy"),
    ("GET /invitations/Zm9vYmFyYmF6cXV4", "/invitations/[redacted]", "Zm9vYmFy"),
    ("error_code=42 token_type_hint=refresh_token", "error_code=42 token_type_hint=refresh_token", "[redacted]"),
])
def test_redact(text, kept, gone):
    cleaned = redact(text)
    assert kept in cleaned
    assert gone not in cleaned
    assert redact(cleaned) == cleaned  # idempotent


@pytest.fixture
def app(make_app):
    """The access log on (it is off by default)."""
    return make_app(ACCESS_LOG=True)


@pytest.fixture
def client(app):
    return app.test_client()


def test_json_lines_have_the_fields_and_the_request_id(app, client, json_lines):
    log = logging.getLogger("visma_idp.test_logs")

    @app.get("/test-only/log")
    def log_something():
        log.info("handled %s for %s", "a thing", "kari", extra={"client_id": "expense", "attempt": 2})
        log.warning("the secret was code=abcdef123456 and %s", JWT)
        return "ok"

    resp = client.get("/test-only/log?code=shouldnotshow123&lang=nb")
    rid = resp.headers["X-Request-Id"]
    lines = json_lines()
    mine = [line for line in lines if line["logger"] == "visma_idp.test_logs"]
    assert [line["message"] for line in mine] == [
        "handled a thing for kari", "the secret was code=[redacted] and [jwt]"]
    first = mine[0]
    assert first["level"] == "INFO" and first["request_id"] == rid
    assert first["client_id"] == "expense" and first["attempt"] == 2
    assert first["time"].endswith("Z") and first["time"][10] == "T"
    access = [line for line in lines if line["logger"] == "visma_idp.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == rid and access[0]["status"] == 200
    assert access[0]["endpoint"] == "log_something"
    assert access[0]["message"].startswith("GET /test-only/log?code=[redacted]&lang=nb 200 ")
    assert "shouldnotshow" not in json.dumps(lines)


def test_the_access_line_redacts_link_tokens(client, json_lines):
    client.get("/activate/c2VjcmV0LWxpbmstdG9rZW4tMTIz?x=1")
    client.get("/password/reset/c2VjcmV0LWxpbmstdG9rZW4tMTIz")
    text = json.dumps(json_lines())
    assert "c2VjcmV0LWxpbmstdG9rZW4tMTIz" not in text
    assert "/activate/[redacted]?x=[redacted]" in text and "/password/reset/[redacted]" in text


def test_text_format(app):
    record = logging.LogRecord("visma_idp.audit", logging.INFO, __file__, 1, "token_issued refresh_token=%s",
                               ("abcdefgh1234",), None)
    line = TextFormatter().format(record)
    assert line.endswith(" INFO visma_idp.audit [-] token_issued refresh_token=[redacted]")
    record.request_id = "lb-0123456789"
    assert "[lb-0123456789]" in TextFormatter().format(record)


def test_a_traceback_is_redacted_too():
    try:
        raise ValueError(f"bad token {JWT}")
    except ValueError:
        import sys

        record = logging.LogRecord("visma_idp.x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    for formatter in (TextFormatter(), JsonFormatter()):
        out = formatter.format(record)
        assert "ValueError: bad token [jwt]" in out and JWT not in out


def test_installing_twice_keeps_one_handler(capsys):
    logger = logging.getLogger("visma_idp")
    level = logger.level
    first = install_handler(log_format="text", level="INFO")
    try:
        assert install_handler(log_format="json", level="WARNING") is first
        assert isinstance(first.formatter, JsonFormatter)
        assert [h for h in logger.handlers if h is first] == [first]
        logging.getLogger("visma_idp.test").info("not shown at WARNING")
        assert capsys.readouterr().err == ""
    finally:
        logger.removeHandler(first)
        logger.setLevel(level)


def test_log_format_is_checked(make_app):
    from visma_idp.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        make_app(LOG_FORMAT="xml")
    assert info.value.setting == "LOG_FORMAT"


def test_the_access_log_is_off_by_default(make_app, caplog):
    caplog.set_level(logging.INFO, logger="visma_idp")
    make_app().test_client().get("/healthz")
    assert not [r for r in caplog.records if r.name == "visma_idp.access"]
