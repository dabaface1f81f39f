"""The delivery queue: one row per (message, recipient), claimed by dispatchers.

A dispatcher claims due ``Queued`` rows with a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; SQLite serialises writers), keeps the lease alive with :meth:`renew` while
the rows are with it, and hands back what happened to them as :class:`Outcomes`, written
in one transaction per batch (:meth:`record`): per-row transactions cost more than the
provider calls they follow. A dispatcher that dies stops renewing; its rows are claimed
again once the lease has run out (seconds), so delivery is at least once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, delete, func, insert, select, update

from smsxml.server.clock import utcnow
from smsxml.server.models import Delivery, DeliveryEvent, Dispatcher, Message
from smsxml.status import DeliveryState

if TYPE_CHECKING:
    from smsxml.server.store import Store

__all__ = ["Claimed", "Claims", "DeliveryQueue", "Outcomes", "record_event_lines"]

QUEUED, PENDING = DeliveryState.QUEUED.value, DeliveryState.PENDING.value
FAILED = DeliveryState.FAILED.value


@dataclass(frozen=True)
class Claimed:
    """A delivery row a dispatcher holds, with what it needs to send it."""

    id: int
    message_id: str
    recipient: str
    attempts: int
    tried: tuple[str, ...]
    sender: str
    text: str
    coding: str
    flash: bool
    reason: str | None  # why the last try failed


@dataclass
class Outcomes:
    """What became of claimed rows, gathered from many provider calls for one write."""

    #: (row, provider, provider's id): accepted, now Pending
    accepted: list[tuple[int, str, str]] = field(default_factory=list)
    #: (row, reason): Failed for good
    failed: list[tuple[int, str]] = field(default_factory=list)
    #: (row, delay in seconds, providers tried this round, reason, ends a round): Queued again
    retried: list[tuple[int, float, tuple[str, ...], str, bool]] = field(default_factory=list)
    #: rows given back untouched (shutdown)
    released: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.accepted) + len(self.failed) + len(self.retried) + len(self.released)

    def rows(self) -> set[int]:
        """Every row these outcomes settle (for this process: no longer in hand)."""
        settled = {r for r, *_ in self.accepted} | {r for r, _ in self.failed}
        return settled | {r for r, *_ in self.retried} | set(self.released)

    def add(self, other: Outcomes) -> None:
        self.accepted += other.accepted
        self.failed += other.failed
        self.retried += other.retried
        self.released += other.released


class Claims(Protocol):
    """What a dispatcher asks of the queue: :class:`DeliveryQueue`, or the same calls run
    in another process (:class:`~smsxml.server.queueagent.QueueAgent`)."""

    def claim(self, owner: str, limit: int, lease: float) -> list[Claimed]: ...

    def record(
        self, outcomes: Outcomes, first_polls: Mapping[str, float] | None = None
    ) -> None: ...

    def renew(self, owner: str, ids: Sequence[int], lease: float) -> None: ...

    def heartbeat(self, owner: str, lease: float) -> int: ...

    def leave(self, owner: str) -> None: ...


def record_event_lines(db: Connection, lines: Sequence[tuple[int, str, str]]) -> None:
    """History lines (row, state, detail): what ``query`` callers and operators read back."""
    if lines:
        now = utcnow()
        db.execute(
            insert(DeliveryEvent),
            [{"delivery_id": i, "state": s, "detail": d, "at": now} for i, s, d in lines],
        )


_MESSAGE_TEXTS = "SELECT id, sender, text, coding, flash FROM messages WHERE id IN"


class DeliveryQueue:
    """Claiming, lease renewal and outcome recording on the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        mark = store.marker
        # the due rows, oldest first, leased in the statement that picks them; other
        # nodes' claims skip the rows this one locked (PostgreSQL)
        self._claim_sql = (
            f"UPDATE deliveries SET lease_until = {mark}, lease_owner = {mark}"
            " WHERE id IN (SELECT id FROM deliveries WHERE state = 'Queued'"
            f" AND next_attempt_at <= {mark}"
            f" AND (lease_until IS NULL OR lease_until < {mark})"
            f" ORDER BY next_attempt_at, id LIMIT {mark}"
            + ("" if store.is_sqlite else " FOR UPDATE SKIP LOCKED")
            + ") RETURNING id, message_id, recipient, attempts, tried, reason"
        )
        self._outcome_sql = _outcome_sql(store)

    def claim(self, owner: str, limit: int, lease: float) -> list[Claimed]:
        """Take up to ``limit`` due Queued rows for ``lease`` seconds (expanding messages
        accepted since the last claim into rows first). Written in SQL on the thread's
        own connection, one statement for the rows and one per 500 messages: built with
        SQLAlchemy, a claim's statements cost more CPU than the rows' provider calls."""
        store = self.store
        store.acceptance.expand()
        now = utcnow()
        until = store.stamp(now + timedelta(seconds=lease))
        with store.raw_transaction() as db:
            db.execute(self._claim_sql, (until, owner, store.stamp(now), store.stamp(now), limit))
            rows = sorted(db.fetchall())
        # the texts after the writers' turn (a message never changes once stored): on
        # SQLite every other writer waits while a transaction is open
        reader = store.raw_connection(store.reader, "reader").cursor()
        try:
            message_ids = sorted({row[1] for row in rows})
            texts = {m[0]: m[1:] for m in store.execute_in(reader, _MESSAGE_TEXTS, message_ids)}
        finally:
            reader.close()
        claimed = []
        for row_id, message_id, recipient, attempts, tried, reason in rows:
            sender, text, coding, flash = texts[message_id]
            tried_list = tuple(t for t in tried.split(",") if t)
            claimed.append(
                Claimed(
                    row_id,
                    message_id,
                    recipient,
                    attempts,
                    tried_list,
                    sender,
                    text,
                    coding,
                    bool(flash),
                    reason,
                )
            )
        return claimed

    def oldest_wait(self) -> float:
        """Seconds the oldest due Queued row (or unexpanded message) has waited; 0 if none
        (both minima are index searches: the due index, the pending messages' index)."""
        now = utcnow()
        with self.store.reader.connect() as db:
            row_due = db.execute(
                select(func.min(Delivery.next_attempt_at)).where(Delivery.state == QUEUED)
            ).scalar()
            listed = db.execute(
                select(func.min(func.coalesce(Message.send_at, Message.created_at))).where(
                    Message.pending.is_not(None)
                )
            ).scalar()
        waits = [(now - _as_time(due)).total_seconds() for due in (row_due, listed) if due]
        return max(0.0, *waits) if waits else 0.0

    def renew(self, owner: str, ids: Sequence[int], lease: float) -> None:
        """Extend the lease of rows ``owner`` still holds (the dispatcher's heartbeat)."""
        if not ids:
            return
        with self.store.transaction() as db:
            db.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(list(ids)),
                    Delivery.lease_owner == owner,
                    Delivery.state == QUEUED,
                )
                .values(lease_until=utcnow() + timedelta(seconds=lease))
            )

    def heartbeat(self, owner: str, lease: float) -> int:
        """Say that ``owner`` dispatches; how many dispatchers were seen within ``lease``
        (itself included): each provider's rate limit is shared among them."""
        now = utcnow()
        with self.store.transaction() as db:
            seen = db.execute(
                update(Dispatcher).where(Dispatcher.owner == owner).values(seen_at=now)
            ).rowcount
            if not seen:
                db.execute(insert(Dispatcher).values(owner=owner, seen_at=now))
            db.execute(delete(Dispatcher).where(Dispatcher.seen_at < now - timedelta(hours=1)))
            live = db.execute(
                select(func.count())
                .select_from(Dispatcher)
                .where(Dispatcher.seen_at >= now - timedelta(seconds=lease))
            ).scalar()
        return max(1, int(live or 0))

    def leave(self, owner: str) -> None:
        """``owner`` stops dispatching: the others' share of each rate limit grows at once."""
        with self.store.transaction() as db:
            db.execute(delete(Dispatcher).where(Dispatcher.owner == owner))

    def record(self, outcomes: Outcomes, first_polls: Mapping[str, float] | None = None) -> None:
        """Write every outcome of a batch in one transaction, one statement per kind of
        outcome whatever the number of rows (:meth:`Store.batch_rows`), the parameters
        made before the writers' turn is taken. ``first_polls``: seconds from acceptance
        to a row's first status poll, per provider (default: due at once)."""
        if not len(outcomes):
            return
        sql, stamp, batch = self._outcome_sql, self.store.stamp, self.store.batch_param
        moment = utcnow()
        now = stamp(moment)
        statements: list[tuple[str, tuple[Any, ...]]] = []
        events: list[tuple[int, str, str]] = []
        if outcomes.accepted:
            polls = {
                p: stamp(moment + timedelta(seconds=(first_polls or {}).get(p, 0.0)))
                for p in {p for _, p, _ in outcomes.accepted}
            }
            accepted = [(p, i, polls[p], r) for r, p, i in outcomes.accepted]
            statements.append((sql["accept"], (now, batch(accepted))))
            events += [(r, PENDING, f"accepted by {p}") for r, p, _ in outcomes.accepted]
        if outcomes.failed:
            failed = [(why, r) for r, why in outcomes.failed]
            statements.append((sql["fail"], (now, batch(failed))))
            events += [(r, FAILED, why) for r, why in outcomes.failed]
        if outcomes.retried:
            retried = [
                (int(spent), stamp(moment + timedelta(seconds=delay)), ",".join(tried), why, r)
                for r, delay, tried, why, spent in outcomes.retried
            ]
            statements.append((sql["retry"], (now, batch(retried))))
            events += [
                (r, QUEUED, _retry_detail(delay, why, spent))
                for r, delay, _, why, spent in outcomes.retried
            ]
        if events:
            statements.append((sql["event"], (now, batch(events), now)))
        with self.store.raw_transaction() as db:
            for statement, parameters in statements:
                db.execute(statement, parameters)
            self._release(db, outcomes.released)

    def release(self, ids: Sequence[int]) -> None:
        """Give claimed rows back untouched (shutdown)."""
        with self.store.raw_transaction() as db:
            self._release(db, ids)

    def _release(self, db: Any, ids: Sequence[int]) -> None:
        self.store.execute_in(db, self._outcome_sql["release"], ids)


