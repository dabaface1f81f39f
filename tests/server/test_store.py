"""The store on SQLite and on PostgreSQL: the same code, the same guarantees."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from smsxml.providers.base import StatusUpdate
from smsxml.server.accounts import InsufficientCredits
from smsxml.server.queue import Outcomes
from smsxml.server.store import Store
from smsxml.status import DeliveryState

#: a database of our own on the machine's PostgreSQL (created when missing)
POSTGRES_URL = os.environ.get(
    "SMSXML_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/smsxml_test"
)


def _postgres() -> str:
    server, database = POSTGRES_URL.rsplit("/", 1)
    try:
        admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as db:
            db.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            db.execute(text(f'CREATE DATABASE "{database}"'))
        admin.dispose()
    except OperationalError as error:
        pytest.fail(
            f"PostgreSQL is not reachable at {server} ({error.orig}); .ci/run starts it, "
            "or set SMSXML_TEST_POSTGRES_URL"
        )
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store on SQLite (a file) or PostgreSQL (a database of our own)."""
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}" if request.param == "sqlite" else _postgres()
    opened = Store(url)
    yield opened
    opened.close()


def test_accept_charges_and_queues_atomically(store: Store) -> None:
    """A send is charged and queued in one go; a send it cannot pay leaves no trace."""
    account = store.accounts.add("acme", "pw", 5)
    message_id = store.acceptance.accept(
        account,
        sender="Acme",
        text="hi",
        coding="GSM",
        flash=False,
        recipients=["306912345678", "306912345679"],
        parts=2,
    )
    assert store.accounts.get("acme").credits == 1
    assert store.status(account.id, message_id, "306912345679") == "Queued"
    with pytest.raises(InsufficientCredits):
        store.acceptance.accept(
            account,
            sender="Acme",
            text="hi",
            coding="GSM",
            flash=False,
            recipients=["306912345678"],
            parts=2,
        )
    assert store.counts() == {"Queued": 2}
    assert store.accounts.ledger("acme") == [(5, 5, "credit", None), (-4, 1, "send", message_id)]


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


def test_a_round_of_news_is_applied_in_order_in_one_go(store: Store) -> None:
    """One poll round's news: several steps of one row in order (both in the history), news
    for one recipient of a multi-recipient id leaves the other alone, unknown ids change
    nothing, and late news is ignored."""
    account = store.accounts.add("acme", "pw", 10)
    numbers = ["306912345671", "306912345672", "306912345673"]
    message_id = store.acceptance.accept(
        account, sender="Acme", text="hi", coding="GSM", flash=False, recipients=numbers, parts=1
    )
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
    message_id = store.acceptance.accept(
        account,
        sender="Acme",
        text="hi",
        coding="GSM",
        flash=False,
        recipients=["306912345678"],
        parts=1,
    )
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


@pytest.mark.usefixtures("moved_clock")
def test_final_counts_are_reused_within_their_age_and_the_backlog_never(store: Store) -> None:
    """counts() recounts Delivered/Failed only once they are older than final_max_age (they
    are the whole table); Queued and Pending are counted afresh on every call."""
    account = store.accounts.add("acme", "pw", 10)
    store.acceptance.accept(
        account,
        sender="Acme",
        text="hi",
        coding="GSM",
        flash=False,
        recipients=["306912345678", "306912345679"],
        parts=1,
    )
    assert store.counts(final_max_age=3600) == {"Queued": 2}
    first, second = store.queue.claim("w", 10, lease=60)
    store.queue.record(Outcomes(accepted=[(first.id, "isms", "P-1")], failed=[(second.id, "no")]))
    assert store.counts(final_max_age=3600) == {"Pending": 1}  # Failed: counted an hour ago
    assert store.counts(final_max_age=0) == {"Pending": 1, "Failed": 1}
    assert store.counts(final_max_age=3600) == {"Pending": 1, "Failed": 1}


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


