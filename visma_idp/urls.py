"""Where a browser may be sent after a page of ours: the one safe-redirect rule.

A ``next`` value (a form field, a query parameter, a value kept in the
session) names a page of ours as a path under the issuer, the way our routes
declare it (``/account/security``, ``/authorize/continue?tx=...``): the
browser then goes to the issuer plus that path (:func:`safe_next`), so a
provider mounted under a path (``https://example.com/idp``) stays under it.

Refused (None), each also when percent-encoded, once or several times
(``/%2F%2Fevil.example``, ``/%5Cevil.example``, ``/%252e%252e/``):

- anything but a string, the empty string, more than :data:`MAX_NEXT`
  characters, or more levels of percent-encoding than :data:`MAX_DECODINGS`;
- anything that does not start with exactly one ``/``: a scheme
  (``https:``, ``javascript:``), a host (``//evil.example``), a relative path;
- ``//`` anywhere, and any backslash (browsers read ``\\`` as ``/``);
- characters outside printable ASCII as sent (browsers drop tabs and line
  breaks from URLs, so ``/<TAB>/evil.example`` is ``//evil.example``), and
  control or invisible formatting characters (``%0d%0a``, ``%E2%80%AE``) once
  decoded;
- a ``.`` or ``..`` path segment (``/idp`` + ``/../other-app`` would leave
  the issuer's path);
- whatever ``urlsplit`` reads a scheme or a host in.

A refused value never raises: the caller goes to its own default page.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote, urlsplit

from .context import current_idp

#: a URI scheme (RFC 3986 §3.1), matched case-insensitively: redirect URIs at registration and in CSP
URI_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*", re.IGNORECASE)

MAX_NEXT = 500  # characters of a next value as sent
MAX_DECODINGS = 3  # percent-decoding levels looked through; a value still changing after them is refused

_PRINTABLE_ASCII = frozenset(chr(c) for c in range(0x21, 0x7F))
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _acceptable(text: str) -> bool:
    """One form of the value (as sent or decoded) passes every rule of the module doc."""
    if not text.startswith("/") or "//" in text or "\\" in text:
        return False
    if any(unicodedata.category(ch) in _INVISIBLE for ch in text):
        return False
    parts = urlsplit(text)
    if parts.scheme or parts.netloc:
        return False
    return not any(segment in {".", ".."} for segment in parts.path.split("/"))


def safe_path(value: object) -> str | None:
    """``value`` when it is a safe path of ours (see the module doc), else None.

    Args:
        value: the untrusted value, of any type (``request.values.get("next")``).

    Returns:
        The path exactly as given, or None.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_NEXT:
        return None
    if any(ch not in _PRINTABLE_ASCII for ch in value):
        return None
    form = value
    for _level in range(MAX_DECODINGS + 1):
        if not _acceptable(form):
            return None
        try:
            decoded = unquote(form, errors="strict")
        except UnicodeDecodeError:
            return None
        if decoded == form:
            return value
        form = decoded
    return None


def safe_next(value: object) -> str | None:
    """The absolute URL under the issuer for a safe ``next`` value, else None.

    Needs the app (the issuer). ``https://example.com/idp`` and
    ``/account/security`` give ``https://example.com/idp/account/security``.

    Args:
        value: the untrusted value, of any type.

    Returns:
        The issuer's origin and path followed by the path, or None when
        :func:`safe_path` refuses it.
    """
    path = safe_path(value)
    if path is None:
        return None
    idp = current_idp()
    return idp.issuer_origin + idp.issuer_path + path
