"""The writer process: the sends of several worker processes committed by one process,
and every way it can be missing without a send lost or stored twice."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from smsxml.errors import InsufficientCredit
from smsxml.server.acceptance import WRITER_MAX_RECIPIENTS, NewMessage
from smsxml.server.accounts import AccountInfo
from smsxml.server.store import Store
from smsxml.server.writer import WriterProcess

from ..conftest import wait_for


@pytest.fixture(params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A SQLite file, or a PostgreSQL database, with an account (alice, 100 credits); the
    writer reads its URL from the environment, as under gunicorn."""
    from .conftest import fresh_postgres

    url = (
        f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
        if request.param == "sqlite"
        else fresh_postgres()
    )
    monkeypatch.setenv("SMSXML_DATABASE_URL", url)
    monkeypatch.setenv("SMSXML_SQLITE_SYNCHRONOUS", "NORMAL")
    monkeypatch.delenv("SMSXML_CONFIG", raising=False)
    with closing_store(url) as store:
        store.accounts.add("alice", "pw", 100)
    return url


@pytest.fixture
def writer(tmp_path: Path, database: str) -> Iterator[WriterProcess]:
    process = WriterProcess(str(tmp_path / "writer.sock")).start()
    yield process
    process.stop()


def closing_store(url: str, writer_socket: str | None = None) -> closing[Store]:
    return closing(Store(url, synchronous="NORMAL", writer_socket=writer_socket))


