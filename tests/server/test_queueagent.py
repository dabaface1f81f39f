"""The dispatcher's queue calls in a process of their own (SQLite): the same answers as
the queue in this process, clear errors, a dead queue process replaced, and, through
`smsxml serve`, nothing lost or sent twice when it is killed mid-dispatch."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import zeep
from sqlalchemy import text

from smsxml.server.queue import Outcomes
from smsxml.server.queueagent import QueueAgent, QueueAgentError
from smsxml.server.store import Store

from ..conftest import free_port, wait_for
from .conftest import queue_send
from .test_dispatcher import _smsxml, _wait_http


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


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def test_killing_the_queue_process_mid_dispatch_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    """`smsxml serve` on SQLite dispatches through its queue process; kill -9 it while 40
    messages go out one call at a time: every message ends Delivered and the provider
    got each recipient exactly once (a lost answer is asked again, and an outcome is
    written only to rows still Queued)."""
    sandbox_port, bridge_port = free_port(), free_port()
    sandbox_toml = tmp_path / "sandbox.toml"
    sandbox_toml.write_text(
        "[schedule]\npending_after = 0.05\nfinal_after = 0.2\n\n[faults.isms]\nlatency = 0.05\n"
    )
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path}/bridge.sqlite3"\n'
        'routes = { "*" = ["isms"] }\n'
        "[dispatch]\nbatch = 2\nin_hand = 4\nlease = 3.0\nidle = 0.02\n"
        f'[providers.isms]\nkind = "isms"\nbase_url = "{sandbox_url}/isms"\npoll_interval = 0.2\n'
        "first_poll = 0.0\nrate_limit = 0\nconcurrency = 1\n"
        'options = { username = "demo", password = "demo" }\n'
    )
    log = tmp_path / "processes.log"
    sandbox = _smsxml(
        "sandbox", "--port", str(sandbox_port), "--config", str(sandbox_toml), log=log
    )
    serve_args = ["serve", "--port", str(bridge_port), "--no-sandbox", "--config", str(config)]
    bridge = _smsxml(*serve_args, log=log)
    try:
        _wait_http(f"{sandbox_url}/_sandbox/sent/isms", process=sandbox, log=log)
        _wait_http(f"http://127.0.0.1:{bridge_port}/healthz", process=bridge, log=log)

        def queue_process() -> int | None:
            for dispatcher in _children(bridge.pid):
                for child in _children(dispatcher):
                    if b"spawn_main" in _cmdline(child):  # not its resource tracker
                        return child
            return None

        agent = wait_for(queue_process, timeout=30)
        service = zeep.Client(f"http://127.0.0.1:{bridge_port}/soap?wsdl").service
        numbers = [f"3069123456{i:02d}" for i in range(1, 45) if i % 10][:36]
        sent = [
            (service.send("demo", "demo", "Shop", {"recipients": [n]}, f"Hi {n}", "GSM", False), n)
            for n in numbers
        ]
        taken = f"{sandbox_url}/_sandbox/sent/isms"
        wait_for(lambda: len(httpx.get(taken, timeout=5).json()) >= 4, timeout=30)
        os.kill(agent, signal.SIGKILL)

        def all_final() -> list[str] | None:
            states = [service.query("demo", "demo", mid, n) for mid, n in sent]
            return states if all(s in ("Delivered", "Failed") for s in states) else None

        assert wait_for(all_final, timeout=60, interval=0.3) == ["Delivered"] * len(numbers)
        assert httpx.get(taken, timeout=5).json() == dict.fromkeys(numbers, 1)
        assert queue_process() not in (None, agent)  # a new one took over
    finally:
        for process in (bridge, sandbox):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
