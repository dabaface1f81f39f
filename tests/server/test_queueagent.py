"""The dispatcher's queue calls in a process of their own (SQLite): the same answers as
the queue in this process, clear errors, a dead queue process replaced, and, through
`smsxml serve`, nothing lost or sent twice when it is killed mid-dispatch."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from smsxml.server.queue import Outcomes
from smsxml.server.queueagent import QueueAgent, QueueAgentError
from smsxml.server.store import Store

from ..conftest import wait_for
from .conftest import queue_send
from .processes import SqliteNode, helpers


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'queue.sqlite3'}", synchronous="NORMAL")
    yield store
    store.close()


@pytest.fixture
def agent(sqlite_store: Store) -> Iterator[QueueAgent]:
    agent = QueueAgent(str(sqlite_store.engine.url), synchronous="NORMAL").start()
    yield agent
    agent.close()


def _states(store: Store) -> dict[str, tuple[str, str | None, str | None]]:
    with store.engine.connect() as db:
        rows = db.execute(text("SELECT recipient, state, provider_id, lease_owner FROM deliveries"))
        return {recipient: (state, pid, owner) for recipient, state, pid, owner in rows}


def test_the_queue_process_claims_renews_and_records_as_the_queue_does(
    sqlite_store: Store, agent: QueueAgent
) -> None:
    account = sqlite_store.accounts.add("acme", "pw", 100)
    queue_send(sqlite_store, account, ["306912345678", "306912345679", "306912345671"])
    claimed = agent.claim("worker-1", 2, lease=60)
    assert [(row.recipient, row.text, row.sender) for row in claimed] == [
        ("306912345678", "hi", "Acme"),
        ("306912345679", "hi", "Acme"),
    ]
    # the claim is in the database, for everyone to see: the third row is still free
    assert [row.recipient for row in sqlite_store.queue.claim("other", 10, 60)] == ["306912345671"]
    assert agent.heartbeat("worker-1", lease=60) == 1
    agent.renew("worker-1", [row.id for row in claimed], lease=60)
    first, second = claimed
    agent.record(Outcomes(accepted=[(first.id, "isms", "P-1")], failed=[(second.id, "no")]))
    states = _states(sqlite_store)
    assert states["306912345678"] == ("Pending", "P-1", None)
    assert states["306912345679"][0] == "Failed"
    agent.leave("worker-1")


def test_a_queue_process_that_cannot_open_the_database_fails_each_call_clearly(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "a-file"  # where the database's folder should be
    folder.write_text("")
    agent = QueueAgent(f"sqlite:///{folder / 'queue.sqlite3'}").start()
    try:
        for _ in range(2):  # each call starts a child again, and says why it failed
            with pytest.raises(QueueAgentError, match="did not answer claim"):
                agent.claim("worker-1", 10, lease=60)
    finally:
        agent.close()


def test_a_queue_process_that_died_is_started_again(sqlite_store: Store, agent: QueueAgent) -> None:
    account = sqlite_store.accounts.add("acme", "pw", 100)
    queue_send(sqlite_store, account, ["306912345678"])
    first = agent.pid
    assert first is not None and first != os.getpid()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not _alive(first), timeout=10)
    assert [row.recipient for row in agent.claim("worker-1", 10, 60)] == ["306912345678"]
    assert agent.pid not in (None, first)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_killing_the_queue_process_mid_dispatch_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    """`smsxml serve` on SQLite dispatches through its queue process; kill -9 it while 40
    messages go out one call at a time: every message ends Delivered and the provider
    got each recipient exactly once (a lost answer is asked again, and an outcome is
    written only to rows still Queued)."""
    node = SqliteNode(
        tmp_path,
        sandbox="[schedule]\npending_after = 0.05\nfinal_after = 0.2\n\n"
        "[faults.isms]\nlatency = 0.05\n",
        dispatch="batch = 2\nin_hand = 4\nlease = 3.0\nidle = 0.02\n",
        isms="first_poll = 0.0\nrate_limit = 0\nconcurrency = 1\n",
    )
    try:

        def queue_process() -> int | None:
            for dispatcher in helpers(node.bridge.pid, b"smsxml.server.worker"):
                for child in helpers(dispatcher, b"spawn_main"):  # not its resource tracker
                    return child
            return None

        agent = wait_for(queue_process, timeout=30)
        numbers = [f"3069123456{i:02d}" for i in range(1, 45) if i % 10][:36]
        sent = node.send_each(numbers)
        wait_for(lambda: len(node.taken()) >= 4, timeout=30)
        os.kill(agent, signal.SIGKILL)
        assert node.final_states(sent) == ["Delivered"] * len(numbers)
        assert node.taken() == dict.fromkeys(numbers, 1)
        assert queue_process() not in (None, agent)  # a new one took over
    finally:
        node.stop()
