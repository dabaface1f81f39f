"""Prometheus metrics of one bridge: requests, faults, queue depth, dispatch latency and
per-provider outcomes. One registry per bridge, so that several bridges (tests) in one
process never share counters.

Under gunicorn a scrape reaches one worker of several: with ``PROMETHEUS_MULTIPROC_DIR``
set (``server/gunicorn.conf.py`` sets it), every worker writes its figures there and
``/metrics`` adds up all of them (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["Metrics"]


class Metrics:
    """The bridge's metrics and its logger."""

    def __init__(self) -> None:
        self.log = logging.getLogger("smsxml.server")
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "smsxml_soap_request_seconds",
            "SOAP requests by operation, and how long they took",
            ["operation"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
        )
        self.faults = Counter(
            "smsxml_soap_faults_total",
            "SOAP faults by operation and code",
            ["operation", "code"],
            registry=self.registry,
        )
        self.queue = Gauge(
            "smsxml_deliveries",
            "Deliveries in each state",
            ["state"],
            registry=self.registry,
            multiprocess_mode="mostrecent",  # read from the database at each scrape
        )
        self.dispatch = Histogram(
            "smsxml_dispatch_seconds",
            "Time of one provider send call",
            ["provider"],
            registry=self.registry,
        )
        self.outcomes = Counter(
            "smsxml_provider_outcomes_total",
            "Provider calls by outcome (accepted, temporary, permanent, unknown)",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "smsxml_dispatch_in_flight",
            "Provider calls under way",
            ["provider"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.rate_limited = Gauge(
            "smsxml_dispatch_rate_limited",
            "Rows waiting for a provider's rate limit (ours, or its Retry-After)",
            ["provider"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.queue_age = Gauge(
            "smsxml_queue_oldest_seconds",
            "How long the oldest due Queued row has waited",
            registry=self.registry,
            multiprocess_mode="mostrecent",  # read from the database at each scrape
        )
        self.dispatching = Gauge(
            "smsxml_dispatching",
            "1 in the process that runs dispatch and delivery tracking (one per node)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.logins = Counter(
            "smsxml_login_failures_total",
            "Logins that failed (wrong password or unknown account) or were refused "
            "(too many failures of the account or the client: smsxml.server.logins)",
            ["outcome"],
            registry=self.registry,
        )
        self._queue_source: Callable[[], dict[str, int]] | None = None
        self._age_source: Callable[[], float] | None = None

    def request(self, operation: str, seconds: float) -> None:
        self.requests.labels(operation).observe(seconds)

    def fault(self, operation: str, code: str) -> None:
        self.faults.labels(operation, code).inc()

    def watch_queue(
        self, source: Callable[[], dict[str, int]], age: Callable[[], float] | None = None
    ) -> None:
        """Read queue depth from ``source`` (and the oldest row's wait from ``age``) at each
        scrape."""
        self._queue_source = source
        self._age_source = age

    def render(self) -> bytes:
        if self._queue_source is not None:
            counts = self._queue_source()
            for state in ("Queued", "Pending", "Delivered", "Failed"):
                self.queue.labels(state).set(counts.get(state, 0))
        if self._age_source is not None:
            self.queue_age.set(self._age_source())
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            every_worker = CollectorRegistry()
            MultiProcessCollector(every_worker)  # type: ignore[no-untyped-call]  # unannotated
            return generate_latest(every_worker)
        return generate_latest(self.registry)
