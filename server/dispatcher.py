"""Dispatch: workers take due rows from the store, route them, batch them, send them.

One round of a row tries its route's providers in order (failover); a provider that
fails (temporarily or for every recipient: credentials, credit, outage) is skipped for
the rest of the round. When every provider of the route failed, the row waits with
exponential backoff and a new round starts, until ``max_attempts`` rounds: then it ends
``Failed`` with the last reason. A recipient a provider refuses as invalid ends
``Failed`` at once.

A send whose answer never came (:class:`~smsxml.errors.OutcomeUnknown`) is retried like
a temporary failure: delivery is at least once — a rare duplicate SMS is preferred to a
lost one. The per-provider rate limit is a token bucket shared by this process' workers;
under gunicorn one worker of a node dispatches (``smsxml.server.wsgi``), so it holds per
node.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from smsxml.errors import InvalidRecipient, OutcomeUnknown, PermanentFailure, ProviderError
from smsxml.providers.base import OutgoingMessage, Provider
from smsxml.server.background import Background
from smsxml.server.metrics import Metrics
from smsxml.server.routing import Routes
from smsxml.server.settings import DispatchSettings
from smsxml.server.store import Claimed, Store

__all__ = ["Dispatcher", "RateLimiter"]

log = logging.getLogger("smsxml.server.dispatch")


class RateLimiter:
    """A token bucket: ``rate`` messages per second, bursts up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = rate
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self, count: int, stop: threading.Event) -> bool:
        """Wait until ``count`` messages may go; False if ``stop`` was set meanwhile."""
        if self.rate <= 0:
            return True
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= min(count, self.rate):
                    self._tokens -= count
                    return True
                wait = (min(count, self.rate) - self._tokens) / self.rate
            if stop.wait(wait):
                return False


class Dispatcher(Background):
    """Worker threads moving rows from Queued to Pending (or Failed)."""

    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        routes: Routes,
        settings: DispatchSettings,
        *,
        rate_limits: Mapping[str, float] | None = None,
        callback_url: Callable[[str], str | None] = lambda provider: None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.routes = routes
        self.settings = settings
        self.callback_url = callback_url
        self.metrics = metrics or Metrics()
        self.limiters = {
            name: RateLimiter((rate_limits or {}).get(name, 0.0)) for name in providers
        }
        super().__init__()
        self._owner = f"{os.uname().nodename}:{os.getpid()}"

    # lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        for index in range(self.settings.workers):
            self.spawn(f"dispatch-{index}", self._work, f"{self._owner}:{index}")

    def _work(self, owner: str) -> None:
        while not self.stopping.is_set():
            try:
                handled = self.run_once(owner)
            except Exception:  # a bug must not kill the worker; the lease frees the rows
                log.exception("dispatch round failed")
                handled = 0
            if not handled:
                self.stopping.wait(self.settings.idle)

    # one round --------------------------------------------------------------------------

    def run_once(self, owner: str = "test") -> int:
        """Claim a batch of due rows and send them; returns how many were claimed."""
        rows = self.store.claim(owner, self.settings.batch, self.settings.lease)
        # rows of one message may have failed over differently: a group shares its tried list
        groups: dict[tuple[str, str, tuple[str, ...]], list[Claimed]] = defaultdict(list)
        for row in rows:
            route = self.routes.providers_for(row.recipient)
            remaining = [name for name in route if name not in row.tried]
            if not route:
                self._round_failed([row], "no route for this number")
            elif not remaining:
                self._round_failed([row], row.reason or "every provider failed")
            else:
                groups[(row.message_id, remaining[0], row.tried)].append(row)
        for (_message, provider, _tried), group in groups.items():
            if self.stopping.is_set():
                self.store.release([row.id for row in group])
                continue
            client = self.providers[provider]
            size = max(1, client.max_batch)
            for start in range(0, len(group), size):
                self._send(provider, client, group[start : start + size])
        return len(rows)

    def _send(self, name: str, client: Provider, rows: list[Claimed]) -> None:
        if not self.limiters[name].take(len(rows), self.stopping):
            self.store.release([row.id for row in rows])
            return
        first = rows[0]
        message = OutgoingMessage(
            sender=first.sender,
            recipients=[row.recipient for row in rows],
            text=first.text,
            unicode=first.coding == "UTF-8",
            flash=first.flash,
            dlr_url=self.callback_url(name),
        )
        started = time.perf_counter()
        try:
            accepted = client.send(message)
        except InvalidRecipient as error:
            self.metrics.outcomes.labels(name, "permanent").inc()
            if len(rows) == 1:
                self.store.mark_failed([first.id], f"{name}: {error.text}")
            else:  # which one? ask again one by one
                for row in rows:
                    self._send(name, client, [row])
            return
        except PermanentFailure as error:
            self.metrics.outcomes.labels(name, "permanent").inc()
            self._failover(name, rows, str(error))
            return
        except ProviderError as error:
            outcome = "unknown" if isinstance(error, OutcomeUnknown) else "temporary"
            self.metrics.outcomes.labels(name, outcome).inc()
            self._failover(name, rows, str(error))
            return
        except Exception as error:  # a malformed answer or a bug in a client
            log.exception("provider %s failed unexpectedly", name)
            self.metrics.outcomes.labels(name, "temporary").inc()
            self._failover(name, rows, f"{name}: {type(error).__name__}")
            return
        finally:
            self.metrics.dispatch.labels(name).observe(time.perf_counter() - started)
        self.metrics.outcomes.labels(name, "accepted").inc()
        by_recipient = {row.recipient: row for row in rows}
        pending = [
            (by_recipient[s.recipient].id, s.provider_id)
            for s in accepted
            if s.recipient in by_recipient
        ]
        if pending:
            self.store.mark_pending(pending, name)
        refused = [row for row in rows if row.recipient not in {s.recipient for s in accepted}]
        if refused:
            self._failover(name, refused, f"{name}: recipient not accepted")

    def _failover(self, name: str, rows: Sequence[Claimed], reason: str) -> None:
        """Skip ``name`` for these rows this round: they go straight back to the queue."""
        log.warning("provider %s failed for %d row(s): %s", name, len(rows), reason)
        tried = (*rows[0].tried, name)
        self.store.retry_later([r.id for r in rows], 0.0, tried, reason, count_attempt=False)

    def _round_failed(self, rows: Sequence[Claimed], reason: str) -> None:
        """Every provider failed: back off, or fail the rows after the last round."""
        settings = self.settings
        last = [r.id for r in rows if r.attempts + 1 >= settings.max_attempts]
        again = [r for r in rows if r.attempts + 1 < settings.max_attempts]
        if last:
            self.store.mark_failed(last, f"gave up after {settings.max_attempts} rounds: {reason}")
        for attempts, group in itertools.groupby(
            sorted(again, key=lambda r: r.attempts), key=lambda r: r.attempts
        ):
            delay = min(settings.max_backoff, settings.backoff * 2**attempts)
            self.store.retry_later([r.id for r in group], delay, (), reason)
