"""The store on SQLite and on PostgreSQL: the same code, the same guarantees. The tests of
its parts are beside it: test_acceptance, test_queue, test_reports, test_migrate."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from smsxml.server.queue import Outcomes
from smsxml.server.store import Store

from ..conftest import wait_for
from .conftest import POSTGRES_URL, fresh_postgres, queue_send


@pytest.mark.usefixtures("moved_clock")
def test_final_counts_are_reused_within_their_age_and_the_backlog_never(store: Store) -> None:
    """counts() recounts Delivered/Failed only once they are older than final_max_age (they
    are the whole table); Queued and Pending are counted afresh on every call."""
    account = store.accounts.add("acme", "pw", 10)
    queue_send(store, account, ["306912345678", "306912345679"])
    assert store.counts(final_max_age=3600) == {"Queued": 2}
    first, second = store.queue.claim("w", 10, lease=60)
    store.queue.record(Outcomes(accepted=[(first.id, "isms", "P-1")], failed=[(second.id, "no")]))
    assert store.counts(final_max_age=3600) == {"Pending": 1}  # Failed: counted an hour ago
    assert store.counts(final_max_age=0) == {"Pending": 1, "Failed": 1}
    assert store.counts(final_max_age=3600) == {"Pending": 1, "Failed": 1}


def test_secrets_are_made_once(store: Store) -> None:
    """A secret asked for twice is the same (callback URLs survive restarts)."""
    assert store.secret("callback-token") == store.secret("callback-token")
    assert len(store.secret("callback-token")) == 64


def test_a_secret_made_by_two_nodes_at_once_is_one() -> None:
    """Two nodes starting together on a fresh PostgreSQL database: the second one's
    insert comes just after the first one's (forced here, between its read and its
    insert); both get the first one's secret, and neither fails to start."""
    first, second = Store(fresh_postgres()), Store(POSTGRES_URL)
    got: list[str] = []

    def other_node_first(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO secrets") and not got:
            got.append(second.secret("callback-token"))

    event.listen(first.engine, "before_cursor_execute", other_node_first)
    try:
        assert first.secret("callback-token") == got[0]
        assert second.secret("callback-token") == got[0] and len(got[0]) == 64
    finally:
        first.close()
        second.close()


def test_a_recipients_state_is_told_only_to_the_account_that_sent(store: Store) -> None:
    """status() answers the sending account, for a number of the send, before and after the
    list becomes rows; another account, or another number, gets None."""
    acme = store.accounts.add("acme", "pw", 10)
    rival = store.accounts.add("rival", "pw", 10)
    message_id = queue_send(store, acme, ["306912345678"])
    for expanded in (False, True):
        if expanded:
            assert store.acceptance.expand() == 1
        assert store.status(acme.id, message_id, "306912345678") == "Queued"
        assert store.status(rival.id, message_id, "306912345678") is None
        assert store.status(acme.id, message_id, "306912345679") is None


def test_a_writer_waiting_for_the_turn_gets_it_before_a_busy_writer_goes_twice(
    tmp_path: Path,
) -> None:
    """On SQLite, writers of several processes take turns on a file lock (two stores here,
    each with its own open files, as two processes have). One writes back to back; the
    other asks once and has the turn before the busy one's second turn after it asked
    (a plain lock goes to whoever asks first when freed: mostly its last holder)."""
    url = f"sqlite:///{tmp_path / 'turns.sqlite3'}"
    busy, other = Store(url), Store(url)
    turns, got = [0], list[int]()

    def write_back_to_back() -> None:
        while turns[0] < 400 and not got:
            with busy.writer_turn():
                turns[0] += 1
                time.sleep(0.001)  # the turn's work

    writer = threading.Thread(target=write_back_to_back)
    writer.start()
    try:
        wait_for(lambda: turns[0] >= 3)
        before = turns[0]
        with other.writer_turn():
            got.append(turns[0])
        assert (
            got[0] - before <= 3
        )  # 2 by the protocol, 1 for a slow scheduler; 11–22 without the line
    finally:
        writer.join()
        busy.close()
        other.close()