def worker_store(url: str, socket_path: str, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A worker's store that fails the test if it commits a send itself."""
    store = Store(url, synchronous="NORMAL", writer_socket=socket_path)

    def commits_itself(message: NewMessage) -> str:
        raise AssertionError("the worker committed the send itself")

    monkeypatch.setattr(store.acceptance._accepts, "submit", commits_itself)
    return store


def send(store: Store, account: AccountInfo, recipients: list[str], parts: int = 1) -> str:
    return store.acceptance.accept(
        account,
        sender="Shop",
        text="hello",
        coding="GSM",
        flash=False,
        recipients=recipients,
        parts=parts,
    )


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            return [tuple(row) for row in db.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def test_the_writer_commits_the_sends_of_every_worker(
    database: str, writer: WriterProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers sending at once: every send is committed by the writer, charged once."""
    workers = [worker_store(database, writer.path, monkeypatch) for _ in range(2)]
    try:
        alice = workers[0].accounts.get("alice")
        assert alice is not None
        jobs = [(workers[i % 2], [f"3069440000{i:02d}", f"3069450000{i:02d}"]) for i in range(24)]
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda job: send(job[0], alice, job[1], parts=2), jobs))
    finally:
        for store in workers:
            store.close()
    assert len(set(ids)) == 24
    stored = dict(rows(database, "SELECT id, pending FROM messages"))
    assert {i: stored[i] for i in ids} == {
        i: "\n".join(job[1]) for i, job in zip(ids, jobs, strict=True)
    }
    # 24 sends × 2 recipients × 2 parts, each with its ledger line
    assert rows(database, "SELECT credits FROM accounts WHERE name = 'alice'") == [(4,)]
    assert rows(database, "SELECT count(*), sum(delta) FROM ledger WHERE reason = 'send'") == [
        (24, -96)
    ]


def test_the_writer_refuses_a_send_the_account_cannot_pay(
    database: str, writer: WriterProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send beyond the credits is refused and stores nothing; one taking the last is stored."""
    store = worker_store(database, writer.path, monkeypatch)
    try:
        alice = store.accounts.get("alice")
        assert alice is not None
        with pytest.raises(InsufficientCredit):
            send(store, alice, ["306944000001"], parts=101)
        send(store, alice, ["306944000001"], parts=100)  # exactly what is left
    finally:
        store.close()
    assert rows(database, "SELECT count(*) FROM messages") == [(1,)]
    assert rows(database, "SELECT credits FROM accounts") == [(0,)]


def test_a_worker_commits_itself_while_the_writer_is_down_until_it_is_back(
    database: str, writer: WriterProcess
) -> None:
    """With the writer killed, a worker commits its sends itself until the writer is back."""
    with closing_store(database, writer.path) as store:
        alice = store.accounts.get("alice")
        assert alice is not None
        first = send(store, alice, ["306944000001"])
        dead = writer.process
        assert dead is not None
        dead.kill()  # mid-flight for the worker's open connection
        dead.wait()
        second = send(store, alice, ["306944000002"])  # committed by the worker itself
        assert rows(database, "SELECT id FROM messages ORDER BY created_at") == [
            (first,),
            (second,),
        ]
        # the master's supervisor starts the writer again; the worker goes back to it
        wait_for(lambda: writer.process is not dead and os.path.exists(writer.path), timeout=30)
        committed_here = []
        original = store.acceptance._accepts.submit
        store.acceptance._accepts.submit = lambda m: committed_here.append(m) or original(m)  # type: ignore[method-assign]

        def through_writer() -> bool:
            before = len(committed_here)
            send(store, alice, ["306944000003"])
            return len(committed_here) == before

        wait_for(through_writer, timeout=10, interval=0.3)  # once the retry pause is over
    assert rows(database, "SELECT credits FROM accounts")[0][0] == 100 - len(
        rows(database, "SELECT id FROM messages")
    )


def test_a_send_stored_by_the_writer_whose_answer_was_lost_is_stored_once(database: str) -> None:
    """The worker commits a send the writer may have stored already (no answer): its id,
    the row's key, makes the second commit a no-op that answers the same id."""
    with closing_store(database) as store:
        alice = store.accounts.get("alice")
        assert alice is not None

        def message(message_id: str) -> NewMessage:
            return NewMessage(
                alice, message_id, "Shop", "hi", "GSM", False, "306944000001", 1, 1, None, None
            )

        assert store.acceptance.commit(message("MSGAAAAAAAA1")) == "MSGAAAAAAAA1"  # by "the writer"
        assert store.acceptance.commit(message("MSGAAAAAAAA1")) == "MSGAAAAAAAA1"  # by the worker
        outcomes = store.acceptance.commit_many([message("MSGAAAAAAAA1"), message("MSGAAAAAAAA2")])
    assert outcomes == ["MSGAAAAAAAA1", "MSGAAAAAAAA2"]
    assert rows(database, "SELECT id FROM messages ORDER BY id") == [
        ("MSGAAAAAAAA1",),
        ("MSGAAAAAAAA2",),
    ]
    assert rows(database, "SELECT credits FROM accounts") == [(98,)]  # charged once each


def test_a_large_send_is_committed_by_its_own_worker(
    database: str, writer: WriterProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past WRITER_MAX_RECIPIENTS the list is not copied to the writer."""
    with closing_store(database, writer.path) as store:
        assert store.acceptance._writer is not None

        def refuses(message: NewMessage) -> str:
            raise AssertionError("a large send went to the writer")

        monkeypatch.setattr(store.acceptance._writer, "commit", refuses)
        alice = store.accounts.get("alice")
        assert alice is not None
        recipients = [f"3069440{i:05d}" for i in range(WRITER_MAX_RECIPIENTS + 1)]
        store.accounts.credit("alice", len(recipients))
        message_id = send(store, alice, recipients)
    assert rows(database, "SELECT recipients FROM messages") == [(len(recipients),)]
    assert message_id


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_writer_exits_when_its_master_is_gone(tmp_path: Path, database: str) -> None:
    """A master killed outright (no on_exit) leaves no writer behind."""
    path = tmp_path / "orphan.sock"
    master = subprocess.Popen(
        ["sh", "-c", f'"{sys.executable}" -m smsxml.server.writer "{path}" $$ & echo $!; sleep 30'],
        stdout=subprocess.PIPE,
    )
    assert master.stdout is not None
    writer_pid = int(master.stdout.readline())
    try:
        wait_for(path.exists, timeout=30)
        assert _running(writer_pid)
    finally:
        master.kill()
        master.wait()
        master.stdout.close()
    wait_for(lambda: not _running(writer_pid), timeout=10)