def test_secrets_are_made_once(store: Store) -> None:
    """A secret asked for twice is the same (callback URLs survive restarts)."""
    assert store.secret("callback-token") == store.secret("callback-token")
    assert len(store.secret("callback-token")) == 64


def test_a_large_send_is_one_row_until_expanded(store: Store) -> None:
    """10,000 recipients are stored at once in the message; the dispatcher's claim turns
    them into rows exactly once, and query answers Queued before and after."""
    account = store.accounts.add("acme", "pw", 20_000)
    recipients = [f"3069{i:08d}" for i in range(10_000)]
    message_id = store.acceptance.accept(
        account, sender="Acme", text="hi", coding="GSM", flash=False, recipients=recipients, parts=1
    )
    assert store.status(account.id, message_id, recipients[-1]) == "Queued"
    assert store.status(account.id, message_id, "306999999999") is None
    assert store.counts() == {"Queued": 10_000}
    assert store.acceptance.expand() == 10_000 and store.acceptance.expand() == 0
    assert store.status(account.id, message_id, recipients[-1]) == "Queued"
    assert store.counts() == {"Queued": 10_000}
    claimed = store.queue.claim("w", 20_000, lease=60)
    assert sorted(row.recipient for row in claimed) == recipients


def test_only_rows_whose_client_waits_are_reported(store: Store) -> None:
    """Final rows of a send with dlr_url wait for their report (whichever way they ended);
    rows of sends without one never enter the report loop's query."""
    account = store.accounts.add("acme", "pw", 10)

    def accept(recipient: str, dlr_url: str | None) -> str:
        return store.acceptance.accept(
            account,
            sender="Acme",
            text="hi",
            coding="GSM",
            flash=False,
            recipients=[recipient],
            parts=1,
            dlr_url=dlr_url,
        )

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


def test_the_migration_marks_rows_nobody_waits_for(tmp_path: Path) -> None:
    """Rows written before revision 0002 (all unnotified) are settled by it."""
    from smsxml.server.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = create_engine(url)
    upgrade(engine, "0001")
    with engine.begin() as db:
        db.execute(text("INSERT INTO accounts VALUES (1, 'acme', 'x', 0, '2026-01-01')"))
        for message_id, dlr_url in (("M1", None), ("M2", "https://client.example.org/dlr")):
            db.execute(
                text(
                    "INSERT INTO messages (id, account_id, sender, text, coding, flash, parts,"
                    " recipients, dlr_url, created_at) VALUES"
                    " (:id, 1, 'Acme', 'hi', 'GSM', 0, 1, 1, :dlr, '2026-01-01')"
                ),
                {"id": message_id, "dlr": dlr_url},
            )
            db.execute(
                text(
                    "INSERT INTO deliveries (message_id, recipient, state, attempts,"
                    " next_attempt_at, tried, updated_at, notified) VALUES"
                    " (:id, '306912345678', 'Delivered', 1, '2026-01-01', '', '2026-01-01', 0)"
                ),
                {"id": message_id},
            )
    upgrade(engine)
    with engine.connect() as db:
        notified = dict(db.execute(text("SELECT message_id, notified FROM deliveries")).all())
    engine.dispose()
    assert notified == {"M1": 1, "M2": 0}


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
    store.acceptance.accept(
        account, sender="Acme", text="hi", coding="GSM", flash=False,
        recipients=["306912345678"], parts=1,
    )  # fmt: skip
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


def test_nodes_starting_together_on_a_fresh_database_all_come_up() -> None:
    """Three processes open one fresh PostgreSQL database at once: each finds it migrated
    (the others waited on the migration lock), none crashes."""
    import subprocess
    import sys

    url = _postgres()
    start = (
        "import sys; from smsxml.server.store import Store; Store(sys.argv[1]).close(); print('up')"
    )
    nodes = [
        subprocess.Popen(
            [sys.executable, "-c", start, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [node.communicate(timeout=60) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0, 0], [err for _, err in results]
    assert [out.strip() for out, _ in results] == ["up"] * 3
    engine = create_engine(url)
    with engine.connect() as db:
        assert db.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def _as_time(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
