"""Log lines: text or JSON, each with the request id, none with a secret.

Rules:
- Every line of a request carries that request's id (``request_id``; ``-``
  outside a request), the one its response sends as ``X-Request-Id``
  (:mod:`.requests`).
- ``LOG_FORMAT=text`` (default): ``<UTC time> <level> <logger> [<request id>]
  <message>``. ``LOG_FORMAT=json``: one JSON object per line with ``time``
  (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``request_id`` and the
  record's ``extra`` fields; ``exc`` holds a traceback.
- :func:`redact` runs over every line either formatter writes, whatever the
  logger: JWTs, ``Bearer``/``Basic`` credentials, the values of parameters
  named like a secret (``code=``, ``token=``, ``refresh_token=``,
  ``client_secret=``, ``password=`` ...; as ``name=value``, ``"name": "value"``
  or ``'name': 'value'``) and the secret segment of our link paths
  (``/activate/<token>``, ``/password/reset/<token>``, ``/login/link/<token>``,
  ``/invitations/<token>``) become ``[redacted]``. It is a net, not the rule:
  the rule is that no caller logs a secret (``audit.py``).
- The standalone server (``visma-idp serve``) writes to stderr through
  :func:`install_handler`; an app that embeds the provider keeps its own
  logging and may put :class:`RedactingFilter` and :class:`JsonFormatter` (or
  :class:`TextFormatter`) on its handlers.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from flask import has_request_context, request

REQUEST_ID_KEY = "visma_idp.request_id"  # where the WSGI environ keeps this request's id
REDACTED = "[redacted]"

# names whose values are secrets wherever they appear as parameters or fields
SECRET_NAMES = (
    "code", "token", "access_token", "refresh_token", "id_token", "id_token_hint", "logout_token",
    "client_secret", "client_assertion", "code_verifier", "password", "new_password", "current_password",
    "secret", "otp", "recovery_code", "csrf_token", "assertion", "subject_token", "device_code",
)
_SECRET_NAMES = frozenset(SECRET_NAMES)
# our routes whose last segment is a live link
LINK_PATHS = ("/activate/", "/password/reset/", "/login/link/", "/invitations/")

# a JWS or JWE: base64url JSON header, then dot-separated parts
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){1,4}")
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)(\s+)(?!\[redacted\])[A-Za-z0-9._~+/=-]{4,}")
# name=value in query strings, form bodies, log messages (the name checked in a set: faster than an alternation)
_PARAMETER = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_]{2,24})=(?!\[redacted\])[^&\s\"',;)]+")
# "name": "value" (JSON) and 'name': 'value' (a dict's repr)
_FIELD = re.compile(r"([\"'])([A-Za-z_]{2,24})\1(\s*:\s*)([\"'])(?!\[redacted\]\4)((?:\\.|(?!\4).)*)\4")
_LINK = re.compile("(" + "|".join(re.escape(p) for p in LINK_PATHS) + r")(?!\[redacted\])[^/?#\s\"']+")


def _parameter(match: re.Match[str]) -> str:
    name = match.group(1)
    return f"{name}={REDACTED}" if name.lower() in _SECRET_NAMES else match.group(0)


def _field(match: re.Match[str]) -> str:
    quote, name, colon, value_quote = match.group(1, 2, 3, 4)
    if name.lower() not in _SECRET_NAMES:
        return match.group(0)
    return f"{quote}{name}{quote}{colon}{value_quote}{REDACTED}{value_quote}"


def redact(text: str) -> str:
    """``text`` with every secret-looking value replaced (see the module's rules).

    Each pattern runs only when a cheap look says it may match: most lines
    hold none of them, and the access log passes every request through here."""
    if "eyJ" in text:
        text = _JWT.sub("[jwt]", text)
    lower = text.lower()
    if "bearer" in lower or "basic" in lower:
        text = _CREDENTIAL.sub(rf"\1\2{REDACTED}", text)
    if "=" in text:
        text = _PARAMETER.sub(_parameter, text)
    if ":" in text and ('"' in text or "'" in text):
        text = _FIELD.sub(_field, text)
    if "/activate/" in text or "/reset/" in text or "/link/" in text or "/invitations/" in text:
        text = _LINK.sub(rf"\1{REDACTED}", text)
    return text


def current_request_id() -> str | None:
    """The id of the request being served (None outside a request)."""
    if not has_request_context():
        return None
    return request.environ.get(REQUEST_ID_KEY)


class RedactingFilter(logging.Filter):
    """Puts ``request_id`` on every record (the request's, unless the record
    brings its own) and replaces the message with its redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# the attributes every LogRecord has: anything else came in through ``extra``
_STANDARD = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message", "asctime", "request_id", "taskName"}


def _utc(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``<UTC time> <level> <logger> [<request id>] <message>``, redacted."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None) or current_request_id() or "-"
        line = f"{_utc(record)} {record.levelname} {record.name} [{rid}] {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def _clean(value: Any, depth: int = 0) -> Any:
    """A field's value for a JSON line: strings redacted, secret-named keys
    blanked, containers walked (a few levels deep; deeper goes as text)."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth < 4 and isinstance(value, dict):
        return {str(k): REDACTED if str(k).lower() in _SECRET_NAMES else _clean(v, depth + 1) for k, v in value.items()}
    if depth < 4 and isinstance(value, list | tuple | set | frozenset):
        return [_clean(v, depth + 1) for v in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module's rules), redacted field by field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc(record),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = REDACTED if key.lower() in _SECRET_NAMES else _clean(value)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


FORMATTERS: dict[str, type[logging.Formatter]] = {"text": TextFormatter, "json": JsonFormatter}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def install_handler(*, log_format: str, level: str) -> logging.Handler:
    """Send the ``visma_idp`` loggers' records to stderr in ``log_format``
    (``text`` or ``json``), redacted. Called again, it changes the one
    handler it installed instead of adding another."""
    logger = logging.getLogger("visma_idp")
    logger.setLevel(level.upper())
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.addFilter(RedactingFilter())
        logger.addHandler(handler)
    handler.setFormatter(FORMATTERS[log_format]())
    return handler
