"""What the store knows of delivery after the send: providers' news, pollers' questions,
and the reports owed to clients.

Every question here is an index search, whatever the table's size: a poller asks for a
provider's Pending rows whose next poll is due (``ix_deliveries_polling``, Pending rows
only) and pushes each one's next poll further out the longer it stays Pending; the
report loop asks for final rows a client waits to hear about (``ix_deliveries_unnotified``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Connection, Row, bindparam, select, update

from smsxml.providers.base import StatusUpdate
from smsxml.server.clock import utcnow
from smsxml.server.models import Delivery, Message
from smsxml.server.queue import record_event_lines
from smsxml.status import DeliveryState

if TYPE_CHECKING:
    from smsxml.server.store import Store

__all__ = ["DeliveryReports", "Polled"]

T = TypeVar("T")

QUEUED, PENDING = DeliveryState.QUEUED.value, DeliveryState.PENDING.value
DELIVERED, FAILED = DeliveryState.DELIVERED.value, DeliveryState.FAILED.value
#: the longest wait between two polls of a row that stays Pending
MAX_POLL_INTERVAL = 600.0

#: which states each piece of news may move a row from
_ALLOWED_FROM = {
    PENDING: (QUEUED,),
    DELIVERED: (QUEUED, PENDING),
    FAILED: (QUEUED, PENDING),
}
#: provider ids looked up (rows updated) per statement: far below SQLite's 32,766
#: parameters and PostgreSQL's 65,535
_CHUNK = 500
#: news written per transaction
_PER_TRANSACTION = 5_000

_REPORTED_COLUMNS = (Delivery.id, Delivery.provider_id, Delivery.recipient, Delivery.state)
_UNSETTLED = (Delivery.provider == bindparam("provider"), Delivery.state.in_((QUEUED, PENDING)))
#: the rows news names (statements built once, not per report or round)
_NAMED_ONE = select(*_REPORTED_COLUMNS).where(  # a callback: one row, found by the index
    *_UNSETTLED,
    Delivery.provider_id == bindparam("provider_id"),
    Delivery.recipient == bindparam("recipient"),
)
_NAMED = select(*_REPORTED_COLUMNS).where(
    *_UNSETTLED, Delivery.provider_id.in_(bindparam("ids", expanding=True))
)
_SETTLE = (
    update(Delivery)
    .where(Delivery.id.in_(bindparam("ids", expanding=True)))
    .values(state=bindparam("state"), updated_at=bindparam("now"))
)


@dataclass(frozen=True)
class Polled:
    """A Pending row a poller asks its provider about."""

    id: int
    provider_id: str
    recipient: str
    since: datetime  # when it became Pending


class DeliveryReports:
    """Providers' news in, clients' reports out, on the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: (next poll, row) of a batch of rows still Pending
        self._next_poll = (
            "UPDATE deliveries SET next_attempt_at = v.c0"
            f" FROM {store.batch_rows('timestamp', 'bigint')} WHERE deliveries.id = v.c1"
            f" AND {store.not_indexed('deliveries.state')} = '{PENDING}'"
        )

    def apply_updates(self, provider: str, updates: Sequence[StatusUpdate]) -> int:
        """A provider's news, in the order it came; returns how many rows changed. Final
        states never change again, news older than a row's state is ignored, and news
        without a recipient applies to every recipient of that provider id.

        A poll round may bring tens of thousands: they are written a few thousand per
        transaction, each durable at once, so a callback waiting for the database (SQLite
        has one writer) waits for one of those, not for the whole round."""
        return sum(
            self._apply(provider, updates[start : start + _PER_TRANSACTION])
            for start in range(0, len(updates), _PER_TRANSACTION)
        )

    def _apply(self, provider: str, updates: Sequence[StatusUpdate]) -> int:
        changed: dict[int, str] = {}  # row → its state after this news
        lines: list[tuple[int, str, str]] = []
        with self.store.transaction() as db:
            for chunk in _chunks(updates):
                rows: dict[str, dict[int, str]] = {}  # provider id → its rows' recipients
                for row_id, provider_id, recipient, state in self._named(db, provider, chunk):
                    changed.setdefault(row_id, state)
                    rows.setdefault(provider_id, {})[row_id] = recipient
                for news in chunk:
                    allowed_from = _ALLOWED_FROM.get(news.state.value, ())
                    detail = news.detail or f"reported by {provider}"
                    for row_id, recipient in rows.get(news.provider_id, {}).items():
                        if news.recipient and recipient != news.recipient:
                            continue
                        if changed[row_id] in allowed_from:
                            changed[row_id] = news.state.value
                            lines.append((row_id, news.state.value, detail))
            moved = {row for row, _state, _detail in lines}
            by_state: dict[str, list[int]] = {}
            for row in moved:
                by_state.setdefault(changed[row], []).append(row)
            now = utcnow()
            for state, ids in by_state.items():
                for part in _chunks(ids):
                    db.execute(_SETTLE, {"ids": part, "state": state, "now": now})
            record_event_lines(db, lines)
        return len(moved)

    @staticmethod
    def _named(
        db: Connection, provider: str, news: Sequence[StatusUpdate]
    ) -> Sequence[Row[int, Any, str, str]]:  # id, provider id (not NULL here), recipient, state
        """The unsettled rows that ``news`` speaks of (for a poll round, every recipient of
        each provider id: the caller matches recipients). Statements built and compiled
        once: a callback's one row by its index entry; a round's ids in one expanding IN,
        a provider id naming one call's rows (at most the provider's ``max_batch``)."""
        if len(news) == 1 and news[0].recipient:  # a callback
            one = {"provider": provider, "provider_id": news[0].provider_id}
            return db.execute(_NAMED_ONE, {**one, "recipient": news[0].recipient}).all()
        ids = list({n.provider_id for n in news})
        return db.execute(_NAMED, {"provider": provider, "ids": ids}).all()

    def due_for_polling(self, provider: str, limit: int) -> list[Polled]:
        """``provider``'s Pending rows whose next poll is due, the longest due first."""
        with self.store.reader.connect() as db:
            rows = db.execute(
                select(Delivery.id, Delivery.provider_id, Delivery.recipient, Delivery.updated_at)
                .where(
                    Delivery.provider == provider,
                    Delivery.state == PENDING,
                    Delivery.next_attempt_at <= utcnow(),
                )
                .order_by(Delivery.next_attempt_at)
                .limit(limit)
            )
            return [Polled(r.id, r.provider_id or "", r.recipient, r.updated_at) for r in rows]

    def polled(self, rows: Sequence[Polled], interval: float) -> None:
        """Rows asked about that are still Pending: ask again after half the time they
        have waited so far (at least ``interval``, at most :data:`MAX_POLL_INTERVAL`), so
        a provider that never answers for a row is asked less and less often."""
        if not rows:
            return
        now, store = utcnow(), self.store
        values = [
            (
                store.stamp(
                    now
                    + timedelta(
                        seconds=min(
                            MAX_POLL_INTERVAL,
                            max(interval, (now - row.since).total_seconds() / 2),
                        )
                    )
                ),
                row.id,
            )
            for row in rows
        ]
        with store.raw_transaction() as db:  # one statement for the batch, as outcomes
            db.execute(self._next_poll, (store.batch_param(values),))

    def unnotified(self, limit: int) -> list[tuple[int, str, str, str, str]]:
        """Final rows whose message asked for a delivery report that was not sent yet:
        (delivery id, dlr_url, message id, recipient, state)."""
        with self.store.reader.connect() as db:
            rows = db.execute(
                select(
                    Delivery.id,
                    Message.dlr_url,
                    Delivery.message_id,
                    Delivery.recipient,
                    Delivery.state,
                )
                .join(Message, Message.id == Delivery.message_id)
                .where(
                    Delivery.notified == False,  # noqa: E712 - the partial index's own term
                    Delivery.state.in_((DELIVERED, FAILED)),
                )
                .limit(limit)
            )
            # the select's column types, which tuple() does not carry
            return cast(list[tuple[int, str, str, str, str]], [tuple(r) for r in rows])

    def mark_notified(self, ids: Sequence[int]) -> None:
        with self.store.transaction() as db:
            db.execute(update(Delivery).where(Delivery.id.in_(ids)).values(notified=True))


def _chunks(items: Sequence[T]) -> list[Sequence[T]]:
    return [items[start : start + _CHUNK] for start in range(0, len(items), _CHUNK)]
