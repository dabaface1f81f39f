"""Sends coming in: each is charged and stored with its recipient list in one
transaction before the client is answered, in a group commit of this process or by the
writer process; the lists become delivery rows later (:meth:`Acceptance.expand`), off
the SOAP path."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from smsxml.errors import InsufficientCredit
from smsxml.server.accounts import AccountInfo
from smsxml.server.clock import utcnow
from smsxml.server.groupcommit import GroupCommit
from smsxml.status import DeliveryState

if TYPE_CHECKING:
    from smsxml.server.store import Store

__all__ = ["WRITER_MAX_RECIPIENTS", "Acceptance", "NewMessage", "new_message_id"]

#: larger sends are committed by their own process even when there is a writer process:
#: their commit costs far more than its fsync, and copying their list to the writer
#: would cost more than sharing that fsync saves
WRITER_MAX_RECIPIENTS = 1000
QUEUED = DeliveryState.QUEUED.value


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


def _write_sql(marker: str, batch_rows: Callable[..., str]) -> dict[str, str]:
    """The statements of the send path, written once for the driver's paramstyle
    (``batch_rows``: :meth:`Store.batch_rows`)."""

    def values(count: int) -> str:
        return ", ".join([marker] * count)

    return {
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
        # PostgreSQL: a send's three writes in one statement, which the database skips
        # but for the charge when the account cannot pay (no row charged, none stored)
        "accept": (
            "WITH charged AS (UPDATE accounts SET credits = credits - %(cost)s::bigint"
            " WHERE id = %(account)s::integer AND credits >= %(cost)s::bigint"
            " RETURNING credits), ledger AS (INSERT INTO ledger (account_id, delta,"
            " balance, reason, message_id, created_at) SELECT %(account)s::integer,"
            " -%(cost)s::bigint, credits, 'send', %(id)s::text, %(now)s::timestamp"
            " FROM charged), stored AS (INSERT INTO messages (id, account_id, sender,"
            " text, coding, flash, parts, recipients, send_at, dlr_url, created_at,"
            " pending) SELECT %(id)s::text, %(account)s::integer, %(sender)s::text,"
            " %(text)s::text, %(coding)s::text, %(flash)s::boolean, %(parts)s::integer,"
            " %(count)s::integer, %(send_at)s::timestamp, %(dlr_url)s::text,"
            " %(now)s::timestamp, %(pending)s::text FROM charged RETURNING id)"
            " SELECT count(*) FROM stored"
        ),
        "stored": f"SELECT 1 FROM messages WHERE id = {marker}",
        "to_expand": (
            "SELECT id, pending, send_at, created_at, dlr_url FROM messages"
            " WHERE pending IS NOT NULL ORDER BY created_at LIMIT 1000"
            + ("" if marker == "?" else " FOR UPDATE SKIP LOCKED")
        ),
        "expanded": "UPDATE messages SET pending = NULL WHERE id IN",
        "deliveries": (  # (message, recipient, due, notified), the rows of a batch
            "INSERT INTO deliveries (message_id, recipient, state, attempts, next_attempt_at,"
            f" tried, updated_at, notified) SELECT v.c0, v.c1, '{QUEUED}', 0, v.c2, '',"
            f" {marker}, v.c3 FROM {batch_rows('text', 'text', 'timestamp', 'boolean')}"
        ),
    }


class Committer(Protocol):
    """Where sends are committed when not in this process: the writer process's client
    (smsxml.server.writerclient.WriterClient), which imports this module, not the reverse."""

    def commit(self, message: NewMessage) -> str | None:
        """The message id once stored, None if it could not say."""

    def close(self) -> None: ...


class Acceptance:
    """Charging and storing sends, and expanding their recipient lists into rows."""

    def __init__(self, store: Store, writer: Committer | None = None) -> None:
        self.store = store
        # the group is taken once it is this process's turn to write: sends that arrive
        # while another process commits join it
        self._accepts: GroupCommit[NewMessage, str] = GroupCommit(
            self._write_messages, turn=store.writer_turn
        )
        self._integrity_error = store.engine.dialect.loaded_dbapi.IntegrityError
        #: sends go to the writer process when there is one (see smsxml.server.writer)
        self._writer = writer
        self._sql = _write_sql(store.marker, store.batch_rows)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

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

        Raises :class:`InsufficientCredit` (and stores nothing) when the account cannot
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
        cursor = self.store.raw_connection(self.store.reader, "reader").cursor()
        try:
            cursor.execute(self._sql["stored"], (message_id,))
            return cursor.fetchone() is not None
        finally:
            cursor.close()

    def _write_messages(self, messages: list[NewMessage]) -> list[str | BaseException]:
        """One transaction for the messages of a group commit: each is charged and stored,
        or refused with :class:`InsufficientCredit` (and leaves nothing behind)."""
        if not self.store.is_sqlite:
            return self._write_messages_pipelined(messages)
        outcomes: list[str | BaseException] = []
        now = utcnow()
        with self.store.raw_transaction(turn_taken=True) as db:
            for message in messages:
                account, cost = message.account, message.parts * message.count
                db.execute(self._sql["charge"], (cost, account.id, cost))
                charged = db.fetchone()
                if charged is None:
                    outcomes.append(InsufficientCredit(account.name))
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

    def _write_messages_pipelined(self, messages: list[NewMessage]) -> list[str | BaseException]:
        """:meth:`_write_messages` on PostgreSQL: one statement per send, every one sent
        at once (psycopg's pipeline), so a group is two round trips (its statements, its
        commit) instead of three per send and two more."""
        now = utcnow()
        rows = [
            {
                "cost": m.parts * m.count,
                "account": m.account.id,
                "id": m.message_id,
                "now": now,
                "sender": m.sender,
                "text": m.text,
                "coding": m.coding,
                "flash": m.flash,
                "parts": m.parts,
                "count": m.count,
                "send_at": m.send_at,
                "dlr_url": m.dlr_url,
                "pending": m.pending,  # rows come later: see expand()
            }
            for m in messages
        ]
        stored: list[int] = []
        with self.store.raw_transaction(turn_taken=True) as db:
            db.executemany(self._sql["accept"], rows, returning=True)
            while True:
                stored.append(db.fetchone()[0])
                if not db.nextset():
                    break
        return [
            m.message_id if count else InsufficientCredit(m.account.name)
            for m, count in zip(messages, stored, strict=True)
        ]

    def expand(self, max_rows: int = 100_000) -> int:
        """Turn accepted messages' recipient lists into delivery rows (Queued), oldest
        first, up to about ``max_rows`` rows; returns how many rows were made.

        The list is cleared in the same transaction that writes the rows, so a message
        is expanded exactly once whatever the number of dispatchers (SQLite serialises
        writers; PostgreSQL skips messages another node has locked)."""
        made, rows, expanded = 0, [], []
        now = self.store.stamp(utcnow())
        with self.store.raw_transaction() as db:
            db.execute(self._sql["to_expand"])
            for message_id, pending, send_at, created_at, dlr_url in db.fetchall():
                if made >= max_rows:
                    break
                due = self.store.stamp(_as_datetime(send_at or created_at))
                nobody_waits = dlr_url is None  # born notified: the report loop skips them
                recipients = pending.split("\n")
                rows += [(message_id, r, due, nobody_waits) for r in recipients]
                expanded.append(message_id)
                made += len(recipients)
            if rows:  # one statement for every message: a round trip each cost more
                db.execute(self._sql["deliveries"], (now, self.store.batch_param(rows)))
            self.store.execute_in(db, self._sql["expanded"], expanded)
        return made
