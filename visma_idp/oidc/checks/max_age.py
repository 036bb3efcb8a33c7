"""The ``max_age`` parameter (OIDC Core §3.1.2.1).

Rules:
- ``max_age`` is a non-negative integer number of seconds; anything else is
  ``invalid_request``.
- When the session's ``auth_time`` is older than ``max_age`` seconds, the user
  must authenticate again (``login_required`` with ``prompt=none``).
- ``max_age=0`` behaves like ``prompt=login``.
- Whenever ``max_age`` was requested, the ID token carries ``auth_time``
  (we always include it).
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError


def parse_max_age(value: str | None, redirect_uri: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise InvalidRequestError("max_age must be a non-negative integer.", redirect_uri=redirect_uri)
    return int(value)


def auth_too_old(auth_time: int, max_age: int | None, now: int) -> bool:
    return max_age is not None and now - auth_time > max_age
