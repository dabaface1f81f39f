"""Delivery tracking: how pollers ask providers about Pending rows."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from smsxml.providers.base import StatusUpdate, Submitted
from smsxml.server.delivery import DeliveryTracker
from smsxml.server.queue import Outcomes
from smsxml.server.store import Store
from smsxml.status import DeliveryState

from .conftest import queue_send


def _pending(store: Store, count: int) -> None:
    """``count`` rows accepted by "isms", each under its own provider id."""
    account = store.accounts.add("acme", "pw", 100)
    queue_send(store, account, [f"30691234567{i}" for i in range(count)])
    rows = store.queue.claim("w", 100, lease=60)
    store.queue.record(Outcomes(accepted=[(row.id, "isms", f"P-{row.id}") for row in rows]))


def test_a_provider_asked_per_message_is_polled_from_several_threads(tmp_path: Path) -> None:
    """A poll of a provider that answers one message per call (iSMS) is split over threads:
    two shares meet at a barrier that a one-thread poll would never pass; every row's news
    is applied."""
    store = Store(f"sqlite:///{tmp_path / 'tracking.sqlite3'}")
    meeting = threading.Barrier(2, timeout=5)

    class PerMessage:
        name = "isms"
        status_call_per_message = True

        def statuses(self, asked: Sequence[Submitted]) -> list[StatusUpdate]:
            meeting.wait()
            return [
                StatusUpdate(a.provider_id, DeliveryState.DELIVERED, a.recipient) for a in asked
            ]

    try:
        _pending(store, 4)
        tracker = DeliveryTracker(store, {"isms": PerMessage()}, {"isms": 1.0}, secret="s")  # type: ignore[dict-item]
        assert tracker.poll_once("isms") == (4, 4)
        assert store.counts() == {"Delivered": 4}
    finally:
        store.close()
