"""Redirect URI matching.

Rules:
- The requested URI must equal a registered one character for character:
  no prefix match, no added query, no fragment, no case folding, no
  normalisation of ``..``/``;`` segments, no trailing-slash tolerance.
- A URI with a fragment is never accepted (RFC 6749 §3.1.2).
- Only for native public clients (RFC 8252 §7.3): a registered loopback IP
  literal (``http://127.0.0.1/...`` or ``http://[::1]/...``) matches the same
  URI with any port. ``localhost`` gets no such tolerance (RFC 8252 §8.3), and
  scheme, host, path and query must still match exactly.

Authlib asks the client (``client.check_redirect_uri``): the client it gets
is ``oidc/clients.py``'s ``OAuthClient``, which answers with this rule.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_HOSTS = {"127.0.0.1", "[::1]"}


def _without_port(uri: str) -> tuple[str, str, str, str] | None:
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    if parts.scheme != "http" or parts.username is not None or parts.password is not None:
        return None
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    if host not in LOOPBACK_HOSTS:
        return None
    return parts.scheme, host, parts.path, parts.query


def redirect_uri_matches(requested: str, registered: list[str], *, loopback_any_port: bool = False) -> bool:
    """True when ``requested`` is acceptable for a client with ``registered`` URIs."""
    if not requested or "#" in requested:
        return False
    if requested in registered:
        return True
    if not loopback_any_port:
        return False
    wanted = _without_port(requested)
    if wanted is None:
        return False
    return any(_without_port(uri) == wanted for uri in registered)
