"""The state every provider sandbox shares: accounts, messages, time, callbacks, faults.

A sandbox message lives through the common lifecycle Queued → Pending → Delivered or
Failed on the schedule of :class:`DeliverySchedule`; each provider module words those
states in its own vocabulary. States advance lazily from the clock (no thread needed
to read them); one background thread only POSTs delivery callbacks.
"""

from __future__ import annotations

import heapq
import hmac
import itertools
import logging
import random
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import httpx

from smsxml.status import DeliveryState

__all__ = [
    "PROVIDERS",
    "Account",
    "CallbackBuilder",
    "DeliverySchedule",
    "Faults",
    "Sandbox",
    "SandboxConfig",
    "SandboxMessage",
]

log = logging.getLogger(__name__)

PROVIDERS = ("net2sms", "easysms", "smspartner", "isms", "allmysms")
#: delivery callbacks POSTed at once, and how long each may take
CALLBACK_THREADS = 4
CALLBACK_TIMEOUT = 5.0


@dataclass
class Account:
    """One account on one sandboxed provider."""

    username: str
    password: str
    api_key: str
    credits: Decimal

    def __repr__(self) -> str:
        return f"Account({self.username!r}, credits={self.credits})"


@dataclass(frozen=True)
class DeliverySchedule:
    """When sandbox messages change state, in seconds after submission (or after their
    scheduled time), and which recipients fail: numbers ending in one of
    ``fail_suffixes``."""

    pending_after: float = 0.05
    final_after: float = 0.3
    fail_suffixes: tuple[str, ...] = ("0",)


