"""The suite's log scanner (tests/log_scan.py) finds what it should, and a
leak fails the test that logged it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import log_scan

ROOT = Path(__file__).resolve().parents[2]
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJrYXJpIn0.c2lnbmF0dXJl"


def test_findings():
    assert log_scan.findings(f"issued {JWT}")
    assert log_scan.findings("Authorization: Bearer 2YotnFZFEjr1zCsicMWpAA")
    assert log_scan.findings("refresh_token=tGzv3JOkF0XG5Qx2TlKWIA")
    assert log_scan.findings('{"client_secret": "s3cr3t-value-xyz"}')
    assert log_scan.findings("GET /activate/Zm9vYmFyYmF6cXV4 200")
    assert log_scan.findings("user typed correct horse battery")
    assert log_scan.findings("secret expense-secret-0123456789 in a line")
    for clean in ("token_issued user_id=1 client_id=expense details={'grant_type': 'authorization_code'}",
                  "GET /activate/[redacted] 200", "Authorization: Bearer [redacted]", "code=[redacted]&state=x",
                  "login_failed outcome=failure subject=kari@example.no"):
        assert log_scan.findings(clean) == [], clean


def test_the_collector_formats_through_our_formatters_and_catches_what_they_miss():
    """A JWT is redacted by the formatter, so the line is clean; a password it
    cannot know is not, and the scanner finds it."""
    collector = log_scan.Collector()
    logger = logging.getLogger("visma_idp.test_log_scan")
    logger.propagate = False  # these lines stay out of the suite's own scan
    logger.addHandler(collector)
    try:
        logger.warning("token was %s", JWT)
        assert log_scan.scan(collector.take()) == []
        logger.warning("the user typed %s", "correct horse battery")
        found = log_scan.scan(collector.take())
    finally:
        logger.removeHandler(collector)
        logger.propagate = True
    assert len(found) == 2  # the text line and the JSON line
    assert all("correct horse battery" in f for f in found)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_a_leak_fails_the_test_that_logged_it(tmp_path, workers):
    """A real pytest run with the plugin: each leaking test fails in its
    teardown, the clean ones pass (a JWT the formatter redacts is no leak),
    and the run's exit status is 1."""
    (tmp_path / "test_leak.py").write_text(textwrap.dedent('''
        import logging

        def test_clean():
            logging.getLogger("visma_idp.x").warning("nothing to see: code=[redacted]")

        def test_leaks_a_password():
            logging.getLogger("visma_idp.x").warning("the password is correct horse battery")

        def test_leaks_a_client_secret():
            logging.getLogger("visma_idp.x").warning("client authenticated with %s", "expense-secret-0123456789")

        def test_a_jwt_is_redacted_by_the_formatter():
            logging.getLogger("visma_idp.x").warning("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJrYXJpIn0.c2ln")
    '''))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.log_scan", "-p", "no:cacheprovider", "-q", "--rootdir",
         str(tmp_path), "-c", os.devnull, *workers, str(tmp_path / "test_leak.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "4 passed, 2 errors" in out, out
    assert "ERROR test_leak.py::test_leaks_a_password" in out, out
    assert "ERROR test_leak.py::test_leaks_a_client_secret" in out, out
    assert "a password or client secret of the suite: 'correct horse battery'" in out, out
