"""The bridge's store: accounts and credits, messages, and the delivery queue.

Every write that a client is told about is committed before the answer leaves. The
store is the queue: dispatcher workers claim due rows with a lease (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; SQLite serialises writers with ``BEGIN IMMEDIATE``), so several
workers and processes share one database without sending a row twice while alive.
"""

from __future__ import annotations

import fcntl
import hmac
import os
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, create_engine, event, func, insert, select, update
from sqlalchemy.engine import make_url

from smsxml.server.clock import utcnow
from smsxml.server.groupcommit import GroupCommit
from smsxml.server.models import Account, Delivery, DeliveryEvent, LedgerEntry, Message, Secret
from smsxml.server.queue import DeliveryQueue
from smsxml.server.reports import DeliveryReports
from smsxml.status import DeliveryState

if TYPE_CHECKING:
    from smsxml.server.writer import WriterClient

__all__ = [
    "WRITER_MAX_RECIPIENTS",
    "AccountInfo",
    "InsufficientCredits",
    "NewMessage",
    "Store",
    "sqlite_file",
]

#: how often a remembered password verification looks at the stored hash again (a
#: password changed by another process is then refused within this time)
AUTH_RECHECK_SECONDS = 30.0
#: larger sends are committed by their own process even when there is a writer process:
#: their commit costs far more than its fsync, and copying their list to the writer
#: would cost more than sharing that fsync saves
WRITER_MAX_RECIPIENTS = 1000
QUEUED, PENDING = DeliveryState.QUEUED.value, DeliveryState.PENDING.value
DELIVERED, FAILED = DeliveryState.DELIVERED.value, DeliveryState.FAILED.value


class InsufficientCredits(Exception):
    """The account cannot pay for this send; nothing was stored."""


@dataclass(frozen=True)
class AccountInfo:
    """What the service needs to know of an authenticated account."""

    id: int
    name: str
    credits: int


@dataclass(frozen=True)
class _Verified:
    """A password verification remembered by :meth:`Store.authenticate`."""

    digest: bytes  # keyed HMAC of the password
    password_hash: str  # the stored hash it was verified against
    account: AccountInfo
    recheck_at: float  # time.monotonic() after which the stored hash is read again


@dataclass(frozen=True)
class NewMessage:
    """A send on its way into the store (maybe through the writer process)."""

    account: AccountInfo
    message_id: str  # drawn before the commit: the row's key, so a retry cannot store it twice
    sender: str
    text: str
    coding: str
    flash: bool
    pending: str  # the recipients, one per line (the ``pending`` column)
    count: int  # how many recipients
    parts: int
    send_at: datetime | None
    dlr_url: str | None


def _as_datetime(value: datetime | str) -> datetime:
    """A time as a raw driver returns it (SQLite: text) → datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#: every pair of base32 digits, so that an id is six lookups (base64.b32encode is Python)
_BASE32_PAIRS = [a + b for a in _BASE32 for b in _BASE32]


def new_message_id() -> str:
    """12 characters of base32, like iSMS's ``I7I5R4HTAA`` ids; 60 random bits."""
    bits = secrets.randbits(60)
    return "".join(_BASE32_PAIRS[(bits >> shift) & 1023] for shift in (50, 40, 30, 20, 10, 0))


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