def _outcome_sql(store: Store) -> dict[str, str]:
    """The statements of :meth:`DeliveryQueue.record`, each for a whole batch of rows
    (``v``, :meth:`Store.batch_rows`). A row changes only from the states the outcome
    expects (a report may have come first)."""
    mark, rows = store.marker, store.batch_rows
    free = "lease_until = NULL, lease_owner = NULL"
    state = store.not_indexed("deliveries.state")  # each batch row found by primary key
    return {
        "accept": (  # (provider, provider's id, first poll, row)
            f"UPDATE deliveries SET state = '{PENDING}', provider = v.c0, provider_id = v.c1,"
            f" attempts = attempts + 1, next_attempt_at = v.c2, {free}, updated_at = {mark}"
            f" FROM {rows('text', 'text', 'timestamp', 'bigint')}"
            f" WHERE deliveries.id = v.c3 AND {state} = '{QUEUED}'"
        ),
        "fail": (  # (reason, row)
            f"UPDATE deliveries SET state = '{FAILED}', reason = v.c0, {free},"
            f" updated_at = {mark} FROM {rows('text', 'bigint')}"
            f" WHERE deliveries.id = v.c1 AND {state} IN ('{QUEUED}', '{PENDING}')"
        ),
        "retry": (  # (rounds spent, next attempt, providers tried, reason, row)
            f"UPDATE deliveries SET attempts = attempts + v.c0, next_attempt_at = v.c1,"
            f" tried = v.c2, reason = v.c3, {free}, updated_at = {mark}"
            f" FROM {rows('integer', 'timestamp', 'text', 'text', 'bigint')}"
            f" WHERE deliveries.id = v.c4 AND {state} = '{QUEUED}'"
        ),
        "release": f"UPDATE deliveries SET {free} WHERE state = '{QUEUED}' AND id IN",
        # (row, state, detail): a line for each row this batch changed (in that state,
        # stamped now), none for a row a report had settled first
        "event": (
            "INSERT INTO delivery_events (delivery_id, state, detail, at)"
            f" SELECT v.c0, v.c1, v.c2, {mark} FROM {rows('bigint', 'text', 'text')}"
            f" JOIN deliveries d ON d.id = v.c0"
            f" WHERE {store.not_indexed('d.state')} = v.c1 AND d.updated_at = {mark}"
        ),
    }


def _as_time(value: datetime | str) -> datetime:
    """A time as the driver returned it (SQLite may give text)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _retry_detail(delay: float, reason: str, ends_round: bool) -> str:
    if ends_round:
        return f"retry in {delay:.1f}s: {reason}"
    if delay:  # the provider asked to wait (Retry-After)
        return f"wait {delay:.1f}s: {reason}"
    return f"next provider: {reason}"
