"""The bridge's store: one SQL database (SQLite or PostgreSQL) and how to write to it.

Every write that a client is told about is committed before the answer leaves. The
store holds the engines, the raw connections of the hot paths and the writers' turn
(SQLite has one writer at a time: ``BEGIN IMMEDIATE`` behind a file lock), so several
workers and processes share one database; each concern is a part of it that uses them:
``accounts``, ``acceptance`` (sends), ``queue`` (delivery rows) and ``reports``.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

from sqlalchemy import Connection, Engine, create_engine, event, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from smsxml.server.acceptance import Acceptance
from smsxml.server.accounts import Accounts
from smsxml.server.models import Delivery, DeliveryEvent, Message, Secret
from smsxml.server.queue import DeliveryQueue
from smsxml.server.reports import DeliveryReports
from smsxml.server.writerclient import WriterClient
from smsxml.status import DeliveryState

__all__ = ["Store", "sqlite_file"]

QUEUED = DeliveryState.QUEUED.value
PENDING = DeliveryState.PENDING.value


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite database URL; None for other databases and in-memory SQLite
    (no file to lock beside, no other process to share it with)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def _sqlite_setup(engine: Engine, synchronous: str, *, writer: bool) -> None:
    """WAL, a busy timeout, and (on the writers' engine) BEGIN IMMEDIATE: SQLite then has
    one writer at a time without "database is locked" upgrades mid-transaction, while
    readers never wait for writers."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def _sql_time(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat(" ", "microseconds")
    raise TypeError(f"{type(value).__name__} is not a batch value")


def _status_sql(marker: str) -> str:
    """The statement of the SOAP ``query`` path, written once for the driver's paramstyle:
    the message's recipient list (set until the dispatcher expands it into rows) and the
    recipient's row, in one statement (a round trip each on PostgreSQL). One statement
    reads one snapshot, and expansion writes the rows and clears the list in one
    transaction: a cleared list means the row is there."""
    return (
        "SELECT m.pending, d.state FROM messages m"
        f" LEFT JOIN deliveries d ON d.message_id = m.id AND d.recipient = {marker}"
        f" WHERE m.id = {marker} AND m.account_id = {marker}"
    )


class Store:
    """Accounts, messages and deliveries in one SQL database (SQLite or PostgreSQL)."""

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "FULL",
        migrate: bool = True,
        writer_socket: str | None = None,
    ) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        database_file = sqlite_file(url)
        if database_file is not None:
            Path(database_file).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url, pool_pre_ping=not self.is_sqlite)
        #: reads go through their own engine: on SQLite they must not take the write lock
        self.reader = self.engine
        if self.is_sqlite:
            _sqlite_setup(self.engine, synchronous, writer=True)
            self.reader = create_engine(url)
            _sqlite_setup(self.reader, synchronous, writer=False)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._raw: list[Any] = []
        self._thread_writer = threading.Lock()
        self._final_lock = threading.Lock()
        self._final_counts: tuple[float, dict[str, int] | None] = (0.0, None)
        self._writer_lock_path: str | None = None
        self._writer_lock: tuple[int, IO[bytes], IO[bytes]] | None = None
        if database_file is not None:
            self._writer_lock_path = f"{database_file}-writer"
        #: the driver's parameter marker, for the statements written in SQL
        self.marker = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._status_sql = _status_sql(self.marker)
        #: accounts, credits and passwords
        self.accounts = Accounts(self)
        #: sends charged and stored (through the writer process when ``writer_socket``)
        self.acceptance = Acceptance(self, WriterClient(writer_socket) if writer_socket else None)
        #: claims, leases and outcomes of the delivery rows
        self.queue = DeliveryQueue(self)
        #: providers' news, pollers' questions, clients' reports
        self.reports = DeliveryReports(self)
        if migrate:
            from smsxml.server.migrate import upgrade

            upgrade(self.engine)

    def close(self) -> None:
        self.acceptance.close()
        with self._lock:
            for connection in self._raw:
                connection.close()
            self._raw.clear()
        if self._writer_lock is not None and self._writer_lock[0] == os.getpid():
            for lock in self._writer_lock[1:]:
                lock.close()
        self._writer_lock = None
        self.engine.dispose()
        self.reader.dispose()

    def raw_connection(self, engine: Engine, slot: str) -> Any:
        """This thread's own DBAPI connection from ``engine``'s pool, kept for the thread's
        life: the SOAP hot path then pays no pool checkout or SQLAlchemy bookkeeping."""
        # Any: SQLAlchemy types driver_connection as Optional (None once detached)
        connection: Any = getattr(self._local, slot, None)
        if connection is None:
            connection = engine.raw_connection()
            if not self.is_sqlite:  # PostgreSQL: a read must not leave a transaction open
                connection.driver_connection.autocommit = slot == "reader"
            setattr(self._local, slot, connection)
            with self._lock:
                self._raw.append(connection)
        return connection

    def execute_in(self, cursor: Any, statement: str, values: Sequence[Any]) -> list[Any]:
        """``statement``, which ends in ``IN``, run on ``values`` 500 at a time (drivers
        cap a statement's parameters); the rows the chunks returned, if any."""
        found: list[Any] = []
        for first in range(0, len(values), 500):
            part = list(values[first : first + 500])
            cursor.execute(f"{statement} ({', '.join([self.marker] * len(part))})", part)
            if cursor.description is not None:
                found += cursor.fetchall()
        return found

    def batch_rows(self, *types: str) -> str:
        """A derived table ``v(c0, c1, …)`` of the rows passed in one parameter (a JSON
        array of arrays, :meth:`batch_param`), the columns of the SQL ``types`` given:
        a batch of outcomes is then one statement, not one per row (on PostgreSQL each
        statement of ``executemany`` was a round trip: 600 rows took 0.7 s)."""
        if self.is_sqlite:
            columns = ", ".join(f"json_extract(value, '$[{i}]') AS c{i}" for i in range(len(types)))
            return f"(SELECT {columns} FROM json_each(?)) AS v"
        columns = ", ".join(f"(value ->> {i})::{kind} AS c{i}" for i, kind in enumerate(types))
        return f"(SELECT {columns} FROM jsonb_array_elements(%s::jsonb) AS j(value)) AS v"

    def not_indexed(self, column: str) -> str:
        """``column`` in a condition SQLite must not answer from an index: with a batch
        (:meth:`batch_rows`) it would walk e.g. the state index and look up each batch row
        for every row found, instead of each batch row by primary key."""
        return f"+{column}" if self.is_sqlite else column

    @staticmethod
    def batch_param(rows: Sequence[Sequence[Any]]) -> str:
        """``rows`` as the one parameter of :meth:`batch_rows` (times as SQL text)."""
        return json.dumps(rows, separators=(",", ":"), default=_sql_time)

    def stamp(self, moment: datetime) -> datetime | str:
        """A time as the driver should get it: on SQLite the text SQLAlchemy writes (the
        stdlib adapter would format every row again, and differently)."""
        return moment.isoformat(" ", "microseconds") if self.is_sqlite else moment

    @contextmanager
    def raw_transaction(self, *, turn_taken: bool = False) -> Iterator[Any]:
        """A write transaction on this thread's raw connection (BEGIN IMMEDIATE on SQLite),
        in the writers' turn (``turn_taken``: the caller is in it already)."""
        connection = self.raw_connection(self.engine, "writer")
        if turn_taken:
            yield from self._raw_transaction_body(connection)
            return
        with self.writer_turn():
            yield from self._raw_transaction_body(connection)

    @contextmanager
    def writer_turn(self) -> Iterator[None]:
        """On SQLite, wait for the write lock on a file lock rather than in SQLite's busy
        handler, which sleeps 1, 2, 5, 10… ms between tries (a 10 ms wait cost 18):
        writers of all processes on this machine then take turns with no idle gap.

        Turns are shared: a writer first waits in line (``…-writer.next``) and leaves
        the line once it has the turn (``…-writer.lock``). A lock alone goes to whoever
        asks first when it is freed, and that is most often its last holder, running
        already: the endpoint's group commits, back to back under load, kept the
        dispatcher out for seconds (and the dispatcher them, before). With the line, a
        writer that wants the turn again queues behind the one already waiting."""
        if self._writer_lock_path is None:
            yield
            return
        with self._thread_writer:
            turn, line = self._writer_lock_files(self._writer_lock_path)
            fcntl.flock(line, fcntl.LOCK_EX)
            try:
                fcntl.flock(turn, fcntl.LOCK_EX)
            finally:
                fcntl.flock(line, fcntl.LOCK_UN)
            try:
                yield
            finally:
                fcntl.flock(turn, fcntl.LOCK_UN)

    def _writer_lock_files(self, path: str) -> tuple[IO[bytes], IO[bytes]]:
        """The turn's and the line's lock files, opened once per process (a forked child
        must not share its parent's open files: flock would then count them as one)."""
        if self._writer_lock is None or self._writer_lock[0] != os.getpid():
            self._writer_lock = (
                os.getpid(),
                open(f"{path}.lock", "a+b"),  # noqa: SIM115 - kept open
                open(f"{path}.next", "a+b"),  # noqa: SIM115 - kept open
            )
        return self._writer_lock[1], self._writer_lock[2]

    def _raw_transaction_body(self, connection: Any) -> Iterator[Any]:
        cursor = connection.cursor()
        try:
            if self.is_sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            yield cursor
            if self.is_sqlite:
                cursor.execute("COMMIT")
            else:
                connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            cursor.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.writer_turn(), self.engine.begin() as connection:
            yield connection

    def secret(self, name: str) -> str:
        """The secret ``name``, made (random, 256 bits) the first time it is asked for.
        Nodes starting together on a fresh PostgreSQL database may both make it: the one
        whose insert comes second takes the first one's."""
        stored = select(Secret.value).where(Secret.name == name)
        try:
            with self.transaction() as db:
                value = db.execute(stored).scalar()
                if value is None:
                    value = secrets.token_hex(32)
                    db.execute(insert(Secret).values(name=name, value=value))
        except IntegrityError:
            with self.reader.connect() as db:
                value = db.execute(stored).scalar_one()
        return value

    def status(self, account_id: int, message_id: str, recipient: str) -> str | None:
        """The state of one recipient of one of the account's messages; None if unknown.

        The SOAP ``query`` path: plain SQL through the driver, no statement built per
        call (building one cost ~100 x the lookup itself)."""
        cursor = self.raw_connection(self.reader, "reader").cursor()
        try:
            cursor.execute(self._status_sql, (recipient, message_id, account_id))
            found = cursor.fetchone()
        finally:
            cursor.close()
        if found is None:  # no such message of this account
            return None
        pending, state = found
        if pending:
            return QUEUED if recipient in pending.split("\n") else None
        return None if state is None else str(state)

    def history(self, message_id: str, recipient: str) -> list[tuple[str, str]]:
        with self.reader.connect() as db:
            rows = db.execute(
                select(DeliveryEvent.state, DeliveryEvent.detail)
                .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
                .where(Delivery.message_id == message_id, Delivery.recipient == recipient)
                .order_by(DeliveryEvent.id)
            )
            # the select's column types, which tuple() does not carry
            return cast(list[tuple[str, str]], [tuple(row) for row in rows])

    def counts(self, *, final_max_age: float = 0.0) -> dict[str, int]:
        """How many deliveries are in each state (for /metrics and /healthz).

        Queued and Pending rows (the backlog, short) are counted from their index every
        time. Delivered and Failed rows only grow, and counting them reads all of them: they
        are recounted at most every ``final_max_age`` seconds, so that a probe or a scraper
        hitting /healthz cannot make the database read the whole table each time."""
        live = (QUEUED, PENDING)
        with self.reader.connect() as db:
            rows = db.execute(
                select(Delivery.state, func.count())
                .where(Delivery.state.in_(live))
                .group_by(Delivery.state)
            )
            counts = {state: count for state, count in rows}
            waiting = db.execute(
                select(func.sum(Message.recipients)).where(Message.pending.is_not(None))
            ).scalar()
            with self._final_lock:
                counted_at, final = self._final_counts
                if final is None or time.monotonic() - counted_at >= final_max_age:
                    rows = db.execute(
                        select(Delivery.state, func.count())
                        .where(Delivery.state.not_in(live))
                        .group_by(Delivery.state)
                    )
                    final = {state: count for state, count in rows}
                    self._final_counts = (time.monotonic(), final)
        if waiting:
            counts[QUEUED] = counts.get(QUEUED, 0) + int(waiting)
        return {**counts, **final}
