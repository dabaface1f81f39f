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
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select, update

from smsxml.server.clock import utcnow
from smsxml.server.models import Delivery, Message
from smsxml.server.queue import record_events
from smsxml.status import DeliveryState

if TYPE_CHECKING:
    from smsxml.server.store import Store

__all__ = ["DeliveryReports", "Polled"]

QUEUED, PENDING = DeliveryState.QUEUED.value, DeliveryState.PENDING.value
DELIVERED, FAILED = DeliveryState.DELIVERED.value, DeliveryState.FAILED.value
#: the longest wait between two polls of a row that stays Pending
MAX_POLL_INTERVAL = 600.0

_NEXT_POLL = (
    update(Delivery)
    .where(Delivery.id == bindparam("row"), Delivery.state == PENDING)
    .values(next_attempt_at=bindparam("due"))
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

    def apply_update(
        self,
        provider: str,
        provider_id: str,
        state: DeliveryState,
        *,
        recipient: str | None = None,
        detail: str = "",
    ) -> int:
        """A provider's news about a message; returns how many rows changed. Final
        states never change again, and news older than the row's state is ignored."""
        allowed_from = {
            PENDING: (QUEUED,),
            DELIVERED: (QUEUED, PENDING),
            FAILED: (QUEUED, PENDING),
        }.get(state.value, ())
        if not allowed_from:
            return 0
        where = [
            Delivery.provider == provider,
            Delivery.provider_id == provider_id,
            Delivery.state.in_(allowed_from),
        ]
        if recipient:
            where.append(Delivery.recipient == recipient)
        with self.store.transaction() as db:
            ids = list(db.execute(select(Delivery.id).where(*where)).scalars())
            if ids:
                db.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(ids))
                    .values(state=state.value, updated_at=utcnow())
                )
                record_events(db, ids, state.value, detail or f"reported by {provider}")
        return len(ids)

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
        now = utcnow()
        values = [
            {
                "row": row.id,
                "due": now
                + timedelta(
                    seconds=min(
                        MAX_POLL_INTERVAL,
                        max(interval, (now - row.since).total_seconds() / 2),
                    )
                ),
            }
            for row in rows
        ]
        with self.store.transaction() as db:
            db.execute(_NEXT_POLL, values)

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
            return [tuple(r) for r in rows]

    def mark_notified(self, ids: Sequence[int]) -> None:
        with self.store.transaction() as db:
            db.execute(update(Delivery).where(Delivery.id.in_(ids)).values(notified=True))
