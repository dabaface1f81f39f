"""The bridge's Prometheus metrics: one registry per bridge, the queue read at each scrape."""

from __future__ import annotations

import pytest

from smsxml.server.metrics import Metrics


@pytest.fixture(autouse=True)
def one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not gunicorn's multiprocess mode: the figures of this registry alone."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def _sample(metrics: Metrics, line_start: str) -> float | None:
    for line in metrics.render().decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[1])
    return None


def test_two_bridges_in_one_process_count_apart() -> None:
    """A fault counted by one bridge is not seen in the other's /metrics."""
    first, second = Metrics(), Metrics()
    first.fault("send", "InvalidSender")
    first.fault("send", "InvalidSender")
    counted = 'smsxml_soap_faults_total{code="InvalidSender",operation="send"}'
    assert _sample(first, counted) == 2.0
    assert _sample(second, counted) is None


def test_queue_depth_and_age_are_read_at_each_scrape() -> None:
    """Each scrape asks the store afresh; a state with no rows reads 0, not its last value."""
    counts = {"Queued": 3, "Pending": 2}
    metrics = Metrics()
    metrics.watch_queue(lambda: dict(counts), lambda: 12.5)
    assert _sample(metrics, 'smsxml_deliveries{state="Queued"}') == 3.0
    assert _sample(metrics, 'smsxml_deliveries{state="Delivered"}') == 0.0
    assert _sample(metrics, "smsxml_queue_oldest_seconds") == 12.5
    counts.clear()
    counts["Delivered"] = 5
    assert _sample(metrics, 'smsxml_deliveries{state="Queued"}') == 0.0
    assert _sample(metrics, 'smsxml_deliveries{state="Delivered"}') == 5.0


def test_requests_are_timed_per_operation() -> None:
    """A request's duration lands in its operation's histogram."""
    metrics = Metrics()
    metrics.request("query", 0.003)
    assert _sample(metrics, 'smsxml_soap_request_seconds_count{operation="query"}') == 1.0
    assert (
        _sample(metrics, 'smsxml_soap_request_seconds_bucket{le="0.0025",operation="query"}') == 0.0
    )
    assert (
        _sample(metrics, 'smsxml_soap_request_seconds_bucket{le="0.005",operation="query"}') == 1.0
    )
