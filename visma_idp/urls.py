"""Where the provider may send a browser on its own say-so."""

from __future__ import annotations

from urllib.parse import urlsplit

from .context import current_idp


def safe_next(value: str | None) -> str | None:
    """``value`` as an absolute URL under the issuer when it is a path of ours
    (one leading ``/``, no ``//``, no backslash, no scheme or host), else None."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 500:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return current_idp().issuer_origin + value
