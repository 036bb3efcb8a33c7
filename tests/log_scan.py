"""pytest plugin: no log line of the suite holds a secret.

A handler on the root logger formats every record that reaches it through
the project's own formatters (``visma_idp.observability.logs``: text and
JSON, as a server would write them) and keeps the lines. After each test
(an autouse fixture), the lines logged since the previous check are scanned
by :func:`findings`; a line with a secret fails that test (an error in its
teardown), so a leak fails the run under xdist too (each worker scans its own
records). Lines logged after the last test fail the session.

What counts as a secret: a JWT (``eyJ...`` header and ``eyJ...`` payload),
a ``Bearer``/``Basic`` credential, a value given to a parameter or field
named like ``refresh_token``, ``access_token``, ``client_secret``,
``password``, ``code`` (and the rest of ``SECRET_NAMES``) that is not the
redaction mark, a link path's token, and the passwords and client secrets
the suite itself uses (:data:`KNOWN_SECRETS`). Only records at the levels
their loggers let through are seen (``visma_idp``: ``LOG_LEVEL``, INFO in
the tests).
"""

from __future__ import annotations

import logging
import re
import threading

import pytest

from visma_idp.observability.logs import LINK_PATHS, SECRET_NAMES, JsonFormatter, TextFormatter

# passwords and client secrets the suite signs in and authenticates with (tests/conftest.py and the test files)
KNOWN_SECRETS = (
    "correct horse battery", "another horse battery", "olsen likes green tea", "another good passphrase 42",
    "an evil new password 123", "not the password at all", "another long passphrase 7", "nordmann fjordkraft tea",
    "test-secret-key-that-is-long-enough-0123456789", "expense-secret-0123456789", "admin-tool-secret-0123456789",
    "pkce-client-secret-0123456789", "rp-secret-0123456789abcdef", "other-client-secret-0123456789",
    "oidf-client-2-secret-0123456789", "upstream-client-secret-0123456789abcdef", "svc-secret-0123456789abcdef",
)
_NAMES = "|".join(sorted(SECRET_NAMES, key=len, reverse=True))
PATTERNS = (
    ("a JWT", re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}")),
    ("a bearer or basic credential", re.compile(r"(?i)\b(?:bearer|basic)\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]{8,}")),
    ("a secret parameter", re.compile(rf"(?i)(?<![A-Za-z0-9_])(?:{_NAMES})=(?!\[redacted\])[^&\s\"',;)]{{6,}}")),
    ("a secret field", re.compile(rf"(?i)[\"'](?:{_NAMES})[\"']\s*:\s*[\"'](?!\[redacted\])[^\"']{{6,}}")),
    ("a link token", re.compile("(?:" + "|".join(map(re.escape, LINK_PATHS)) + r")(?!\[redacted\])[A-Za-z0-9_-]{8,}")),
)


def findings(line: str) -> list[str]:
    """What in ``line`` looks like a secret (empty: nothing)."""
    found = [f"{what}: {match.group(0)[:60]!r}" for what, pattern in PATTERNS for match in pattern.finditer(line)]
    found += [f"a password or client secret of the suite: {secret!r}" for secret in KNOWN_SECRETS if secret in line]
    return found


class Collector(logging.Handler):
    """Keeps every record it is given as the lines our formatters make of it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.formatters = (TextFormatter(), JsonFormatter())
        self.lines: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            lines = [f.format(record) for f in self.formatters]
        except Exception as exc:  # noqa: BLE001 - a record our formatters cannot write is itself a finding
            lines = [f"unformattable record {record.name}: {exc!r}: {record.msg!r}"]
        with self._guard:
            self.lines.extend(lines)

    def take(self) -> list[str]:
        with self._guard:
            lines, self.lines = self.lines, []
        return lines


def scan(lines: list[str]) -> list[str]:
    """Every finding in ``lines``, each with the start of its line."""
    return [f"{what} in {line[:300]!r}" for line in lines for what in findings(line)]


collector = Collector()


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(collector)


def pytest_unconfigure(config: pytest.Config) -> None:
    logging.getLogger().removeHandler(collector)


@pytest.fixture(autouse=True)
def _no_secret_in_log_lines():
    yield
    found = scan(collector.take())
    if found:
        pytest.fail("a log line holds a secret:\n" + "\n".join(found), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = scan(collector.take())
    if found:
        print("\nlog_scan: a log line after the last test holds a secret:\n" + "\n".join(found))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