@dataclass(frozen=True)
class Faults:
    """Fault injection for one provider, to rehearse outages.

    Rates are probabilities per request (1.0 = every request); ``error_count`` makes
    the next N requests fail with ``error_status`` whatever the rate.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    error_count: int = 0
    error_status: int = 503
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    rate_limit: float | None = None  # requests per second; above it: HTTP 429


@dataclass(frozen=True)
class SandboxConfig:
    """Everything a sandbox can be told: the demo account, the schedule, the faults."""

    username: str = "demo"
    password: str = "demo"
    api_key: str = "demo-key"
    credits: Decimal = Decimal("1000")
    schedule: DeliverySchedule = field(default_factory=DeliverySchedule)
    faults: dict[str, Faults] = field(default_factory=dict)
    seed: int | None = None

    @classmethod
    def from_toml(cls, path: str | Path) -> SandboxConfig:
        """Read ``[account]``, ``[schedule]`` and ``[faults.<provider>]`` tables."""
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        account = data.get("account", {})
        config = cls(
            username=account.get("username", "demo"),
            password=account.get("password", "demo"),
            api_key=account.get("api_key", "demo-key"),
            credits=Decimal(str(account.get("credits", "1000"))),
            schedule=DeliverySchedule(
                # TOML values, as the file gives them: the dataclass names what it takes
                **cast(
                    dict[str, Any],
                    {
                        k: tuple(v) if isinstance(v, list) else v
                        for k, v in data.get("schedule", {}).items()
                    },
                )
            ),
            faults={name: Faults(**values) for name, values in data.get("faults", {}).items()},
            seed=data.get("seed"),
        )
        unknown = set(config.faults) - set(PROVIDERS)
        if unknown:
            raise ValueError(f"unknown provider(s) in [faults]: {', '.join(sorted(unknown))}")
        return config

    def with_faults(self, provider: str, **changes: Any) -> SandboxConfig:
        faults = dict(self.faults)
        faults[provider] = replace(faults.get(provider, Faults()), **changes)
        return replace(self, faults=faults)


@dataclass
class SandboxMessage:
    """One message to one recipient, as a sandboxed provider holds it."""

    provider: str
    id: str
    username: str
    sender: str
    recipient: str
    text: str
    parts: int
    cost: Decimal
    unicode: bool = False
    flash: bool = False
    send_at: float = 0.0  # epoch seconds; later than created for scheduled messages
    dlr_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False
    reported: DeliveryState | None = None  # last state a status drain returned
    notified: DeliveryState | None = None  # last state POSTed to dlr_url


#: builds the delivery callback of one provider: (message, state) → (kind, payload) where
#: kind is "form" or "json"; None means "this state is not reported".
CallbackBuilder = Callable[[SandboxMessage, DeliveryState], tuple[str, dict[str, Any]] | None]


class Sandbox:
    """Accounts and messages of every sandboxed provider, safe to use from many threads."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.lock = threading.RLock()
        self.random = random.Random(self.config.seed)
        self.accounts: dict[str, dict[str, Account]] = {
            provider: {
                self.config.username: Account(
                    self.config.username,
                    self.config.password,
                    self.config.api_key,
                    self.config.credits,
                )
            }
            for provider in PROVIDERS
        }
        self.messages: dict[str, dict[str, list[SandboxMessage]]] = {p: {} for p in PROVIDERS}
        self.callbacks: dict[str, CallbackBuilder] = {}
        self.sent_callbacks: list[tuple[str, str, dict[str, Any]]] = []
        #: messages with a dlr_url whose final state is not yet POSTed, as a heap by the
        #: time of their next state change: the notifier looks only at those due, not at
        #: every message waiting (a load test leaves hundreds of thousands; scanning them
        #: 20 times a second held the lock most of the time, and answers waited on it)
        self._watched: list[tuple[float, int, SandboxMessage]] = []
        self._watch_order = itertools.count()
        self._counter = 0
        self._stop = threading.Event()
        self._notifier: threading.Thread | None = None

    # accounts -------------------------------------------------------------------------

    def login(self, provider: str, username: str | None, password: str | None) -> Account | None:
        account = self.accounts[provider].get(username or "")
        if account is None or password is None:
            return None
        return account if hmac.compare_digest(account.password, password) else None

    def by_key(self, provider: str, api_key: str | None) -> Account | None:
        if not api_key:
            return None
        return next((a for a in self.accounts[provider].values() if a.api_key == api_key), None)

    def charge(self, account: Account, amount: Decimal) -> bool:
        """Take ``amount`` from ``account``; False (and nothing taken) if it is short."""
        with self.lock:
            if account.credits < amount:
                return False
            account.credits -= amount
            return True

    # messages -------------------------------------------------------------------------

    def new_id(self, style: str = "digits") -> str:
        """A fresh id: ``digits`` (net2sms 1234567890), ``hex`` (iSMS I7I5R4HTAA-like) or
        ``uuid`` (allmysms)."""
        with self.lock:
            self._counter += 1
            n = self._counter
        if style == "hex":
            return f"{n:010X}"
        if style == "uuid":
            return f"{n:08x}-{self.random.getrandbits(16):04x}-11e5-bf51-0025907cd72e"
        return str(1_000_000_000 + n)

    def add(self, message: SandboxMessage) -> SandboxMessage:
        with self.lock:
            self.messages[message.provider].setdefault(message.id, []).append(message)
            if message.dlr_url:
                self._watch(message, time.time())
        return message

    def cancel(self, message: SandboxMessage) -> None:
        """``message`` is cancelled: Failed from now on (a callback says so at once)."""
        with self.lock:
            message.cancelled = True
            if message.dlr_url:
                self._watch(message, time.time())

    def _watch(self, message: SandboxMessage, now: float) -> None:
        """Look at ``message`` again when the schedule next changes its state."""
        schedule = self.config.schedule
        elapsed = now - message.send_at
        if message.cancelled:
            change = elapsed
        elif elapsed < schedule.pending_after:
            change = schedule.pending_after
        else:
            change = schedule.final_after
        entry = (message.send_at + change, next(self._watch_order), message)
        heapq.heappush(self._watched, entry)

    def sent(self, provider: str) -> dict[str, int]:
        """How many messages ``provider`` took for each recipient (``GET /_sandbox/sent``:
        what a load test checks, e.g. that nothing went twice)."""
        counts: dict[str, int] = {}
        with self.lock:
            for messages in self.messages[provider].values():
                for message in messages:
                    counts[message.recipient] = counts.get(message.recipient, 0) + 1
        return counts

    def find(
        self, provider: str, message_id: str, recipient: str | None = None
    ) -> list[SandboxMessage]:
        with self.lock:
            found = self.messages[provider].get(message_id, [])
            return [m for m in found if recipient is None or m.recipient == recipient]

    def owned_by(self, provider: str, username: str) -> Iterator[SandboxMessage]:
        with self.lock:
            items = [m for ms in self.messages[provider].values() for m in ms]
        return (m for m in items if m.username == username)

    def state(self, message: SandboxMessage, now: float | None = None) -> DeliveryState:
        """Where ``message`` stands now, from the schedule."""
        if message.cancelled:
            return DeliveryState.FAILED
        elapsed = (time.time() if now is None else now) - message.send_at
        schedule = self.config.schedule
        if elapsed < schedule.pending_after:
            return DeliveryState.QUEUED
        if elapsed < schedule.final_after:
            return DeliveryState.PENDING
        if message.recipient.endswith(schedule.fail_suffixes):
            return DeliveryState.FAILED
        return DeliveryState.DELIVERED

    def drain(self, provider: str, username: str) -> list[tuple[SandboxMessage, DeliveryState]]:
        """Each state change since the last drain, once (net2sms/easysms status/get)."""
        changes: list[tuple[SandboxMessage, DeliveryState]] = []
        with self.lock:
            for message in self.owned_by(provider, username):
                state = self.state(message)
                if state is not DeliveryState.QUEUED and state is not message.reported:
                    message.reported = state
                    changes.append((message, state))
        return changes

    # delivery callbacks ---------------------------------------------------------------

    def start(self) -> None:
        """Start POSTing delivery callbacks (a daemon thread, stopped by :meth:`stop`)."""
        if self._notifier is None:
            self._stop.clear()
            self._notifier = threading.Thread(
                target=self._notify_loop, name="sandbox-callbacks", daemon=True
            )
            self._notifier.start()

    def stop(self) -> None:
        self._stop.set()
        if self._notifier is not None:
            self._notifier.join(timeout=5)
            self._notifier = None

    def _due_callbacks(self) -> list[tuple[SandboxMessage, DeliveryState, str, dict[str, Any]]]:
        due: list[tuple[SandboxMessage, DeliveryState, str, dict[str, Any]]] = []
        now = time.time()
        with self.lock:
            watched = self._watched
            while watched and watched[0][0] <= now:
                message = heapq.heappop(watched)[2]
                builder = self.callbacks.get(message.provider)
                if not message.dlr_url or builder is None:
                    continue  # its URL withdrawn (a deleted campaign), or no callbacks
                state = self.state(message, now)
                if state is not message.notified and state is not DeliveryState.QUEUED:
                    message.notified = state
                    built = builder(message, state)
                    if built is not None:
                        due.append((message, state, *built))
                if not state.final:  # a final state is POSTed once, then forgotten
                    self._watch(message, now)
        return due

    def _notify_loop(self) -> None:
        """POST each round's due callbacks from :data:`CALLBACK_THREADS` threads at once
        (one pooled client), as providers do; a message appears once a round, so its own
        reports stay in order."""
        with (
            httpx.Client(timeout=CALLBACK_TIMEOUT) as http,
            ThreadPoolExecutor(CALLBACK_THREADS, thread_name_prefix="sandbox-callback") as pool,
        ):

            def post(due: tuple[SandboxMessage, DeliveryState, str, dict[str, Any]]) -> None:
                message, _state, kind, payload = due
                url = message.dlr_url or ""
                try:
                    if kind == "json":
                        http.post(url, json=payload)
                    else:
                        http.post(url, data=payload)
                    self.sent_callbacks.append((message.provider, url, payload))
                except httpx.HTTPError as error:
                    log.warning("sandbox callback to %s failed: %s", url, error)

            while not self._stop.wait(0.05):
                list(pool.map(post, self._due_callbacks()))