def _hot_sql(marker: str) -> dict[str, str]:
    """The statements of the SOAP hot path, written once for the driver's paramstyle."""

    def values(count: int) -> str:
        return ", ".join([marker] * count)

    return {
        "status": (
            "SELECT d.state FROM deliveries d JOIN messages m ON m.id = d.message_id"
            f" WHERE d.message_id = {marker} AND d.recipient = {marker}"
            f" AND m.account_id = {marker}"
        ),
        "charge": (
            f"UPDATE accounts SET credits = credits - {marker}"
            f" WHERE id = {marker} AND credits >= {marker} RETURNING credits"
        ),
        "ledger": (
            "INSERT INTO ledger (account_id, delta, balance, reason, message_id, created_at)"
            f" VALUES ({values(6)})"
        ),
        "message": (
            "INSERT INTO messages (id, account_id, sender, text, coding, flash, parts,"
            f" recipients, send_at, dlr_url, created_at, pending) VALUES ({values(12)})"
        ),
        "pending": (f"SELECT pending FROM messages WHERE id = {marker} AND account_id = {marker}"),
        "stored": f"SELECT 1 FROM messages WHERE id = {marker}",
        "to_expand": (
            "SELECT id, pending, send_at, created_at, dlr_url FROM messages"
            " WHERE pending IS NOT NULL ORDER BY created_at LIMIT 100"
            + ("" if marker == "?" else " FOR UPDATE SKIP LOCKED")
        ),
        "expanded": f"UPDATE messages SET pending = NULL WHERE id = {marker}",
        "deliveries": (
            "INSERT INTO deliveries (message_id, recipient, state, attempts, next_attempt_at,"
            f" tried, updated_at, notified) VALUES ({values(8)})"
        ),
    }


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
        self._hasher = PasswordHasher()
        self._auth_cache: dict[str, _Verified] = {}
        self._verify_locks: dict[str, threading.Lock] = {}
        self._cache_key = os.urandom(32)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._raw: list[Any] = []
        self._thread_writer = threading.Lock()
        self._writer_lock_path: str | None = None
        self._writer_lock: tuple[int, IO[bytes]] | None = None
        if database_file is not None:
            self._writer_lock_path = f"{database_file}-writer.lock"
        # the group is taken once it is this process's turn to write: sends that arrive
        # while another process commits join it
        self._accepts: GroupCommit[NewMessage, str] = GroupCommit(
            self._write_messages, turn=self._writer_turn
        )
        self._integrity_error = self.engine.dialect.loaded_dbapi.IntegrityError
        #: sends go to the writer process when there is one (see smsxml.server.writer)
        self._writer: WriterClient | None = None
        if writer_socket:
            from smsxml.server.writer import WriterClient

            self._writer = WriterClient(writer_socket)
        self._sql = _hot_sql("?" if self.engine.dialect.paramstyle == "qmark" else "%s")
        #: claims, leases and outcomes of the delivery rows
        self.queue = DeliveryQueue(self)
        #: providers' news, pollers' questions, clients' reports
        self.reports = DeliveryReports(self)
        if migrate:
            from smsxml.server.migrate import upgrade

            upgrade(self.engine)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        with self._lock:
            for connection in self._raw:
                connection.close()
            self._raw.clear()
        if self._writer_lock is not None and self._writer_lock[0] == os.getpid():
            self._writer_lock[1].close()
        self._writer_lock = None
        self.engine.dispose()
        self.reader.dispose()

    def _raw_connection(self, engine: Engine, slot: str) -> Any:
        """This thread's own DBAPI connection from ``engine``'s pool, kept for the thread's
        life: the SOAP hot path then pays no pool checkout or SQLAlchemy bookkeeping."""
        connection = getattr(self._local, slot, None)
        if connection is None:
            connection = engine.raw_connection()
            if not self.is_sqlite:  # PostgreSQL: a read must not leave a transaction open
                connection.driver_connection.autocommit = slot == "reader"
            setattr(self._local, slot, connection)
            with self._lock:
                self._raw.append(connection)
        return connection

    def _stamp(self, moment: datetime) -> datetime | str:
        """A time as the driver should get it: on SQLite the text SQLAlchemy writes (the
        stdlib adapter would format every row again, and differently)."""
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if self.is_sqlite else moment

    @contextmanager
    def _raw_transaction(self, *, turn_taken: bool = False) -> Iterator[Any]:
        """A write transaction on this thread's raw connection (BEGIN IMMEDIATE on SQLite),
        in the writers' turn (``turn_taken``: the caller is in it already)."""
        connection = self._raw_connection(self.engine, "writer")
        if turn_taken:
            yield from self._raw_transaction_body(connection)
            return
        with self._writer_turn():
            yield from self._raw_transaction_body(connection)

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """On SQLite, wait for the write lock on a file lock rather than in SQLite's busy
        handler, which sleeps 1, 2, 5, 10… ms between tries (a 10 ms wait cost 18):
        writers of all processes on this machine then take turns with no idle gap."""
        if self._writer_lock_path is None:
            yield
            return
        with self._thread_writer:
            lock = self._writer_lock_file(self._writer_lock_path)
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _writer_lock_file(self, path: str) -> IO[bytes]:
        """The lock file, opened once per process (a forked child must not share its
        parent's open file: flock would then count them as one holder)."""
        if self._writer_lock is None or self._writer_lock[0] != os.getpid():
            self._writer_lock = (os.getpid(), open(path, "a+b"))  # noqa: SIM115 - kept open
        return self._writer_lock[1]

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
        with self._writer_turn(), self.engine.begin() as connection:
            yield connection

    def secret(self, name: str) -> str:
        """The secret ``name``, made (random, 256 bits) the first time it is asked for."""
        with self.transaction() as db:
            value = db.execute(select(Secret.value).where(Secret.name == name)).scalar()
            if value is None:
                value = secrets.token_hex(32)
                db.execute(insert(Secret).values(name=name, value=value))
        return value

    # accounts -------------------------------------------------------------------------

    def add_account(self, name: str, password: str, credits: int = 0) -> AccountInfo:
        now = utcnow()
        with self.transaction() as db:
            account_id = db.execute(
                insert(Account).values(
                    name=name,
                    password_hash=self._hasher.hash(password),
                    credits=credits,
                    created_at=now,
                )
            ).inserted_primary_key[0]
            if credits:
                db.execute(
                    insert(LedgerEntry).values(
                        account_id=account_id,
                        delta=credits,
                        balance=credits,
                        reason="credit",
                        created_at=now,
                    )
                )
        return AccountInfo(account_id, name, credits)

    def account(self, name: str) -> AccountInfo | None:
        with self.reader.connect() as db:
            row = db.execute(
                select(Account.id, Account.name, Account.credits).where(Account.name == name)
            ).first()
        return AccountInfo(*row) if row else None

    def accounts(self) -> list[AccountInfo]:
        with self.reader.connect() as db:
            rows = db.execute(
                select(Account.id, Account.name, Account.credits).order_by(Account.name)
            )
            return [AccountInfo(*row) for row in rows]

    def credit(self, name: str, amount: int, reason: str = "credit") -> AccountInfo:
        """Add (or, negative, take) credits, with a ledger entry."""
        with self.transaction() as db:
            row = db.execute(
                update(Account)
                .where(Account.name == name, Account.credits + amount >= 0)
                .values(credits=Account.credits + amount)
                .returning(Account.id, Account.credits)
            ).first()
            if row is not None:
                db.execute(
                    insert(LedgerEntry).values(
                        account_id=row.id,
                        delta=amount,
                        balance=row.credits,
                        reason=reason,
                        created_at=utcnow(),
                    )
                )
        if row is None:
            if self.account(name) is None:
                raise KeyError(name)
            raise InsufficientCredits(name)
        return AccountInfo(row.id, name, row.credits)

    def set_password(self, name: str, password: str) -> None:
        with self.transaction() as db:
            done = db.execute(
                update(Account)
                .where(Account.name == name)
                .values(password_hash=self._hasher.hash(password))
            ).rowcount
        if not done:
            raise KeyError(name)
        with self._lock:
            self._auth_cache.pop(name, None)

    def ledger(self, name: str) -> list[tuple[int, int, str, str | None]]:
        with self.reader.connect() as db:
            rows = db.execute(
                select(
                    LedgerEntry.delta,
                    LedgerEntry.balance,
                    LedgerEntry.reason,
                    LedgerEntry.message_id,
                )
                .join(Account, Account.id == LedgerEntry.account_id)
                .where(Account.name == name)
                .order_by(LedgerEntry.id)
            )
            return [tuple(row) for row in rows]

    def authenticate(self, name: str, password: str) -> AccountInfo | None:
        """The account if ``password`` is right.

        argon2 is slow on purpose (tens of ms): too slow for every SOAP call. A success is
        remembered under a keyed digest of the password (never the password itself) with
        the hash it was checked against; every :data:`AUTH_RECHECK_SECONDS` the stored
        hash is read again (a cheap lookup), and only a changed hash (``accounts passwd``,
        maybe in another process) costs argon2 again. Concurrent calls for one account
        wait for one verification instead of running several."""
        digest = hmac.new(self._cache_key, password.encode(), "sha256").digest()
        cached = self._auth_cache.get(name)
        if (
            cached
            and cached.recheck_at > time.monotonic()
            and hmac.compare_digest(cached.digest, digest)
        ):
            return cached.account
        row = self._credentials(name)
        if row is None:
            self._hasher.hash(password)  # same cost whether or not the name exists
            return None
        with self._verifying(name):
            cached = self._auth_cache.get(name)
            still_valid = (
                cached is not None
                and cached.password_hash == row.password_hash
                and hmac.compare_digest(cached.digest, digest)
            )
            if not still_valid:
                try:
                    self._hasher.verify(row.password_hash, password)
                except (VerificationError, InvalidHashError):
                    return None
            account = AccountInfo(row.id, row.name, row.credits)
            self._auth_cache[name] = _Verified(
                digest, row.password_hash, account, time.monotonic() + AUTH_RECHECK_SECONDS
            )
        return account

    def _credentials(self, name: str) -> Any:
        with self.reader.connect() as db:
            return db.execute(
                select(Account.id, Account.name, Account.credits, Account.password_hash).where(
                    Account.name == name
                )
            ).first()

    def _verifying(self, name: str) -> threading.Lock:
        """The lock that makes one thread at a time verify ``name``'s password (names that
        exist only: the table bounds the locks)."""
        with self._lock:
            return self._verify_locks.setdefault(name, threading.Lock())

    # messages -------------------------------------------------------------------------

    def accept(
        self,
        account: AccountInfo,
        *,
        sender: str,
        text: str,
        coding: str,
        flash: bool,
        recipients: Sequence[str],
        parts: int,
        send_at: datetime | None = None,
        dlr_url: str | None = None,
    ) -> str:
        """Charge the account and store the message with its recipients, in one
        transaction; the dispatcher turns the recipients into delivery rows (expand).
        The writer process commits it when there is one (up to
        :data:`WRITER_MAX_RECIPIENTS` recipients), else this process (see :meth:`commit`).

        Raises :class:`InsufficientCredits` (and stores nothing) when the account cannot
        pay ``parts × recipients``.
        """
        message = NewMessage(
            account=account,
            message_id=new_message_id(),
            sender=sender,
            text=text,
            coding=coding,
            flash=flash,
            pending="\n".join(recipients),
            count=len(recipients),
            parts=parts,
            send_at=send_at,
            dlr_url=dlr_url,
        )
        if self._writer is not None and message.count <= WRITER_MAX_RECIPIENTS:
            stored = self._writer.commit(message)
            if stored is not None:
                return stored
            # the writer did not take it (or did not say): commit it here; its id keeps
            # it from being stored twice
        return self.commit(message)

    def commit(self, message: NewMessage) -> str:
        """Charge and store ``message`` in this process, in one transaction shared with
        the sends of other threads that arrive meanwhile (see
        :mod:`~smsxml.server.groupcommit`).

        A message whose row exists already (the writer stored it but its answer was lost)
        is neither stored nor charged again: its id is the row's primary key."""
        try:
            return self._accepts.submit(message)
        except self._integrity_error:
            if self._stored(message.message_id):
                return message.message_id
            raise

    def commit_many(self, messages: list[NewMessage]) -> list[str | BaseException]:
        """:meth:`commit` for a batch in hand (the writer process's): one transaction, one
        id or exception instance per message."""
        outcomes = self._accepts.write_now(messages)
        return [
            message.message_id
            if isinstance(outcome, self._integrity_error) and self._stored(message.message_id)
            else outcome
            for message, outcome in zip(messages, outcomes, strict=True)
        ]

    def _stored(self, message_id: str) -> bool:
        cursor = self._raw_connection(self.reader, "reader").cursor()
        try:
            cursor.execute(self._sql["stored"], (message_id,))
            return cursor.fetchone() is not None
        finally:
            cursor.close()

    def _write_messages(self, messages: list[NewMessage]) -> list[str | BaseException]:
        """One transaction for the messages of a group commit: each is charged and stored,
        or refused with :class:`InsufficientCredits` (and leaves nothing behind)."""
        outcomes: list[str | BaseException] = []
        now = utcnow()
        with self._raw_transaction(turn_taken=True) as db:
            for message in messages:
                account, cost = message.account, message.parts * message.count
                db.execute(self._sql["charge"], (cost, account.id, cost))
                charged = db.fetchone()
                if charged is None:
                    outcomes.append(InsufficientCredits(account.name))
                    continue
                db.execute(
                    self._sql["ledger"],
                    (account.id, -cost, charged[0], "send", message.message_id, now),
                )
                db.execute(
                    self._sql["message"],
                    (
                        message.message_id,
                        account.id,
                        message.sender,
                        message.text,
                        message.coding,
                        message.flash,
                        message.parts,
                        message.count,
                        message.send_at,
                        message.dlr_url,
                        now,
                        message.pending,  # rows come later: see expand()
                    ),
                )
                outcomes.append(message.message_id)
        return outcomes

    def status(self, account_id: int, message_id: str, recipient: str) -> str | None:
        """The state of one recipient of one of the account's messages; None if unknown.

        The SOAP ``query`` path: plain SQL through the driver, no statement built per
        call (building one cost ~100 x the lookup itself)."""
        cursor = self._raw_connection(self.reader, "reader").cursor()
        try:
            # The list first: expansion writes the rows and clears the list in one
            # transaction, so a cleared list means the rows are there (rows first could
            # miss both, if the expansion ran between the two reads).
            cursor.execute(self._sql["pending"], (message_id, account_id))
            listed = cursor.fetchone()
            if listed and listed[0]:
                found = (QUEUED,) if recipient in listed[0].split("\n") else None
            else:
                cursor.execute(self._sql["status"], (message_id, recipient, account_id))
                found = cursor.fetchone()
        finally:
            cursor.close()
        return found[0] if found else None

    def history(self, message_id: str, recipient: str) -> list[tuple[str, str]]:
        with self.reader.connect() as db:
            rows = db.execute(
                select(DeliveryEvent.state, DeliveryEvent.detail)
                .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
                .where(Delivery.message_id == message_id, Delivery.recipient == recipient)
                .order_by(DeliveryEvent.id)
            )
            return [tuple(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many deliveries are in each state (for /metrics and /healthz)."""
        with self.reader.connect() as db:
            rows = db.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
            counts = {state: count for state, count in rows}
            waiting = db.execute(
                select(func.sum(Message.recipients)).where(Message.pending.is_not(None))
            ).scalar()
        if waiting:
            counts[QUEUED] = counts.get(QUEUED, 0) + int(waiting)
        return counts

    # the queue (claims and outcomes: smsxml.server.queue) ------------------------------

    def expand(self, max_rows: int = 100_000) -> int:
        """Turn accepted messages' recipient lists into delivery rows (Queued), oldest
        first, up to about ``max_rows`` rows; returns how many rows were made.

        The list is cleared in the same transaction that writes the rows, so a message
        is expanded exactly once whatever the number of dispatchers (SQLite serialises
        writers; PostgreSQL skips messages another node has locked)."""
        made = 0
        with self._raw_transaction() as db:
            db.execute(self._sql["to_expand"])
            for message_id, pending, send_at, created_at, dlr_url in db.fetchall():
                if made >= max_rows:
                    break
                due = self._stamp(_as_datetime(send_at or created_at))
                now = self._stamp(utcnow())
                nobody_waits = dlr_url is None  # born notified: the report loop skips them
                rows = [
                    (message_id, r, QUEUED, 0, due, "", now, nobody_waits)
                    for r in pending.split("\n")
                ]
                db.executemany(self._sql["deliveries"], rows)
                db.execute(self._sql["expanded"], (message_id,))
                made += len(rows)
        return made
