"""The mail outbox and the back-channel logout queue, as gauges read at scrape time.

Rules:
- One grouped statement per queue, only when Prometheus scrapes: the depth
  of each state that needs a look (``pending``, ``failed``) and the age of
  the oldest pending row (0 when none waits). Both tables have an index on
  ``status``. Nothing is read per request.
- A database that does not answer makes the scrape leave the queue gauges
  out and set ``visma_idp_queue_scrape_ok`` to 0; the rest of the metrics
  still answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from ..storage import LogoutDelivery, MailOutbox, db

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("visma_idp.metrics")
QUEUES: tuple[tuple[str, Any], ...] = (("mail", MailOutbox), ("logout", LogoutDelivery))
STATES = ("pending", "failed")


def queue_stats(now: int) -> dict[str, dict[str, float]]:
    """``{queue: {"pending": n, "failed": n, "oldest_age": seconds}}``."""
    stats: dict[str, dict[str, float]] = {}
    for name, model in QUEUES:
        found = {state: 0.0 for state in STATES} | {"oldest_age": 0.0}
        rows = db.session.execute(
            select(model.status, func.count(), func.min(model.created_at))
            .where(model.status.in_(STATES)).group_by(model.status))
        for status, count, oldest in rows:
            found[status] = float(count)
            if status == "pending" and oldest is not None:
                found["oldest_age"] = float(max(0, now - oldest))
        stats[name] = found
    return stats


class QueueCollector:
    """A ``prometheus_client`` collector of one app's queues."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        ok = GaugeMetricFamily("visma_idp_queue_scrape_ok", "1 when the queue gauges could be read from the "
                               "database, else 0.")
        try:
            with self.app.app_context():
                stats = queue_stats(self.app.extensions["visma_idp"].clock.now())
                db.session.rollback()
        except SQLAlchemyError:
            log.warning("metrics: could not read the queues", exc_info=True)
            ok.add_metric([], 0)
            yield ok
            return
        depth = GaugeMetricFamily("visma_idp_queue_depth", "Rows in a queue (mail: the outbox; logout: "
                                  "back-channel logout deliveries) by state.", labels=["queue", "status"])
        age = GaugeMetricFamily("visma_idp_queue_oldest_age_seconds", "Age of the oldest pending row of a "
                                "queue (0 when none waits).", labels=["queue"])
        for name, found in stats.items():
            for state in STATES:
                depth.add_metric([name, state], found[state])
            age.add_metric([name], found["oldest_age"])
        ok.add_metric([], 1)
        yield depth
        yield age
        yield ok
