"""Delivery tracking: what providers say about sent messages reaches the store, and what
the store knows reaches clients that asked for reports.

- Polling: for each provider, its Pending rows due for a poll are asked about (iSMS
  query, SMS Partner multi-status, allmysms acks), or its "changed since last time" list
  is drained (net2sms, easysms); the answers map onto Queued/Pending/Delivered/Failed.
  A row that stays Pending is asked about less and less often. Each provider's polling,
  and the client reports, are done by one process at a time across every node sharing
  the database (:class:`~smsxml.server.cluster.Turn`).
- Callbacks: providers that POST delivery reports (iSMS dlr-url, SMS Partner urlDlr) are
  given ``<public url>/dlr/<provider>/<token>``; the token is an HMAC of the provider's
  name under a secret kept in the database (or the ``callback_token`` setting, for nodes
  on separate databases or a rotated secret), so it is unguessable, stable across
  restarts and nodes, and different per route. A callback without the right token is
  refused.
- Client reports: a send that gave ``dlr_url`` gets a form POST (``message_id``,
  ``mobile``, ``status``) when each recipient reaches a final state.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import socket
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx

from smsxml.providers.base import Provider, StatusUpdate, Submitted
from smsxml.server.background import Background
from smsxml.server.cluster import Turn
from smsxml.server.store import Store

__all__ = ["DeliveryTracker", "callback_token"]

log = logging.getLogger("smsxml.server.delivery")
#: attempts at POSTing a client's delivery report before giving up on it
REPORT_ATTEMPTS = 3
#: threads asking a provider that answers one message per call (iSMS query.php)
POLL_THREADS = 8


def callback_token(secret: str, provider: str) -> str:
    """The token in ``provider``'s callback URL."""
    return hmac.new(secret.encode(), provider.encode(), "sha256").hexdigest()[:32]


