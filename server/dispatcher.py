"""Dispatch: rows go from the queue to providers, many requests in flight per provider.

Three kinds of threads share one process's dispatch:

- the **claimer** takes due rows from the queue while fewer than ``in_hand`` rows are with
  this process, routes them, and groups them into sends: rows of one message to one
  provider, up to the provider's ``max_batch`` recipients a call;
- each provider's **senders** (``concurrency`` threads, a keep-alive connection each)
  make the calls, within the provider's rate limit;
- the **recorder** writes the outcomes of everything that finished meanwhile in one
  transaction, and the **heartbeat** renews the lease of the rows still in hand, so that
  a short lease frees a dead process's rows within seconds. The two take turns: in one
  transaction each, they would lock the same rows in different orders (a deadlock).

A call starts only while a quarter of its rows' lease is left. The heartbeat renews every
third of the lease, so a healthy dispatcher always has two thirds; less means renewing
has been failing, and another dispatcher may claim the rows once the lease runs out: the
rows are left to that claim, not sent from here too.

One round of a row tries its route's providers in order (failover); a provider that
fails (temporarily or for every recipient: credentials, credit, outage) is skipped for
the rest of the round. When every provider of the route failed, the row waits with
exponential backoff and a new round starts, until ``max_attempts`` rounds: then it ends
``Failed`` with the last reason. A recipient a provider refuses as invalid ends
``Failed`` at once. A provider that says "too many requests" with ``Retry-After`` keeps
the row: it waits that long and goes back to the same provider, and that provider's
other sends wait too.

Each provider's ``rate_limit`` holds across every node: live dispatchers register with a
heartbeat, and each takes its share of the limit.

A send whose answer never came (:class:`~smsxml.errors.OutcomeUnknown`) is retried like
a temporary failure: delivery is at least once — a rare duplicate SMS is preferred to a
lost one (docs/bridge.md, "Crash semantics").
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from smsxml.errors import (
    InvalidRecipient,
    OutcomeUnknown,
    PermanentFailure,
    ProviderError,
    RateLimited,
)
from smsxml.providers.base import OutgoingMessage, Provider
from smsxml.server.background import Background
from smsxml.server.metrics import Metrics
from smsxml.server.queue import Claimed, Claims, Outcomes
from smsxml.server.routing import Routes
from smsxml.server.settings import DispatchSettings
from smsxml.server.store import Store

__all__ = ["Dispatcher", "RateLimiter"]

log = logging.getLogger("smsxml.server.dispatch")
#: how long a row waits when a provider says 429 without a usable Retry-After
DEFAULT_RETRY_AFTER = 1.0
#: the part of a lease a call may start in (see the module's docstring)
LEASE_USABLE = 0.75


class RateLimiter:
    """A token bucket: ``rate`` messages per second, bursts up to one second's worth;
    :meth:`share` divides the rate among the dispatchers of every node, :meth:`hold`
    pauses it (a provider's Retry-After)."""

    def __init__(self, rate: float) -> None:
        self.limit = rate  # for the whole cluster
        self.rate = rate  # this process's share
        self._tokens = rate
        self._last = time.monotonic()
        self._held_until = 0.0
        self._lock = threading.Lock()

    def share(self, dispatchers: int) -> None:
        with self._lock:
            self.rate = self.limit / max(1, dispatchers)
            self._tokens = min(self._tokens, self.rate)

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._held_until = max(self._held_until, time.monotonic() + seconds)

    def take(self, count: int, stop: threading.Event) -> bool:
        """Wait until ``count`` messages may go; False if ``stop`` was set meanwhile."""
        while True:
            with self._lock:
                now = time.monotonic()
                wait = self._held_until - now
                if wait <= 0 and self.rate <= 0:
                    return True
                if wait <= 0:
                    self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
                    self._last = now
                    if self._tokens >= min(count, self.rate):
                        self._tokens -= count
                        return True
                    wait = (min(count, self.rate) - self._tokens) / self.rate
            if stop.wait(wait):
                return False


class _Figures:
    """What the senders measure, kept in plain Python and published to Prometheus by the
    recorder alone: prometheus_client's multiprocess values share one lock per process,
    and dozens of senders taking it on every call queued up behind the GIL (dispatch ran
    at a quarter of its speed)."""

    def __init__(self, metrics: Metrics, providers: Sequence[str]) -> None:
        self.metrics = metrics
        self.in_flight = dict.fromkeys(providers, 0)
        self.waiting = dict.fromkeys(providers, 0)  # rows held by a rate limit
        self._calls: list[tuple[str, str, float]] = []  # provider, outcome, seconds
        self._lock = threading.Lock()

    def add(self, gauge: dict[str, int], provider: str, amount: int) -> None:
        with self._lock:
            gauge[provider] += amount

    def call(self, provider: str, outcome: str, seconds: float) -> None:
        with self._lock:
            self.in_flight[provider] -= 1
            self._calls.append((provider, outcome, seconds))

    def publish(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, []
            in_flight, waiting = dict(self.in_flight), dict(self.waiting)
        metrics = self.metrics
        for provider, outcome, seconds in calls:
            metrics.dispatch.labels(provider).observe(seconds)
            metrics.outcomes.labels(provider, outcome).inc()
        for provider, count in in_flight.items():
            metrics.in_flight.labels(provider).set(count)
        for provider, count in waiting.items():
            metrics.rate_limited.labels(provider).set(count)


@dataclass(frozen=True)
class _Send:
    """One provider call's worth of rows: one message's text, one provider."""

    provider: str
    rows: list[Claimed]


class Dispatcher(Background):
    """Moves rows from Queued to Pending (or Failed), many calls in flight per provider."""

    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        routes: Routes,
        settings: DispatchSettings,
        *,
        rate_limits: Mapping[str, float] | None = None,
        concurrency: Mapping[str, int] | None = None,
        callback_url: Callable[[str], str | None] = lambda provider: None,
        first_polls: Mapping[str, float] | None = None,
        metrics: Metrics | None = None,
        claims: Claims | None = None,
    ) -> None:
        """``first_polls``: seconds from a provider's acceptance to the first status poll
        of the row, per provider (default: at once); ``claims``: where claims and outcomes
        go (default: the store's queue, in this process)."""
        self.store = store
        self.queue = claims or store.queue
        self.providers = providers
        self.routes = routes
        self.settings = settings
        self.callback_url = callback_url
        self.first_polls = dict(first_polls or {})
        self.metrics = metrics or Metrics()
        self.figures = _Figures(self.metrics, list(providers))
        self.limiters = {
            name: RateLimiter((rate_limits or {}).get(name, 0.0)) for name in providers
        }
        self.concurrency = {name: (concurrency or {}).get(name, 1) for name in providers}
        super().__init__()
        # unique per process start: a restarted process must not renew its old leases
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{secrets.token_hex(3)}"
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._done: queue.SimpleQueue[Outcomes] = queue.SimpleQueue()
        #: the rows with this process: when their call must have started by (monotonic)
        self._in_hand: dict[int, float] = {}
        self._room = threading.Condition()
        self._writing = threading.Lock()  # the recorder's and the heartbeat's turns

    # lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self.settings.workers <= 0:
            return
        self._pools = {
            name: ThreadPoolExecutor(self.concurrency[name], thread_name_prefix=f"send-{name}")
            for name in self.providers
        }
        try:
            self.share_rate_limits()  # before the first claim, not a heartbeat later
        except Exception:
            log.exception("could not register this dispatcher")
        self.spawn("dispatch-claim", self._claim_loop)
        self.spawn("dispatch-record", self._record_loop)
        self.spawn("dispatch-lease", self._lease_loop)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; calls in flight finish and their outcomes are recorded, rows not
        yet sent are given back (leases renewed until then)."""
        self.stopping.set()
        with self._room:
            self._room.notify_all()
        for pool in self._pools.values():
            pool.shutdown(wait=True)
        super().stop(timeout)
        self._flush()

    @property
    def rows_in_hand(self) -> int:
        """Rows claimed and not yet recorded or left."""
        with self._room:
            return len(self._in_hand)

    # the claimer ------------------------------------------------------------------------

    def _claim_loop(self) -> None:
        limit = max(1, self.settings.in_hand)
        while not self.stopping.is_set():
            with self._room:
                while len(self._in_hand) >= limit and not self.stopping.is_set():
                    self._room.wait(0.5)
                room = limit - len(self._in_hand)
            if self.stopping.is_set():
                break
            started = time.monotonic()
            try:
                rows = self.queue.claim(
                    self.owner, min(room, self.settings.batch), self.settings.lease
                )
            except Exception:  # the database away: try again, the leases protect the rows
                log.exception("claiming rows failed")
                rows = []
            if not rows:
                self.stopping.wait(self.settings.idle)
                continue
            send_by = started + LEASE_USABLE * self.settings.lease
            with self._room:  # a row still here whose lease ran out is not sent twice
                rows = [row for row in rows if row.id not in self._in_hand]
                self._in_hand.update((row.id, send_by) for row in rows)
            sends, outcomes = self.plan(rows)
            if len(outcomes):
                self._done.put(outcomes)
            for send in sends:
                try:
                    self._pools[send.provider].submit(self._send_and_report, send)
                except RuntimeError:  # stopping: the pool takes no more
                    self._done.put(Outcomes(released=[row.id for row in send.rows]))

    def _send_and_report(self, send: _Send) -> None:
        if self.stopping.is_set():  # shutting down: what has not gone out goes back
            self._done.put(Outcomes(released=[row.id for row in send.rows]))
            return
        try:
            outcomes = self.send(send)
        except Exception:  # a bug: the rows go back to the queue at once
            log.exception("sending to %s failed unexpectedly", send.provider)
            outcomes = Outcomes(released=[row.id for row in send.rows])
        self._done.put(outcomes)

    # the recorder and the heartbeat -------------------------------------------------------

    def _record_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                first = self._done.get(timeout=0.2)
            except queue.Empty:
                self.figures.publish()  # calls in flight, rows waiting: kept current
                continue
            self._record(first)

    def _record(self, first: Outcomes) -> None:
        batch = first
        while len(batch) < 5000:
            try:
                batch.add(self._done.get_nowait())
            except queue.Empty:
                break
        self.figures.publish()  # before the rows change: what a reader sees is counted
        while True:
            try:
                with self._writing:
                    self.queue.record(batch, first_polls=self.first_polls)
                break
            except Exception:  # the database away: the rows stay leased to us meanwhile
                log.exception("recording %d outcomes failed; trying again", len(batch))
                if self.stopping.wait(1.0):
                    return  # their leases run out: the rows are sent again (at least once)
        with self._room:
            for row in batch.rows():
                self._in_hand.pop(row, None)
            self._room.notify_all()

    def _flush(self) -> None:
        """Record what finished after the recorder stopped, and give back what is left."""
        outcomes = Outcomes()
        while True:
            try:
                outcomes.add(self._done.get_nowait())
            except queue.Empty:
                break
        outcomes.released += sorted(self._in_hand.keys() - outcomes.rows())
        if len(outcomes):
            self._record(outcomes)
        self.figures.publish()

    def _lease_loop(self) -> None:
        """The heartbeat: renew the leases of the rows in hand, and share each provider's
        rate limit among the dispatchers seen alive."""
        lease = self.settings.lease
        interval = max(0.05, lease / 3)
        while True:
            try:
                self.share_rate_limits()
                with self._room:
                    held = sorted(self._in_hand)
                for start in range(0, len(held), 1000):
                    chunk = held[start : start + 1000]
                    started = time.monotonic()
                    with self._writing:
                        self.queue.renew(self.owner, chunk, lease)
                    with self._room:
                        for row in chunk:
                            if row in self._in_hand:
                                self._in_hand[row] = started + LEASE_USABLE * lease
            except Exception:
                log.exception("renewing leases failed")
            if self.stopping.wait(interval):
                break
        try:
            self.queue.leave(self.owner)
        except Exception:
            log.warning("could not unregister this dispatcher", exc_info=True)

    def share_rate_limits(self) -> None:
        if any(limiter.limit > 0 for limiter in self.limiters.values()):
            dispatchers = self.queue.heartbeat(self.owner, self.settings.lease)
            for limiter in self.limiters.values():
                limiter.share(dispatchers)

    # one round, in the calling thread (tests, tools) ----------------------------------------

    def run_once(self) -> int:
        """Claim a batch, send it here, record the outcomes; returns how many rows."""
        rows = self.queue.claim(self.owner, self.settings.batch, self.settings.lease)
        sends, outcomes = self.plan(rows)
        for send in sends:
            outcomes.add(self.send(send))
        self.figures.publish()
        self.queue.record(outcomes, first_polls=self.first_polls)
        return len(rows)

    # planning and sending -------------------------------------------------------------------

    def plan(self, rows: Sequence[Claimed]) -> tuple[list[_Send], Outcomes]:
        """Route claimed rows: the sends to make, and the rows whose round is over."""
        outcomes = Outcomes()
        # rows of one message may have failed over differently: a group shares its tried list
        groups: dict[tuple[str, str, tuple[str, ...]], list[Claimed]] = defaultdict(list)
        for row in rows:
            route = self.routes.providers_for(row.recipient)
            remaining = [name for name in route if name not in row.tried]
            if not route:
                self._round_failed(outcomes, [row], "no route for this number")
            elif not remaining:
                self._round_failed(outcomes, [row], row.reason or "every provider failed")
            else:
                groups[(row.message_id, remaining[0], row.tried)].append(row)
        sends = []
        for (_message, provider, _tried), group in groups.items():
            size = max(1, self.providers[provider].max_batch)
            sends += [
                _Send(provider, group[start : start + size]) for start in range(0, len(group), size)
            ]
        return sends, outcomes

    def send(self, send: _Send) -> Outcomes:
        """One provider call for ``send``'s rows, and what became of each."""
        name, rows, outcomes = send.provider, send.rows, Outcomes()
        figures = self.figures
        figures.add(figures.waiting, name, len(rows))
        try:
            may_go = self.limiters[name].take(len(rows), self.stopping)
        finally:
            figures.add(figures.waiting, name, -len(rows))
        if not may_go:
            outcomes.released += [row.id for row in rows]
            return outcomes
        rows = self._still_leased(name, rows)
        if not rows:
            return outcomes
        first = rows[0]
        message = OutgoingMessage(
            sender=first.sender,
            recipients=[row.recipient for row in rows],
            text=first.text,
            unicode=first.coding == "UTF-8",
            flash=first.flash,
            dlr_url=self.callback_url(name),
        )
        outcome = "accepted"
        figures.add(figures.in_flight, name, 1)
        started = time.perf_counter()
        try:
            accepted = self.providers[name].send(message)
        except InvalidRecipient as error:
            outcome = "permanent"
            if len(rows) == 1:
                outcomes.failed.append((first.id, f"{name}: {error.text}"))
            else:  # which one? ask again one by one
                for row in rows:
                    outcomes.add(self.send(_Send(name, [row])))
            return outcomes
        except RateLimited as error:
            outcome = "rate_limited"
            wait = error.retry_after if error.retry_after is not None else DEFAULT_RETRY_AFTER
            self.limiters[name].hold(wait)
            outcomes.retried += [(row.id, wait, row.tried, str(error), False) for row in rows]
            return outcomes
        except PermanentFailure as error:
            outcome = "permanent"
            self._failover(outcomes, name, rows, str(error))
            return outcomes
        except ProviderError as error:
            outcome = "unknown" if isinstance(error, OutcomeUnknown) else "temporary"
            self._failover(outcomes, name, rows, str(error))
            return outcomes
        except Exception as error:  # a malformed answer or a bug in a client
            log.exception("provider %s failed unexpectedly", name)
            outcome = "temporary"
            self._failover(outcomes, name, rows, f"{name}: {type(error).__name__}")
            return outcomes
        finally:
            figures.call(name, outcome, time.perf_counter() - started)
        by_recipient = {row.recipient: row for row in rows}
        outcomes.accepted += [
            (by_recipient[s.recipient].id, name, s.provider_id)
            for s in accepted
            if s.recipient in by_recipient
        ]
        taken = {s.recipient for s in accepted}
        refused = [row for row in rows if row.recipient not in taken]
        if refused:
            self._failover(outcomes, name, refused, f"{name}: recipient not accepted")
        return outcomes

    def _still_leased(self, name: str, rows: list[Claimed]) -> list[Claimed]:
        """``rows`` whose lease leaves time for a call; the others are no longer in hand
        (no write: their lease runs out, and the next claim, anyone's, takes them)."""
        now = time.monotonic()
        with self._room:
            lapsed = [row for row in rows if self._in_hand.get(row.id, now + 1) <= now]
            if not lapsed:
                return rows
            for row in lapsed:
                del self._in_hand[row.id]
            self._room.notify_all()
        log.warning(
            "%d row(s) for %s left unsent: their lease may run out (renewing failed)",
            len(lapsed),
            name,
        )
        gone = {row.id for row in lapsed}
        return [row for row in rows if row.id not in gone]

    def _failover(
        self, outcomes: Outcomes, name: str, rows: Sequence[Claimed], reason: str
    ) -> None:
        """Skip ``name`` for these rows this round: they go straight back to the queue."""
        log.warning("provider %s failed for %d row(s): %s", name, len(rows), reason)
        tried = (*rows[0].tried, name)
        outcomes.retried += [(row.id, 0.0, tried, reason, False) for row in rows]

    def _round_failed(self, outcomes: Outcomes, rows: Sequence[Claimed], reason: str) -> None:
        """Every provider failed: back off, or fail the rows after the last round."""
        settings = self.settings
        for row in rows:
            if row.attempts + 1 >= settings.max_attempts:
                outcomes.failed.append(
                    (row.id, f"gave up after {settings.max_attempts} rounds: {reason}")
                )
            else:
                delay = min(settings.max_backoff, settings.backoff * 2**row.attempts)
                outcomes.retried.append((row.id, delay, (), reason, True))
