"""The dispatcher: failover along a recipient's route, retries with backoff, rate limits,
its metrics, and nothing lost across a crash (the routes themselves: test_routing;
`smsxml worker` processes sharing one queue: test_worker)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import zeep
from sqlalchemy import text

from smsxml.sandbox import SandboxConfig
from smsxml.sandbox.core import DeliverySchedule
from smsxml.server.app import BridgeServer
from smsxml.server.clock import utcnow
from smsxml.server.routing import Routes
from smsxml.server.settings import CALLBACK_FIRST_POLL
from smsxml.soap import SoapClient

from ..conftest import FAST_SCHEDULE, wait_for
from .conftest import bridge_settings
from .processes import SqliteNode

GREEK = ["306912345678", "306912345679", "306912345671"]


def _send(bridge: BridgeServer, recipients: list[str], service: Any = None) -> str:
    service = service or zeep.Client(bridge.wsdl_url).service
    return service.send(  # type: ignore[no-any-return]
        username="demo",
        password="demo",
        **{"from": "Shop"},
        to={"recipients": recipients},
        message="Hello",
        coding="GSM",
        flash=False,
    )


def _final(bridge: BridgeServer, message_id: str, recipients: list[str]) -> list[str]:
    store = bridge.app.store
    account = store.accounts.get("demo")

    def states() -> list[str] | None:
        got = [store.status(account.id, message_id, r) or "" for r in recipients]
        return got if all(s in ("Delivered", "Failed") for s in got) else None

    return wait_for(states, timeout=30)


def test_failover_when_the_first_provider_is_down(make_bridge: Callable[..., BridgeServer]) -> None:
    """With iSMS answering 503, Greek numbers go out through net2sms and are delivered."""
    down = SandboxConfig(schedule=FAST_SCHEDULE).with_faults("isms", error_rate=1.0)
    bridge = make_bridge(sandbox_config=down)
    message_id = _send(bridge, GREEK)
    assert _final(bridge, message_id, GREEK) == ["Delivered"] * 3
    history = bridge.app.store.history(message_id, GREEK[0])
    assert history[0][0] == "Queued" and "isms" in history[0][1]
    assert ("Pending", "accepted by net2sms") in history
    assert history[-1][0] == "Delivered"


def test_every_provider_down_ends_failed_with_the_reason(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """When every provider of the route keeps failing, the row ends Failed after the last round."""
    down = (
        SandboxConfig(schedule=FAST_SCHEDULE)
        .with_faults("isms", error_rate=1.0)
        .with_faults("net2sms", error_rate=1.0)
    )
    bridge = make_bridge(sandbox_config=down)
    message_id = _send(bridge, GREEK[:1])
    assert _final(bridge, message_id, GREEK[:1]) == ["Failed"]
    events = bridge.app.store.history(message_id, GREEK[0])
    assert events[-1][0] == "Failed" and events[-1][1].startswith("gave up after 3 rounds")
    retries = [
        detail for state, detail in events if state == "Queued" and detail.startswith("retry")
    ]
    assert len(retries) == 2  # rounds 1 and 2 backed off, round 3 gave up


def test_a_temporary_outage_is_retried_until_it_passes(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """Two 503s in a row on both providers are absorbed by the retries: still Delivered."""
    flaky = (
        SandboxConfig(schedule=FAST_SCHEDULE)
        .with_faults("isms", error_count=2)
        .with_faults("net2sms", error_count=2)
    )
    bridge = make_bridge(sandbox_config=flaky)
    message_id = _send(bridge, GREEK[:1])
    assert _final(bridge, message_id, GREEK[:1]) == ["Delivered"]


@pytest.mark.slow
def test_a_bridge_killed_mid_dispatch_loses_nothing(tmp_path: Path) -> None:
    """kill -9 while messages are being dispatched; after a restart every one ends final."""
    node = SqliteNode(
        tmp_path,
        sandbox="[schedule]\npending_after = 0.05\nfinal_after = 0.3\n\n"
        "[faults.isms]\nlatency = 0.15\n",
        dispatch="workers = 1\nbatch = 1\nlease = 2.0\nidle = 0.02\n",
    )
    try:
        numbers = [f"3069123456{i:02d}" for i in range(1, 34) if i % 10]  # none ends in 0
        sent = node.send_each(numbers)
        # part way: some taken by the provider, the rest Queued behind its 150 ms answers
        wait_for(lambda: len(node.taken()) >= 3, timeout=30)
        node.bridge.send_signal(signal.SIGKILL)
        node.bridge.wait(10)
        node.restart_bridge()
        assert node.final_states(sent) == ["Delivered"] * len(numbers)
    finally:
        node.stop()


def test_the_rate_limit_spaces_sends_out() -> None:
    """At 20 messages per second, 30 messages take about half a second more than 20."""
    import threading

    from smsxml.server.dispatcher import RateLimiter

    limiter, stop = RateLimiter(20.0), threading.Event()
    started = time.monotonic()
    assert limiter.take(20, stop)  # the first second's worth goes at once
    assert time.monotonic() - started < 0.1
    assert limiter.take(10, stop)
    assert 0.4 <= time.monotonic() - started < 1.0
    stop.set()
    assert not limiter.take(20, stop)  # a stopping dispatcher does not wait


def test_dispatch_batches_recipients_and_keeps_the_rate_limit(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """iSMS takes up to 250 recipients a call: a send to three goes out in one call. At
    4 messages a second (bursts of one second's worth), 12 sends take two seconds more."""
    from smsxml.server.dispatcher import RateLimiter

    bridge = make_bridge(sandbox_config=SandboxConfig(schedule=FAST_SCHEDULE))
    registry = bridge.app.metrics.registry

    def isms_calls() -> float:
        return registry.get_sample_value("smsxml_dispatch_seconds_count", {"provider": "isms"})

    assert _final(bridge, _send(bridge, GREEK), GREEK) == ["Delivered"] * 3
    assert isms_calls() == 1.0
    bridge.app.dispatcher.limiters["isms"] = RateLimiter(4.0)
    service = zeep.Client(bridge.wsdl_url).service  # one client: the sends take no time
    started = time.monotonic()
    sent = [_send(bridge, GREEK[:1], service) for _ in range(12)]
    for message_id in sent:
        assert _final(bridge, message_id, GREEK[:1]) == ["Delivered"]
    assert isms_calls() == 13.0
    assert time.monotonic() - started >= 1.9  # 4 at once, then 8 at 4 a second


def test_a_failover_keeps_each_rows_own_tried_providers() -> None:
    """Two recipients of one message, one of which iSMS already failed this round: when
    net2sms fails too, each row keeps what it tried (the Greek one does not go back to
    iSMS), so the Greek row's round is over and the other's goes on."""
    from smsxml.errors import TemporaryFailure
    from smsxml.server.dispatcher import Dispatcher
    from smsxml.server.queue import Claimed, Outcomes
    from smsxml.server.settings import DispatchSettings

    def row(row_id: int, recipient: str, tried: tuple[str, ...]) -> Claimed:
        return Claimed(row_id, "MSG", recipient, 0, tried, "Shop", "hi", "GSM", False, None)

    class Queue:
        def __init__(self) -> None:
            self.retried: dict[int, tuple[str, ...]] = {}

        def claim(self, owner: str, limit: int, lease: float) -> list[Claimed]:
            return [row(1, "306912345678", ("isms",)), row(2, "447700900123", ())]

        def record(self, outcomes: Outcomes, first_polls: object = None) -> None:
            self.retried.update({r: tried for r, _delay, tried, *_ in outcomes.retried})

    class Store:
        queue = Queue()

    class Down:
        max_batch = 500

        def send(self, message: object) -> list[object]:
            raise TemporaryFailure("down", provider="net2sms")

    store = Store()
    routes = Routes(
        {"30": ["isms", "net2sms"], "*": ["net2sms", "easysms"]}, ["isms", "net2sms", "easysms"]
    )
    dispatcher = Dispatcher(
        store, {"isms": Down(), "net2sms": Down(), "easysms": Down()}, routes, DispatchSettings()
    )  # type: ignore[arg-type]
    dispatcher.run_once()
    assert store.queue.retried == {1: ("isms", "net2sms"), 2: ("net2sms",)}


def test_the_bridge_on_postgresql_fails_over_and_delivers(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """The same bridge on PostgreSQL: SOAP send, claim, failover past a provider that is
    down (the rows go back to the queue), Pending, then Delivered by the poller."""
    from .conftest import fresh_postgres

    down = SandboxConfig(schedule=FAST_SCHEDULE).with_faults("isms", error_rate=1.0)
    bridge = make_bridge(sandbox_config=down, database_url=fresh_postgres())
    assert bridge.app.store.engine.dialect.name == "postgresql"
    message_id = _send(bridge, GREEK)
    assert _final(bridge, message_id, GREEK) == ["Delivered"] * 3
    history = bridge.app.store.history(message_id, GREEK[0])
    assert history[0][0] == "Queued" and "isms" in history[0][1]
    assert ("Pending", "accepted by net2sms") in history


def test_a_provider_asking_to_wait_keeps_its_rows(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """iSMS answers 429 with Retry-After beyond one request a second: its rows wait and go
    back to iSMS (no failover to net2sms), and every one is accepted by iSMS."""
    limited = SandboxConfig(schedule=FAST_SCHEDULE).with_faults("isms", rate_limit=1)
    bridge = make_bridge(sandbox_config=limited)
    service = zeep.Client(bridge.wsdl_url).service
    sent = [_send(bridge, [number], service) for number in GREEK]
    for message_id, number in zip(sent, GREEK, strict=True):
        assert _final(bridge, message_id, [number]) == ["Delivered"]
    histories = [bridge.app.store.history(m, n) for m, n in zip(sent, GREEK, strict=True)]
    assert all(("Pending", "accepted by isms") in history for history in histories)
    assert any(detail.startswith("wait 1.0s") for h in histories for _, detail in h)
    registry = bridge.app.metrics.registry
    assert registry.get_sample_value(
        "smsxml_provider_outcomes_total", {"provider": "isms", "outcome": "rate_limited"}
    )
    assert not registry.get_sample_value(
        "smsxml_provider_outcomes_total", {"provider": "net2sms", "outcome": "accepted"}
    )


def test_metrics_show_a_call_in_flight_then_its_outcome(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """While iSMS takes its time, /metrics shows one call in flight; once it answered,
    none, and the call counted as accepted with its duration."""
    slow = SandboxConfig(schedule=FAST_SCHEDULE).with_faults("isms", latency=1.5)
    bridge = make_bridge(sandbox_config=slow)

    def sample(name: str) -> float | None:
        for line in httpx.get(f"{bridge.url}/metrics", timeout=5).text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    in_flight = 'smsxml_dispatch_in_flight{provider="isms"}'
    accepted = 'smsxml_provider_outcomes_total{outcome="accepted",provider="isms"}'
    message_id = _send(bridge, GREEK[:1])
    assert wait_for(lambda: sample(in_flight) == 1.0, timeout=10)
    assert not sample(accepted)
    assert _final(bridge, message_id, GREEK[:1]) == ["Delivered"]
    assert sample(accepted) == 1.0
    assert wait_for(lambda: sample(in_flight) == 0.0, timeout=10)
    seconds = sample('smsxml_dispatch_seconds_sum{provider="isms"}')
    assert seconds is not None and seconds >= 1.5


def test_an_endpoint_that_only_accepts_shows_the_queue_waiting(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """With dispatch off (workers = 0), a send stays Queued and /metrics shows how long the
    oldest due row has waited, and nothing in flight."""
    from smsxml.server.settings import DispatchSettings

    bridge = make_bridge(dispatch=DispatchSettings(workers=0))
    message_id = _send(bridge, GREEK[:1])

    def waited() -> float:
        text = httpx.get(f"{bridge.url}/metrics", timeout=5).text
        line = next(x for x in text.splitlines() if x.startswith("smsxml_queue_oldest_seconds"))
        return float(line.split()[1])

    assert wait_for(lambda: waited() > 0.2)
    store = bridge.app.store
    assert store.status(store.accounts.get("demo").id, message_id, GREEK[0]) == "Queued"
    metrics = httpx.get(f"{bridge.url}/metrics", timeout=5).text.splitlines()
    in_flight = [line for line in metrics if line.startswith("smsxml_dispatch_in_flight{")]
    assert all(line.endswith(" 0.0") for line in in_flight)


def test_rate_limits_are_shared_among_live_dispatchers(tmp_path: Path) -> None:
    """Two dispatchers on one database each take half of a provider's limit; when one
    leaves, the other has all of it again."""
    from smsxml.server.dispatcher import Dispatcher
    from smsxml.server.settings import DispatchSettings
    from smsxml.server.store import Store

    store = Store(f"sqlite:///{tmp_path / 'shared.sqlite3'}")
    routes = Routes({"*": ["isms"]}, ["isms"])
    first, second = (
        Dispatcher(store, {"isms": object()}, routes, DispatchSettings(), rate_limits={"isms": 20})  # type: ignore[dict-item]
        for _ in range(2)
    )
    try:
        for dispatcher in (first, second, first):
            dispatcher.share_rate_limits()
        assert first.limiters["isms"].rate == second.limiters["isms"].rate == 10
        store.queue.leave(second.owner)
        first.share_rate_limits()
        assert first.limiters["isms"].rate == 20
    finally:
        store.close()


def test_a_provider_that_calls_back_is_first_polled_later(tmp_path: Path) -> None:
    """By default a row sent to a provider given a callback URL (iSMS) is first asked
    about after CALLBACK_FIRST_POLL seconds (its report comes by itself), a row sent to
    one without callbacks (net2sms) at once."""
    settings = bridge_settings(tmp_path, routes={"30": ["isms"], "*": ["net2sms"]})
    for provider in settings.providers.values():
        provider.first_poll = None  # the default
    unsettled = SandboxConfig(schedule=DeliverySchedule(pending_after=0.0, final_after=3600.0))
    bridge = BridgeServer(settings, sandbox_config=unsettled).start()
    try:
        with SoapClient(bridge.url + "/soap", username="demo", password="demo") as client:
            for number in ("306912345678", "33612345678"):
                client.send("Shop", [number], "hi")

        def pending() -> dict[str, Any] | None:
            with bridge.app.store.engine.connect() as db:
                rows = db.execute(
                    text("SELECT provider, next_attempt_at FROM deliveries WHERE state = 'Pending'")
                ).all()
            return dict(rows) if len(rows) == 2 else None

        polls = wait_for(pending)
    finally:
        bridge.stop()
    now = utcnow()
    assert _as_time(polls["isms"]) >= now + timedelta(seconds=CALLBACK_FIRST_POLL - 10)
    assert _as_time(polls["net2sms"]) <= now + timedelta(seconds=5)  # due (or just polled)


def _as_time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


class _NoRenewals:
    """A dispatcher's queue whose renewals fail (its connections to the database stuck,
    say), and with ``claims_too`` its claims after the first; outcomes go through."""

    def __init__(self, queue: Any, claims_too: bool) -> None:
        self.queue, self.claims_too, self.claimed = queue, claims_too, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)

    def claim(self, *args: Any) -> Any:
        if self.claimed and self.claims_too:
            raise OSError("database unreachable")
        self.claimed = True
        return self.queue.claim(*args)

    def renew(self, *args: Any) -> None:
        raise OSError("database unreachable")


def _dispatch_without_renewals(
    tmp_path: Path, sandbox: Any, recipients: int, *, healthy_too: bool
) -> dict[str, int]:
    """``recipients`` single-recipient sends claimed at once (lease 2 s) by a dispatcher
    that cannot renew and makes one call at a time; if ``healthy_too`` it cannot claim
    again either, and a second dispatcher takes what it leaves. Once every row is sent
    and nothing is in hand: the provider's count per recipient."""
    from smsxml.providers import Isms
    from smsxml.server.dispatcher import Dispatcher
    from smsxml.server.settings import DispatchSettings
    from smsxml.server.store import Store

    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    stores = [Store(url), Store(url)]
    account = stores[0].accounts.add("demo", "demo", 1000)
    for i in range(recipients):
        stores[0].acceptance.accept(
            account, sender="Shop", text="hi", coding="GSM", flash=False,
            recipients=[f"30694{i:07d}"], parts=1,
        )  # fmt: skip
    settings = DispatchSettings(batch=recipients, in_hand=2 * recipients, lease=2.0, idle=0.02)
    dispatchers = [
        Dispatcher(
            store,
            {"isms": Isms(sandbox.client_url("isms"), username="demo", password="demo")},
            Routes({"*": ["isms"]}, ["isms"]),
            settings,
            concurrency={"isms": 1},
            claims=_NoRenewals(store.queue, healthy_too) if store is stores[0] else None,
        )
        for store in stores[: 2 if healthy_too else 1]
    ]
    queued = text("SELECT count(*) FROM deliveries WHERE state = 'Queued'")

    def done() -> bool:
        with stores[0].engine.connect() as db:
            idle = not any(dispatcher.rows_in_hand for dispatcher in dispatchers)
            return idle and not db.execute(queued).scalar()

    try:
        dispatchers[0].start()
        wait_for(lambda: dispatchers[0].rows_in_hand == recipients, timeout=10, interval=0.01)
        for dispatcher in dispatchers[1:]:
            dispatcher.start()
        wait_for(done, timeout=30)
    finally:
        for dispatcher in dispatchers:
            dispatcher.stop()  # a call still in flight ends first
        for store in stores:
            store.close()
    return sandbox.sandbox.sent("isms")  # type: ignore[no-any-return]


def test_rows_whose_lease_may_run_out_are_left_to_the_next_claim(
    tmp_path: Path, make_sandbox: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A dispatcher whose database calls fail starts no call once its rows' lease is
    nearly out (3/4 of 2 s: about 15 calls of 0.1 s): another dispatcher claims them when
    it runs out, and the provider takes each recipient exactly once."""
    sandbox = make_sandbox(SandboxConfig(schedule=FAST_SCHEDULE).with_faults("isms", latency=0.1))
    sent = _dispatch_without_renewals(tmp_path, sandbox, 30, healthy_too=True)
    assert len(sent) == 30 and [n for n, count in sent.items() if count != 1] == []
    assert "left unsent: their lease may run out" in caplog.text


def test_rows_claimed_again_while_still_in_hand_are_sent_once(
    tmp_path: Path, make_sandbox: Callable[..., Any]
) -> None:
    """Calls of 0.7 s, one at a time, without renewals: the third call (1.4 s to 2.1 s)
    outlasts the lease, the dispatcher claims its rows again meanwhile, and those still
    waiting for their call here are not sent a second time."""
    sandbox = make_sandbox(SandboxConfig(schedule=FAST_SCHEDULE).with_faults("isms", latency=0.7))
    sent = _dispatch_without_renewals(tmp_path, sandbox, 5, healthy_too=False)
    assert len(sent) == 5 and [n for n, count in sent.items() if count != 1] == []
