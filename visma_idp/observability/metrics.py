"""The Prometheus metrics (``prometheus-client``), and their exposition.

Rules:
- Every metric is named ``visma_idp_*`` and built once per process, on first
  use (:func:`metrics`), not at import: ``prometheus_client`` decides at
  that moment between in-memory values and the multiprocess files of
  ``PROMETHEUS_MULTIPROC_DIR``, which ``visma-idp serve`` sets before its
  workers start (``server.py``).
- Labels come from fixed sets or from our code, never from a request's own
  text: an endpoint is its Flask endpoint name (``unknown`` when no route
  matched), a method outside the usual seven is ``other``, a grant outside
  the three we serve is ``other``, an audit event is one of the names our
  code records.
- Per request: one counter increment and one histogram observation (two
  more for a 5xx or an issued token); the audit and throttle counts are one
  increment each. No database query: the queue gauges are read at scrape
  time (:mod:`.queues`).
- Scraping (:func:`exposition`): in multiprocess mode the sum over every
  worker's files (``MultiProcessCollector``), else this process's registry;
  then the app's own collectors (the queues).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
GRANTS = frozenset({"authorization_code", "refresh_token", "client_credentials"})

# audit events that are a sign-in attempt's end: event -> (outcome, method);
# login_succeeded's method comes from its amr (:func:`_method_of`)
SIGN_IN_EVENTS: dict[str, tuple[str, str]] = {
    "login_failed": ("failure", "password"),
    "login_throttled": ("throttled", "password"),
    "login_refused_locked": ("locked", "password"),
    "passkey_login_failed": ("failure", "passkey"),
    "passkey_login_refused": ("refused", "passkey"),
    "passkey_login_throttled": ("throttled", "passkey"),
    "upstream_login_failed": ("failure", "upstream"),
    "upstream_login_refused": ("refused", "upstream"),
    "second_step_failed": ("failure", "second_step"),
    "second_step_throttled": ("throttled", "second_step"),
    "second_step_locked": ("locked", "second_step"),
}
_AMR_METHODS = (("fed", "upstream"), ("pwd", "password"), ("email", "email_link"), ("hwk", "passkey"),
                ("swk", "passkey"))


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """The process's metric objects (see the module's rules)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram, values

        if multiprocess_dir() and not getattr(values.ValueClass, "_multiprocess", False):
            # prometheus_client was imported before the directory was set: its
            # values would stay in this process's memory, invisible to a scrape
            values.ValueClass = values.get_value_class()
        self.requests = Counter("visma_idp_http_requests_total", "HTTP requests answered, by endpoint, method "
                                "and status.", ["endpoint", "method", "status"])
        self.errors = Counter("visma_idp_http_errors_total", "HTTP requests answered with a 5xx status, by "
                              "endpoint.", ["endpoint"])
        self.duration = Histogram("visma_idp_http_request_duration_seconds", "Time to answer an HTTP request "
                                  "(until the response starts), by endpoint.", ["endpoint"],
                                  buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.sign_ins = Counter("visma_idp_sign_ins_total", "Sign-ins that ended: success, or why not, by the "
                                "way in.", ["outcome", "method"])
        self.tokens = Counter("visma_idp_tokens_issued_total", "Token responses of the token endpoint, by "
                              "grant type.", ["grant"])
        self.audit = Counter("visma_idp_audit_events_total", "Audit events recorded, by event and outcome.",
                             ["event", "outcome"])
        self.throttle_hits = Counter("visma_idp_throttle_hits_total", "Attempts the login throttle held back, by "
                                     "key (account or ip) and whether the key waits or is locked.",
                                     ["kind", "result"])
        self.throttle_trips = Counter("visma_idp_throttle_trips_total", "Failed attempts after which the account "
                                      "key has to wait or is locked.", ["result"])


_lock = threading.Lock()
_metrics: Metrics | None = None


def metrics() -> Metrics:
    """This process's :class:`Metrics`, built on first use."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = Metrics()
    return _metrics


# (endpoint, method, status) -> that request counter's child and the endpoint's histogram child:
# labels() takes a lock and builds a key on every call; the label sets are few and fixed
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(endpoint: str, method: str, status: int, seconds: float, grant: str | None) -> None:
    method = method if method in METHODS else "other"
    children = _children.get((endpoint, method, status))
    m = metrics()
    if children is None:
        children = _children[(endpoint, method, status)] = (m.requests.labels(endpoint, method, str(status)),
                                                            m.duration.labels(endpoint))
    children[0].inc()
    children[1].observe(seconds)
    if status >= 500:
        m.errors.labels(endpoint).inc()
    if grant is not None:
        m.tokens.labels(grant if grant in GRANTS else "other").inc()


def _method_of(details: dict[str, Any] | None) -> str:
    amr = (details or {}).get("amr") or ()
    for value, method in _AMR_METHODS:
        if value in amr:
            return method
    return "other"


def audit_recorded(event: str, outcome: str, details: dict[str, Any] | None) -> None:
    """Count an audit event, and the sign-in it ends if it ends one."""
    m = metrics()
    m.audit.labels(event, outcome).inc()
    if event == "login_succeeded":
        m.sign_ins.labels("success", _method_of(details)).inc()
    elif event in SIGN_IN_EVENTS:
        m.sign_ins.labels(*SIGN_IN_EVENTS[event]).inc()


def throttle_hit(kind: str, *, locked: bool) -> None:
    """An attempt held back on its ``kind`` of key (``account`` or ``ip``)."""
    metrics().throttle_hits.labels(kind, "locked" if locked else "wait").inc()


def throttle_trip(*, locked: bool) -> None:
    """A failure after which the account key waits (or is locked)."""
    metrics().throttle_trips.labels("locked" if locked else "wait").inc()


def exposition(extra: Collector | None = None) -> tuple[bytes, str]:
    """The text a scrape gets, and its content type: every worker's metrics
    in multiprocess mode (else this process's), then ``extra``'s."""
    from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    metrics()  # a scrape before the first request still lists every metric
    if multiprocess_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if extra is not None:
        own = CollectorRegistry(auto_describe=False)
        own.register(extra)
        body += generate_latest(own)
    return body, CONTENT_TYPE_PLAIN_0_0_4
