"""Per request: its id, its metrics and its access log line (a WSGI middleware).

Rules:
- Every response carries ``X-Request-Id`` (redirects, error pages, 404s
  too). The id is the one a trusted proxy sent in ``X-Request-Id`` (the TCP
  peer is in ``TRUSTED_PROXIES``, or that setting is a number of hops) when
  it is 8 to 64 characters of ``A-Z a-z 0-9 . _ -``; otherwise, and always
  from anyone else, a new random one (32 hex digits). It goes into every
  log line of the request and every audit row (``audit.py``).
- The middleware sits outside the app's others (the trusted-proxies one
  included), so it sees the TCP peer, and its time covers the whole app.
  ``oidc/fastlane.py`` answers a few token and introspection requests
  before they reach it: :meth:`RequestObserver.fast_lane` observes those,
  with the same id, metrics and log line.
- The endpoint of a request is its Flask endpoint name, ``unknown`` when no
  route matched (404, 405); it is noted when the request ends (a teardown
  hook), so it is known whatever a ``before_request`` hook answered.
- The access log line (``ACCESS_LOG``; logger ``visma_idp.access``) holds
  the method, the path with the secret segment of our link routes redacted
  and every query value redacted but those of :data:`PLAIN_PARAMETERS`, the
  status, the time, the endpoint and the client's address. Neither granian
  nor gunicorn writes one of its own (``server.py``).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from ipaddress import ip_address, ip_network
from typing import Any
from urllib.parse import parse_qsl, quote

from flask import request

from . import metrics
from .logs import REDACTED, REQUEST_ID_KEY, redact

ENDPOINT_KEY = "visma_idp.endpoint"
GRANT_KEY = "visma_idp.grant"
PEER_KEY = "visma_idp.peer_addr"  # proxy.py keeps the TCP peer here
VALID_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
# query parameters whose values the access log may show
PLAIN_PARAMETERS = frozenset({
    "client_id", "response_type", "response_mode", "scope", "prompt", "max_age", "ui_locales", "display",
    "code_challenge_method", "grant_type", "lang", "error", "acr_values", "redirect_uri",
})
TOKEN_ENDPOINT = "oidc.token"

access_log = logging.getLogger("visma_idp.access")


def trusts_peer(trusted: Any) -> Callable[[str | None], bool]:
    """Whether a TCP peer may name the request id, from the parsed ``TRUSTED_PROXIES``."""
    if trusted is None:
        return lambda _peer: False
    if isinstance(trusted, int):
        return lambda _peer: True  # every request comes through the proxies
    networks = tuple(ip_network(n) for n in trusted)

    def check(peer: str | None) -> bool:
        try:
            address = ip_address(peer or "")
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)
        address = mapped or address
        return any(address.version == n.version and address in n for n in networks)

    return check


def loggable_path(environ: dict[str, Any]) -> str:
    """The request's path and query for the access log, secrets left out."""
    path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/:@!$&'()*+,;=-._~")
    query = environ.get("QUERY_STRING", "")
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        path += "?" + "&".join(f"{quote(k, safe='')}=" + (quote(v, safe='') if k in PLAIN_PARAMETERS else REDACTED)
                               for k, v in pairs)
    return redact(path)


def note_endpoint(_exc: BaseException | None = None) -> None:
    """teardown_request: keep the endpoint (and a token response's grant) for the middleware."""
    environ = request.environ
    rule = request.url_rule
    environ[ENDPOINT_KEY] = rule.endpoint if rule is not None else "unknown"
    if rule is not None and rule.endpoint == TOKEN_ENDPOINT:
        # the token view parsed the form already (Authlib reads it): never a second parse
        form = vars(request._get_current_object()).get("form")  # type: ignore[attr-defined]
        if form is not None:
            environ[GRANT_KEY] = form.get("grant_type") or "other"


class RequestObserver:
    """WSGI middleware: the request id, the request's metrics and its access log line."""

    def __init__(self, app: Callable[..., Any], *, trusted: Any, count: bool, log_access: bool) -> None:
        self.app = app
        self.trusted = trusts_peer(trusted)
        self.count = count
        self.log_access = log_access

    def request_id(self, environ: dict[str, Any]) -> str:
        offered = environ.get("HTTP_X_REQUEST_ID")
        if offered and VALID_ID.fullmatch(offered) and self.trusted(environ.get(PEER_KEY, environ.get("REMOTE_ADDR"))):
            return offered
        return secrets.token_hex(16)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        rid = environ[REQUEST_ID_KEY] = self.request_id(environ)
        statuses: list[str] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(status)
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append(("X-Request-Id", rid))
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            status = int(statuses[-1][:3]) if statuses else 500
            self._done(environ, environ.get(ENDPOINT_KEY, "unknown"), status, time.perf_counter() - started,
                       environ.get(GRANT_KEY) if status == 200 else None)

    def fast_lane(self, environ: dict[str, Any], endpoint: str, status: int, headers: list[tuple[str, str]],
                  started: float) -> None:
        """An observer of ``oidc/fastlane.py``, which answers its requests before
        they reach this middleware: the same id, metrics and log line."""
        rid = environ.get(REQUEST_ID_KEY) or self.request_id(environ)
        environ[REQUEST_ID_KEY] = rid
        headers.append(("X-Request-Id", rid))
        self._done(environ, endpoint, status, time.perf_counter() - started,
                   "client_credentials" if endpoint == TOKEN_ENDPOINT and status == 200 else None)

    def _done(self, environ: dict[str, Any], endpoint: str, status: int, seconds: float, grant: str | None) -> None:
        method = environ.get("REQUEST_METHOD", "")
        if self.count:
            metrics.observe_request(endpoint, method, status, seconds, grant)
        if self.log_access and access_log.isEnabledFor(logging.INFO):
            access_log.info("%s %s %s %.1fms", method, loggable_path(environ), status, seconds * 1000,
                            extra={"request_id": environ[REQUEST_ID_KEY], "endpoint": endpoint, "status": status,
                                   "duration_ms": round(seconds * 1000, 3), "ip": environ.get("REMOTE_ADDR")})
