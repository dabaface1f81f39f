"""Delivery reports in the store: providers' news applied in order (final states never
change), pollers' questions spaced out, reports owed to clients; every question an index
search."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from smsxml.providers.base import StatusUpdate
from smsxml.server.queue import Outcomes
from smsxml.server.store import Store
from smsxml.status import DeliveryState

from .conftest import queue_send


def test_a_round_of_news_is_applied_in_order_in_one_go(store: Store) -> None:
    """One poll round's news: several steps of one row in order (both in the history), news
    for one recipient of a multi-recipient id leaves the other alone, unknown ids change
    nothing, and late news is ignored."""
    account = store.accounts.add("acme", "pw", 10)
    numbers = ["306912345671", "306912345672", "306912345673"]
    message_id = queue_send(store, account, numbers)
    rows = {row.recipient: row.id for row in store.queue.claim("w", 10, lease=60)}
    store.queue.record(
        Outcomes(
            accepted=[
                (rows[numbers[0]], "isms", "P-1"),
                (rows[numbers[1]], "isms", "P-2"),
                (rows[numbers[2]], "isms", "P-2"),
            ]
        )
    )
    news = [
        StatusUpdate("P-1", DeliveryState.PENDING, detail="on its way"),
        StatusUpdate("P-1", DeliveryState.DELIVERED, detail="delivered"),
        StatusUpdate("P-1", DeliveryState.PENDING, detail="late"),
        StatusUpdate("P-2", DeliveryState.FAILED, recipient=numbers[2]),
        StatusUpdate("P-9", DeliveryState.DELIVERED),
    ]
    assert store.reports.apply_updates("isms", news) == 2
    states = [store.status(account.id, message_id, n) for n in numbers]
    assert states == ["Delivered", "Pending", "Failed"]
    assert store.history(message_id, numbers[0])[-1] == ("Delivered", "delivered")
    assert store.history(message_id, numbers[2])[-1] == ("Failed", "reported by isms")


def test_final_states_never_change(store: Store) -> None:
    """Delivered stays Delivered whatever a late report says; the history keeps the order."""
    account = store.accounts.add("acme", "pw", 10)
    message_id = queue_send(store, account, ["306912345678"])
    (row,) = store.queue.claim("w", 10, lease=60)
    store.queue.record(Outcomes(accepted=[(row.id, "isms", "P-1")]))
    assert store.reports.apply_updates("isms", [StatusUpdate("P-1", DeliveryState.DELIVERED)]) == 1
    assert store.reports.apply_updates("isms", [StatusUpdate("P-1", DeliveryState.FAILED)]) == 0
    assert store.reports.apply_updates("isms", [StatusUpdate("P-1", DeliveryState.PENDING)]) == 0
    assert store.status(account.id, message_id, "306912345678") == "Delivered"
    assert [state for state, _ in store.history(message_id, "306912345678")] == [
        "Pending",
        "Delivered",
    ]


def test_only_rows_whose_client_waits_are_reported(store: Store) -> None:
    """Final rows of a send with dlr_url wait for their report (whichever way they ended);
    rows of sends without one never enter the report loop's query."""
    account = store.accounts.add("acme", "pw", 10)

    def accept(recipient: str, dlr_url: str | None) -> str:
        return queue_send(store, account, [recipient], dlr_url=dlr_url)

    told = accept("306912345671", "https://client.example.org/dlr")
    untold = accept("306912345672", None)
    failed = accept("306912345673", "https://client.example.org/dlr")
    rows = {row.message_id: row for row in store.queue.claim("w", 10, lease=60)}
    store.queue.record(
        Outcomes(accepted=[(rows[told].id, "isms", "P-1"), (rows[untold].id, "isms", "P-2")])
    )
    assert store.reports.unnotified(10) == []  # nothing final yet
    store.reports.apply_updates("isms", [StatusUpdate("P-1", DeliveryState.DELIVERED)])
    store.reports.apply_updates("isms", [StatusUpdate("P-2", DeliveryState.DELIVERED)])
    store.queue.record(Outcomes(failed=[(rows[failed].id, "refused")]))
    waiting = sorted(store.reports.unnotified(10), key=lambda row: row[2] == failed)
    assert [(row[2], row[4]) for row in waiting] == [(told, "Delivered"), (failed, "Failed")]
    store.reports.mark_notified([row[0] for row in waiting])
    assert store.reports.unnotified(10) == []


@pytest.mark.parametrize(
    ("ask", "index"),
    [
        (lambda store: store.reports.unnotified(10), "ix_deliveries_unnotified"),
        (lambda store: store.reports.due_for_polling("isms", 10), "ix_deliveries_polling"),
    ],
    ids=["client-reports", "polling"],
)
def test_the_tracking_loops_queries_use_their_partial_indexes(
    tmp_path: Path, ask: Any, index: str
) -> None:
    """The report loop (every 0.2 s) and each poller ask questions that, on a table of
    millions of delivered rows, must be index searches, not scans."""
    from sqlalchemy import event

    store = Store(f"sqlite:///{tmp_path / 'plan.sqlite3'}")
    seen: list[tuple[str, object]] = []
    event.listen(
        store.reader,
        "before_cursor_execute",
        lambda conn, cursor, statement, params, *_: seen.append((statement, params)),
    )
    try:
        ask(store)
        ((statement, params),) = [(s, p) for s, p in seen if "FROM deliveries" in s]
        with store.reader.connect() as db:
            plan = db.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
    finally:
        store.close()
    assert any(f"USING INDEX {index}" in row[-1] for row in plan), plan


def test_a_row_that_stays_pending_is_polled_less_and_less_often(store: Store) -> None:
    """Accepted rows are due for a poll at once; after a poll that brings no news a row
    waits at least the poll interval, and half its time in Pending once that is longer
    (at most ten minutes)."""
    from smsxml.server.reports import Polled

    account = store.accounts.add("acme", "pw", 10)
    queue_send(store, account, ["306912345678"])
    (row,) = store.queue.claim("w", 10, lease=60)
    store.queue.record(Outcomes(accepted=[(row.id, "isms", "P-1")]))
    (due,) = store.reports.due_for_polling("isms", 10)
    assert (due.provider_id, due.recipient) == ("P-1", "306912345678")
    store.reports.polled([due], interval=30)
    assert store.reports.due_for_polling("isms", 10) == []
    long_pending = Polled(due.id, due.provider_id, due.recipient, due.since - timedelta(minutes=10))
    store.reports.polled([long_pending], interval=30)
    with store.reader.connect() as db:
        next_poll = db.execute(text("SELECT next_attempt_at FROM deliveries")).scalar()
    wait = (_as_time(next_poll) - due.since).total_seconds()
    assert 299 <= wait <= 301  # half of the ten minutes it has waited


def _as_time(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
