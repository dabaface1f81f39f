"""The delivery queue: rows claimed with a lease, each by one worker at a time, and claimed
again once a dead worker's lease ran out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsxml.server.store import Store

from .test_store import open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store on SQLite (a file) or PostgreSQL (a database of our own)."""
    yield from open_store(request.param, tmp_path)


def test_concurrent_claims_never_share_a_row(store: Store) -> None:
    """Four workers claiming at once take every row exactly once."""
    account = store.accounts.add("acme", "pw", 10_000)
    recipients = [f"3069123{i:05d}" for i in range(400)]
    store.acceptance.accept(
        account, sender="Acme", text="hi", coding="GSM", flash=False, recipients=recipients, parts=1
    )
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
    store.acceptance.accept(
        account,
        sender="Acme",
        text="hi",
        coding="GSM",
        flash=False,
        recipients=["306912345678"],
        parts=1,
    )
    assert len(store.queue.claim("dead", 10, lease=0.0)) == 1
    assert len(store.queue.claim("alive", 10, lease=60)) == 1
    assert store.queue.claim("third", 10, lease=60) == []
