"""A message's life in the store as a Hypothesis state machine: accepted → claimed → sent →
reported → final, with workers that crash (their leases run out) and rounds that end in a
retry, in any order Hypothesis finds. The model says what ``query`` must answer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import time_machine
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from smsxml.providers.base import StatusUpdate
from smsxml.server.queue import Claimed, Outcomes
from smsxml.server.store import Store
from smsxml.status import DeliveryState

from .conftest import queue_send

LEASE = 10.0
WORKERS = ("node-a", "node-b")
PROVIDER = "isms"
#: any fixed moment: the clock is the test's, only the intervals matter
START = datetime(2030, 1, 1, tzinfo=UTC)


class MessageLife(RuleBasedStateMachine):
    """Two workers share one store; the model holds each recipient's expected state."""

    def __init__(self) -> None:
        super().__init__()
        self._folder = TemporaryDirectory()
        self._clock = time_machine.travel(START, tick=False)
        self.clock = self._clock.start()
        self.store = Store(f"sqlite:///{Path(self._folder.name) / 'life.sqlite3'}")
        self.account = self.store.accounts.add("acme", "pw", 10_000)
        self.expected: dict[tuple[str, str], str] = {}  # (message, recipient) → state
        self.in_hand: dict[str, dict[int, Claimed]] = {worker: {} for worker in WORKERS}
        self.pending: dict[int, tuple[str, str, str]] = {}  # row → message, recipient, id
        self.numbers = iter(f"3069{n:08d}" for n in range(10**8))

    def teardown(self) -> None:
        self.store.close()
        self._clock.stop()
        self._folder.cleanup()

    def _held(self) -> list[tuple[str, Claimed]]:
        return [(w, row) for w, rows in self.in_hand.items() for row in rows.values()]

    @rule(count=st.integers(1, 4))
    def accept(self, count: int) -> None:
        recipients = [next(self.numbers) for _ in range(count)]
        message_id = queue_send(self.store, self.account, recipients)
        for recipient in recipients:
            self.expected[(message_id, recipient)] = DeliveryState.QUEUED.value

    @rule(worker=st.sampled_from(WORKERS), limit=st.integers(1, 5))
    def claim(self, worker: str, limit: int) -> None:
        rows = self.store.queue.claim(worker, limit, lease=LEASE)
        held = {row.id for _w, row in self._held()}
        for row in rows:
            assert row.id not in held, f"row {row.id} claimed while another worker holds it"
            assert self.expected[(row.message_id, row.recipient)] == "Queued"
            self.in_hand[worker][row.id] = row

    @precondition(lambda self: self._held())
    @rule(pick=st.integers(0, 10**6), outcome=st.sampled_from(["accepted", "failed", "retried"]))
    def send(self, pick: int, outcome: str) -> None:
        held = self._held()
        worker, row = held[pick % len(held)]
        del self.in_hand[worker][row.id]
        key = (row.message_id, row.recipient)
        if outcome == "accepted":
            provider_id = f"P{row.id}"
            self.store.queue.record(Outcomes(accepted=[(row.id, PROVIDER, provider_id)]))
            self.expected[key] = "Pending"
            self.pending[row.id] = (row.message_id, row.recipient, provider_id)
        elif outcome == "failed":
            self.store.queue.record(Outcomes(failed=[(row.id, "refused")]))
            self.expected[key] = "Failed"
        else:  # the provider failed for now: back in the queue at once
            self.store.queue.record(Outcomes(retried=[(row.id, 0.0, (), "HTTP 503", False)]))

    @precondition(lambda self: self._held())
    @rule()
    def crash(self) -> None:
        """Every worker dies with its rows in hand; their leases run out."""
        for rows in self.in_hand.values():
            rows.clear()
        self.clock.shift(LEASE + 1)

    @precondition(lambda self: self.pending)
    @rule(pick=st.integers(0, 10**6), delivered=st.booleans())
    def report(self, pick: int, delivered: bool) -> None:
        row = sorted(self.pending)[pick % len(self.pending)]
        message_id, recipient, provider_id = self.pending.pop(row)
        state = DeliveryState.DELIVERED if delivered else DeliveryState.FAILED
        news = StatusUpdate(provider_id, state, recipient)
        assert self.store.reports.apply_updates(PROVIDER, [news]) == 1
        self.expected[(message_id, recipient)] = state.value
        late = StatusUpdate(provider_id, DeliveryState.PENDING, recipient)  # out of order
        assert self.store.reports.apply_updates(PROVIDER, [late]) == 0

    @invariant()
    def query_answers_the_model(self) -> None:
        for (message_id, recipient), state in self.expected.items():
            assert self.store.status(self.account.id, message_id, recipient) == state


MessageLife.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
test_a_message_life = MessageLife.TestCase
