"""Metrics, request ids and log lines (docs/operations.md, "Metrics and logs").

- :mod:`.requests`: the WSGI middleware that gives every request its id
  (``X-Request-Id``), counts and times it, and writes its access log line;
- :mod:`.metrics`: the Prometheus metrics and their exposition
  (multiprocess-safe);
- :mod:`.queues`: the mail and logout queues' gauges, read at scrape time;
- :mod:`.logs`: the text and JSON formats, the request id on every line,
  redaction.

``/metrics`` (under the provider's URL prefix) answers only the scraper:

- with ``METRICS_TOKEN`` set, a request with ``Authorization: Bearer
  <METRICS_TOKEN>`` (else 401);
- without it, a request that comes straight from an address of
  ``METRICS_ALLOW`` (default: loopback): the TCP peer, and no
  ``X-Forwarded-For`` or ``Forwarded`` header, so nothing reaches it through
  a reverse proxy (else 404).

It sets no cookie, opens no session, counts against no throttle and
records no audit row; its answer is ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hmac
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, request

from ..errors import ConfigError
from .logs import current_request_id, install_handler, redact
from .metrics import audit_recorded, throttle_hit, throttle_trip
from .requests import PEER_KEY, RequestObserver, note_endpoint

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["audit_recorded", "current_request_id", "init_app", "install_handler", "redact", "throttle_hit",
           "throttle_trip", "watch_fast_lane"]

bp = Blueprint("observability", __name__)
STATE_KEY = "visma_idp.observability"


def parse_networks(value: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """``METRICS_ALLOW``: addresses and networks, separated by spaces or commas."""
    found = []
    for item in value.replace(",", " ").split():
        try:
            found.append(ip_network(item, strict=True))
        except ValueError:
            raise ConfigError("METRICS_ALLOW", f"{item!r} is not an IP address or network") from None
    return tuple(found)


def init_app(app: Flask, idp: Any) -> None:
    """The middleware, the endpoint teardown hook and ``/metrics``."""
    s = idp.settings
    token = s["METRICS_TOKEN"]
    if token is not None and len(token) < 16:
        raise ConfigError("METRICS_TOKEN", "must be at least 16 characters")
    app.extensions[STATE_KEY] = {"token": token, "allow": parse_networks(s["METRICS_ALLOW"] or ""),
                                 "queues": None}
    app.teardown_request(note_endpoint)
    observer = RequestObserver(app.wsgi_app, trusted=s["TRUSTED_PROXIES"], count=s["METRICS"],
                               log_access=s["ACCESS_LOG"])
    app.wsgi_app = observer  # type: ignore[method-assign]
    app.extensions[STATE_KEY]["observer"] = observer
    if s["METRICS"]:
        idp.register_blueprints(app, bp)


def watch_fast_lane(app: Flask, lane: Any) -> None:
    """Observe the requests ``oidc/fastlane.py``'s ``lane`` answers in front of ``app``."""
    lane.observers.append(app.extensions[STATE_KEY]["observer"].fast_lane)


def _allowed(state: dict[str, Any]) -> int | None:
    """None when this request may scrape, else the status to answer."""
    if state["token"] is not None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        good = scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), state["token"].encode())
        return None if good else 401
    environ = request.environ
    if "HTTP_X_FORWARDED_FOR" in environ or "HTTP_FORWARDED" in environ:
        return 404
    try:
        peer = ip_address(environ.get(PEER_KEY) or environ.get("REMOTE_ADDR") or "")
    except ValueError:
        return 404
    peer = getattr(peer, "ipv4_mapped", None) or peer
    if any(peer.version == n.version and peer in n for n in state["allow"]):
        return None
    return 404


@bp.get("/metrics")
def scrape() -> Response:
    from .metrics import exposition
    from .queues import QueueCollector

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions[STATE_KEY]
    refused = _allowed(state)
    if refused is not None:
        response = Response("", status=refused)
        if refused == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
    else:
        if state["queues"] is None:
            state["queues"] = QueueCollector(app)
        body, content_type = exposition(state["queues"])
        response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response