class DeliveryTracker(Background):
    """Pollers, the callback handler and the client-report notifier."""

    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        poll_intervals: Mapping[str, float],
        *,
        batch: int = 500,
        secret: str | None = None,
        private_reports: bool = False,
    ) -> None:
        """``secret`` (the ``callback_token`` setting) replaces the one kept in the database;
        ``private_reports`` (``dlr_private_addresses``) lets client reports reach
        non-public addresses."""
        self.private_reports = private_reports
        self.store = store
        self.providers = providers
        self.poll_intervals = poll_intervals
        self.batch = batch
        self.secret = secret or store.secret("callback-token")
        super().__init__()
        self._report_failures: dict[int, int] = {}
        self._turns: list[Turn] = []
        #: shares of a poll of a provider asked one message per call (threads on demand)
        self._poll_pool = ThreadPoolExecutor(POLL_THREADS, thread_name_prefix="poll")

    def token(self, provider: str) -> str:
        return callback_token(self.secret, provider)

    def accepts_callbacks(self, provider: str) -> bool:
        return hasattr(self.providers[provider], "parse_delivery_report")

    # threads ----------------------------------------------------------------------------

    def start(self) -> None:
        for name in self.providers:
            self.spawn(f"poll-{name}", self._poll_loop, name)
        self.spawn("client-reports", self._report_loop)

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self._poll_pool.shutdown(wait=True)
        for turn in self._turns:
            turn.release()

    def _turn(self, chore: str) -> Turn:
        turn = Turn(self.store, chore)
        self._turns.append(turn)
        return turn

    def _poll_loop(self, name: str) -> None:
        interval = self.poll_intervals.get(name, 2.0)
        turn = self._turn(f"poll:{name}")
        while not self.stopping.wait(interval):
            try:
                # a drained provider's full round means more are due: go on at once
                # (100,000 rows would take 200 intervals one round at a time). A
                # provider asked one message per call gets a round per interval: its
                # queries would otherwise take the CPU and connections dispatch needs
                drained = not self.providers[name].status_call_per_message
                while turn.mine():
                    due, _changed = self.poll_once(name)
                    if due < self.batch or not drained or self.stopping.is_set():
                        break
            except Exception:  # a provider outage must not stop polling
                log.warning("polling %s failed", name, exc_info=True)

    def _report_loop(self) -> None:
        turn = self._turn("client-reports")
        with httpx.Client(timeout=5.0) as http:
            while not self.stopping.wait(0.2):
                try:
                    if turn.mine():
                        self.report_once(http)
                except Exception:
                    log.warning("client delivery reports failed", exc_info=True)

    # work -------------------------------------------------------------------------------

    def poll_once(self, name: str) -> tuple[int, int]:
        """Ask ``name`` about its Pending rows due for a poll (at most ``batch``); returns
        how many were due and how many rows changed (those that did not are asked about
        again later). A drained provider's news may change rows that were not due."""
        due = self.store.reports.due_for_polling(name, self.batch)
        if not due:
            return 0, 0
        asked = [Submitted(recipient=row.recipient, provider_id=row.provider_id) for row in due]
        news = self._statuses(self.providers[name], asked)
        changed = self.store.reports.apply_updates(name, news)
        self.store.reports.polled(due, self.poll_intervals.get(name, 2.0))
        return len(due), changed

    def _statuses(self, provider: Provider, asked: list[Submitted]) -> list[StatusUpdate]:
        """The provider's news on ``asked``; a provider asked one message per call is asked
        from :data:`POLL_THREADS` threads at once (500 iSMS queries at 50 ms each take 3 s,
        not 25). A share that fails is logged; the others' news still counts."""
        if not provider.status_call_per_message or len(asked) < 2:
            return provider.statuses(asked)
        shares = [asked[i::POLL_THREADS] for i in range(min(POLL_THREADS, len(asked)))]
        updates: list[StatusUpdate] = []
        for future in [self._poll_pool.submit(provider.statuses, share) for share in shares]:
            try:
                updates += future.result()
            except Exception:
                log.warning("polling %s failed for a share", provider.name, exc_info=True)
        return updates

    def callback(self, provider: str, token: str, fields: Mapping[str, Any]) -> int:
        """A provider's delivery callback; raises PermissionError for a wrong token and
        ValueError for fields the provider's client cannot read."""
        if provider not in self.providers or not hmac.compare_digest(token, self.token(provider)):
            raise PermissionError("unknown callback")
        parse = getattr(self.providers[provider], "parse_delivery_report", None)
        if parse is None:
            raise PermissionError("this provider sends no callbacks")
        return self.store.reports.apply_updates(provider, [parse(fields)])

    def report_once(self, http: httpx.Client) -> int:
        """POST final states to clients' dlr_url; returns how many were settled."""
        settled = []
        public: dict[str, bool] = {}  # one lookup per URL a round, not per row
        for delivery_id, url, message_id, recipient, state in self.store.reports.unnotified(
            self.batch
        ):
            if url not in public:
                public[url] = self.private_reports or _public(url)
            if not public[url]:
                log.warning("not reporting to %s: not a public address", urlsplit(url).hostname)
                settled.append(delivery_id)
                continue
            try:
                answer = http.post(
                    url, data={"message_id": message_id, "mobile": recipient, "status": state}
                )
                ok = answer.status_code < 300
            except httpx.HTTPError:
                ok = False
            failures = 0 if ok else self._report_failures.get(delivery_id, 0) + 1
            if ok or failures >= REPORT_ATTEMPTS:
                settled.append(delivery_id)
                self._report_failures.pop(delivery_id, None)
            else:
                self._report_failures[delivery_id] = failures
        if settled:
            self.store.reports.mark_notified(settled)
        return len(settled)


def _public(url: str) -> bool:
    """Whether every address the URL's host resolves to is public: a client's dlr_url must
    not make the bridge probe its own network (loopback, private, link-local…). A host
    that does not resolve is left to the POST, which fails and is retried."""
    try:
        found = socket.getaddrinfo(urlsplit(url).hostname, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return True
    return all(ipaddress.ip_address(info[4][0]).is_global for info in found)
