"""Turns of cluster-wide chores: one holder at a time, taken over when the holder dies."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsxml.server.cluster import Turn
from smsxml.server.store import Store

from ..conftest import wait_for
from .conftest import fresh_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database file, or a fresh PostgreSQL database, migrated."""
    url = (
        f"sqlite:///{tmp_path / 'cluster.sqlite3'}"
        if request.param == "sqlite"
        else fresh_postgres()
    )
    Store(url).close()
    yield url


def test_one_process_at_a_time_holds_a_chore(url: str) -> None:
    """Of two stores on one database, one holds the turn until it lets go; other chores
    are free meanwhile."""
    first, second = Store(url, migrate=False), Store(url, migrate=False)
    try:
        mine, theirs = Turn(first, "poll:isms"), Turn(second, "poll:isms")
        assert mine.mine() and mine.mine()
        assert not theirs.mine()
        other_chore = Turn(second, "client-reports")
        assert other_chore.mine()
        other_chore.release()
        mine.release()
        assert theirs.mine() and not mine.mine()
        theirs.release()
    finally:
        first.close()
        second.close()


def test_the_turn_of_a_killed_process_is_taken_over(url: str, tmp_path: Path) -> None:
    """kill -9 of the holder: the database (or the kernel, for the file lock) frees the
    turn, and the next asker takes it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from smsxml.server.store import Store;"
            " from smsxml.server.cluster import Turn;"
            " turn = Turn(Store(sys.argv[1], migrate=False), 'poll:isms');"
            " print(turn.mine(), flush=True); time.sleep(60)",
            url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    store = Store(url, migrate=False)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        turn = Turn(store, "poll:isms")
        assert not turn.mine()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert wait_for(turn.mine, timeout=10)
        turn.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
        store.close()


def test_asking_for_a_taken_turn_leaves_the_pool_transactional() -> None:
    """A refused ask gives its connection back as it came: a pooled connection left in
    autocommit would make the claims' FOR UPDATE locks vanish (rows sent twice)."""
    url = fresh_postgres()
    holder, asker = Store(url), Store(url, migrate=False)
    try:
        held = Turn(holder, "poll:isms")
        assert held.mine()
        assert not Turn(asker, "poll:isms").mine()
        pooled = [asker.engine.raw_connection() for _ in range(asker.engine.pool.checkedin())]
        assert pooled and not any(c.driver_connection.autocommit for c in pooled)
        for connection in pooled:
            connection.close()
        held.release()
    finally:
        holder.close()
        asker.close()
