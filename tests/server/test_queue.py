"""The delivery queue: rows claimed with a lease, each by one worker at a time, and claimed
again once a dead worker's lease ran out."""

from __future__ import annotations

import threading

from smsxml.server.queue import Outcomes
from smsxml.server.store import Store

from .conftest import queue_send


def test_concurrent_claims_never_share_a_row(store: Store) -> None:
    """Four workers claiming at once take every row exactly once."""
    account = store.accounts.add("acme", "pw", 10_000)
    recipients = [f"3069123{i:05d}" for i in range(400)]
    queue_send(store, account, recipients)
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while rows := store.queue.claim(name, 25, lease=60):
            with lock:
                claimed.extend(row.id for row in rows)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == 400 and len(set(claimed)) == 400


def test_an_expired_lease_lets_another_worker_take_the_row(store: Store) -> None:
    """A row claimed by a worker that died is claimed again once its lease ran out."""
    account = store.accounts.add("acme", "pw", 10)
    queue_send(store, account, ["306912345678"])
    assert len(store.queue.claim("dead", 10, lease=0.0)) == 1
    assert len(store.queue.claim("alive", 10, lease=60)) == 1
    assert store.queue.claim("third", 10, lease=60) == []


def test_a_batch_of_outcomes_is_written_row_for_row(store: Store) -> None:
    """1,500 outcomes of every kind, recorded in one batch (one statement per kind), land
    each on its own row with its own values and history line; a row a report already
    settled is left as it is, its history too."""
    account = store.accounts.add("acme", "pw", 10_000)
    recipients = [f"3069{i:08d}" for i in range(1_500)]
    queue_send(store, account, recipients)
    rows = store.queue.claim("w", 2_000, lease=60)
    assert len(rows) == 1_500
    accepted, failed, retried = rows[:600], rows[600:1_000], rows[1_000:]
    settled = accepted[0]  # a callback was quicker than the record
    with store.transaction() as db:
        db.exec_driver_sql(f"UPDATE deliveries SET state = 'Delivered' WHERE id = {settled.id}")
    store.queue.record(
        Outcomes(
            accepted=[(r.id, "isms", f"P-{r.recipient}") for r in accepted],
            failed=[(r.id, f"refused {r.recipient}") for r in failed],
            retried=[
                (r.id, 30.0, ("isms", "net2sms"), f"busy {r.recipient}", True) for r in retried
            ],
        ),
        first_polls={"isms": 60.0},
    )
    with store.reader.connect() as db:
        found = {
            row[0]: row[1:]
            for row in db.exec_driver_sql(
                "SELECT recipient, state, provider, provider_id, reason, tried, attempts,"
                " lease_owner FROM deliveries"
            )
        }
        events = dict(
            db.exec_driver_sql(
                "SELECT d.recipient, count(*) FROM delivery_events e"
                " JOIN deliveries d ON d.id = e.delivery_id GROUP BY d.recipient"
            ).all()
        )
    assert found[settled.recipient][0] == "Delivered"
    for r in accepted[1:]:
        assert found[r.recipient] == ("Pending", "isms", f"P-{r.recipient}", None, "", 1, None)
    for r in failed:
        assert (
            found[r.recipient][0] == "Failed" and found[r.recipient][3] == f"refused {r.recipient}"
        )
    for r in retried:
        state, _, _, reason, tried, attempts, owner = found[r.recipient]
        assert (state, reason, tried, attempts, owner) == (
            "Queued",
            f"busy {r.recipient}",
            "isms,net2sms",
            1,
            None,
        )
    assert settled.recipient not in events  # no "accepted" line after its Delivered
    assert all(events.get(r) == 1 for r in recipients if r != settled.recipient)
