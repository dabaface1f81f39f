"""Faults: a slow, failing, rude or garbling provider ends in failover, a retry or
``Failed`` with the reason — never a silent loss — and ``kill -9`` of `smsxml serve`
mid-dispatch loses nothing.

Each case drives a real bridge (waitress, SQLite file) routed to iSMS then net2sms, with
the sandbox's fault injection on iSMS (or on both), through SOAP ``send`` and ``query``;
the store's history says why each row moved, and the sandbox's own record
(``/_sandbox/sent/<provider>``) says how many times each recipient was taken: none may be
missing, and one may be taken twice only where the outcome of a call was unknown (the
provider took the request and its answer never came, or came garbled). The faults are
deterministic (every request, or the first N), but for one test of seeded rates that
checks only what holds whatever the draws; the counts are printed (``pytest -s``).
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import zeep

from smsxml.sandbox import SandboxConfig
from smsxml.sandbox.app import SENT_PATH
from smsxml.server.app import BridgeServer
from smsxml.server.settings import ProviderSettings

from ..conftest import FAST_SCHEDULE, free_port, wait_for
from .processes import SqliteNode, helpers

#: Greek numbers, none ending in 0 (the sandbox's fail_suffixes): each ends Delivered
NUMBERS = ["306912345671", "306912345672", "306912345673"]
ROUTES = {"30": ["isms", "net2sms"]}
#: the read timeout given to a provider made slower than it (the sandbox's latency)
CLIENT_TIMEOUT = 0.5
SLOW = 2.0
#: max_attempts of tests/server/conftest.py's bridge_settings: rounds before Failed
ROUNDS = 3
FINAL = ("Delivered", "Failed")


@dataclass(frozen=True)
class Fault:
    """One way a provider misbehaves, and what the bridge's history must say of it."""

    faults: dict[str, Any]  # the sandbox's Faults fields (smsxml.sandbox.core.Faults)
    reason: str  # what the recorded reason names
    #: the provider took the request before its answer went wrong: the outcome of the
    #: call was unknown to the bridge, so a retry elsewhere may send the SMS twice
    unknown: bool = False
    refused: bool = False  # nothing listens at the provider's address at all
    timeout: float | None = None  # the client's timeout for this provider


FAULTS = {
    "slow": Fault(
        {"latency": SLOW}, "no answer: ReadTimeout", unknown=True, timeout=CLIENT_TIMEOUT
    ),
    "http-503": Fault({"error_rate": 1.0}, "HTTP 503"),
    "http-500": Fault({"error_rate": 1.0, "error_status": 500}, "HTTP 500"),
    "refused": Fault({}, "cannot connect: ConnectError", refused=True),
    "reset": Fault({"drop_rate": 1.0}, "no answer: RemoteProtocolError"),
    "garbled": Fault({"malformed_rate": 1.0}, "malformed answer", unknown=True),
}


@dataclass
class Run:
    """A bridge with its sandboxes, the SOAP client, and what was sent."""

    bridge: BridgeServer
    service: Any
    sent: list[tuple[str, str]] = field(default_factory=list)  # (message id, number)

    def send(self, numbers: list[str]) -> str:
        message_id: str = self.service.send(
            "demo", "demo", "Shop", {"recipients": numbers}, "Hello", "GSM", False
        )
        assert message_id
        self.sent += [(message_id, number) for number in numbers]
        return message_id

    def final_states(self, timeout: float = 60) -> list[str]:
        """SOAP query of every recipient sent, once all are final."""

        def states() -> list[str] | None:
            got = [self.service.query("demo", "demo", m, n) for m, n in self.sent]
            return got if all(state in FINAL for state in got) else None

        return wait_for(states, timeout=timeout, interval=0.1)  # type: ignore[no-any-return]

    def taken(self, provider: str) -> Counter[str]:
        """The sandbox's own record: how many times ``provider`` took each recipient."""
        assert self.bridge.sandbox is not None
        url = f"{self.bridge.sandbox.url}{SENT_PATH}/{provider}"
        return Counter(httpx.get(url, timeout=10).json())

    def row(self, message_id: str, number: str) -> tuple[str, str | None, str | None]:
        """The delivery row's state, provider and reason, as the store holds them."""
        database = self.bridge.settings.database_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(database)) as db:
            found = db.execute(
                "SELECT state, provider, reason FROM deliveries"
                " WHERE message_id = ? AND recipient = ?",
                (message_id, number),
            ).fetchone()
        assert found is not None
        return found  # type: ignore[no-any-return]


def _start(make_bridge: Callable[..., BridgeServer], faulty: dict[str, Fault]) -> Run:
    """A bridge routing Greek numbers to iSMS then net2sms, ``faulty`` providers given
    their fault (a refused one points at a port nobody listens on)."""
    config = SandboxConfig(schedule=FAST_SCHEDULE, seed=11)
    options: dict[str, dict[str, Any]] = {
        "isms": {"username": "demo", "password": "demo"},
        "net2sms": {"key": "demo-key"},
    }
    providers = {}
    for name, kind_options in options.items():
        fault = faulty.get(name)
        base_url = None
        if fault is not None:
            if fault.faults:
                config = config.with_faults(name, **fault.faults)
            if fault.timeout is not None:
                kind_options = {**kind_options, "timeout": fault.timeout}
            if fault.refused:
                base_url = f"http://127.0.0.1:{free_port()}/"
        providers[name] = ProviderSettings(kind=name, base_url=base_url, options=kind_options)
    bridge = make_bridge(sandbox_config=config, providers=providers, routes=ROUTES)
    return Run(bridge, zeep.Client(bridge.wsdl_url).service)


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_faulty_first_provider_fails_over_to_the_next(
    make_bridge: Callable[..., BridgeServer], name: str
) -> None:
    """iSMS slow beyond the client's timeout, answering 503 or 500, refusing or resetting
    connections, or garbling its answers: every recipient goes out through net2sms and is
    Delivered, the history names iSMS's fault, net2sms took each recipient exactly once,
    and iSMS took it too only where the outcome was unknown (counted: the duplicates)."""
    fault = FAULTS[name]
    run = _start(make_bridge, {"isms": fault})
    message_id = run.send(NUMBERS)
    assert run.final_states() == ["Delivered"] * len(NUMBERS)
    for number in NUMBERS:
        history = run.bridge.app.store.history(message_id, number)
        failover = [d for s, d in history if s == "Queued" and d.startswith("next provider")]
        assert len(failover) == 1 and "isms" in failover[0] and fault.reason in failover[0], history
        assert ("Pending", "accepted by net2sms") in history
        assert history[-1][0] == "Delivered"
        assert run.row(message_id, number)[:2] == ("Delivered", "net2sms")
    assert run.taken("net2sms") == Counter(dict.fromkeys(NUMBERS, 1))
    # a slow provider takes the request after the client gave up on it: wait for its record
    expected = Counter(dict.fromkeys(NUMBERS, 1 if fault.unknown else 0))
    wait_for(lambda: run.taken("isms") == +expected, timeout=SLOW + 10)
    taken = {provider: run.taken(provider) for provider in ROUTES["30"]}
    lost = [n for n in NUMBERS if not taken[run.row(message_id, n)[1] or ""][n]]
    duplicated = sum((taken["isms"] & taken["net2sms"]).values())
    print(f"\n{name}: {len(NUMBERS)} recipients, lost {len(lost)}, duplicated {duplicated}")
    assert lost == []
    assert duplicated == (len(NUMBERS) if fault.unknown else 0)


@pytest.mark.parametrize("name", list(FAULTS))
def test_every_provider_faulty_ends_failed_naming_the_fault(
    make_bridge: Callable[..., BridgeServer], name: str
) -> None:
    """Both providers of the route with the same fault: after the last round each recipient
    is Failed (SOAP query) with a reason that names the fault; the sandboxes took it once
    per round from each provider where the outcome was unknown, never otherwise."""
    fault = FAULTS[name]
    run = _start(make_bridge, {"isms": fault, "net2sms": fault})
    message_id = run.send(NUMBERS[:1])
    assert run.final_states() == ["Failed"]
    state, _provider, reason = run.row(message_id, NUMBERS[0])
    assert state == "Failed" and reason is not None
    assert reason.startswith(f"gave up after {ROUNDS} rounds: net2sms") and fault.reason in reason
    history = run.bridge.app.store.history(message_id, NUMBERS[0])
    assert history[-1] == ("Failed", reason)
    failovers = [d for s, d in history if s == "Queued" and d.startswith("next provider")]
    assert len(failovers) == 2 * ROUNDS, history  # each provider, each round
    assert all(fault.reason in d for d in failovers), history
    expected = Counter(dict.fromkeys(NUMBERS[:1], ROUNDS if fault.unknown else 0))
    both = ROUTES["30"]
    wait_for(lambda: all(run.taken(p) == +expected for p in both), timeout=SLOW + 10)
    taken = sum(run.taken("isms").values()) + sum(run.taken("net2sms").values())
    print(f"\n{name} everywhere: Failed ({reason!r}); the providers took it {taken} times")


def test_a_provider_asking_to_wait_is_waited_for_not_failed_over(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """iSMS answers 429 with Retry-After beyond one request a second: five messages sent at
    once (at least two fall in one second, so at least one is told to wait) all go out
    through iSMS, each exactly once; net2sms takes none, and no round is spent."""
    run = _start(make_bridge, {"isms": Fault({"rate_limit": 1}, "rate limited")})
    numbers = [f"3069123456{i:02d}" for i in range(81, 86)]
    sent = [run.send([number]) for number in numbers]
    assert run.final_states() == ["Delivered"] * len(numbers)
    waits = 0
    for message_id, number in zip(sent, numbers, strict=True):
        history = run.bridge.app.store.history(message_id, number)
        assert ("Pending", "accepted by isms") in history
        assert not any(d.startswith(("next provider", "retry in")) for _, d in history), history
        waits += sum(1 for _, d in history if d.startswith("wait 1.0s: isms: [429] rate limited"))
        assert run.row(message_id, number)[:2] == ("Delivered", "isms")
    assert waits >= 1
    assert run.taken("isms") == Counter(dict.fromkeys(numbers, 1))
    assert run.taken("net2sms") == Counter()
    print(f"\n429: {len(numbers)} recipients, {waits} told to wait, lost 0, duplicated 0")


def test_503s_are_retried_by_the_client_then_in_the_next_round(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """A 503 means the provider did not take the request, so the client itself asks again
    (RETRY_ATTEMPTS calls): two 503s from iSMS are absorbed there. Three from iSMS and
    three from net2sms end the round (each provider failed once), and the next round's
    call to iSMS goes through. Each recipient is taken exactly once."""
    from smsxml.providers.base import RETRY_ATTEMPTS

    absorbed = _start(make_bridge, {"isms": Fault({"error_count": RETRY_ATTEMPTS - 1}, "")})
    message_id = absorbed.send(NUMBERS[:1])
    assert absorbed.final_states() == ["Delivered"]
    history = absorbed.bridge.app.store.history(message_id, NUMBERS[0])
    assert [s for s, _ in history] == ["Pending", "Delivered"], history
    assert absorbed.taken("isms") == Counter(NUMBERS[:1])

    outage = Fault({"error_count": RETRY_ATTEMPTS}, "HTTP 503")
    run = _start(make_bridge, {"isms": outage, "net2sms": outage})
    first = run.send(NUMBERS[:1])
    assert run.final_states() == ["Delivered"]
    details = [d for s, d in run.bridge.app.store.history(first, NUMBERS[0]) if s == "Queued"]
    assert details[0] == "next provider: isms: [503] HTTP 503", details
    assert details[1] == "next provider: net2sms: [503] HTTP 503", details
    assert details[2].startswith("retry in") and details[2].endswith("net2sms: [503] HTTP 503")
    assert run.row(first, NUMBERS[0])[:2] == ("Delivered", "isms")
    second = run.send(NUMBERS[1:2])
    assert run.final_states() == ["Delivered"] * 2
    assert run.row(second, NUMBERS[1])[:2] == ("Delivered", "isms")
    assert run.taken("isms") == Counter(NUMBERS[:2])
    assert run.taken("net2sms") == Counter()


def test_a_provider_with_every_fault_now_and_then_loses_nothing(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """iSMS answering 503, dropping connections and garbling answers, each on a fifth of
    its requests (seeded), sends and status queries alike: twenty messages all end
    Delivered, each through the provider whose record has it; a recipient is taken twice
    only if iSMS garbled its answer to that recipient's send (the outcome was unknown)."""
    shaky = Fault({"error_rate": 0.2, "drop_rate": 0.2, "malformed_rate": 0.2}, "")
    run = _start(make_bridge, {"isms": shaky})
    numbers = [f"3069123458{i:02d}" for i in range(1, 23) if i % 10]
    sent = [run.send([number]) for number in numbers]
    assert run.final_states() == ["Delivered"] * len(numbers)
    unknown: set[str] = set()
    lost: list[str] = []
    for message_id, number in zip(sent, numbers, strict=True):
        history = run.bridge.app.store.history(message_id, number)
        if any(d.startswith("next provider: isms: [malformed]") for _, d in history):
            unknown.add(number)
        _state, provider, _reason = run.row(message_id, number)
        assert provider in ("isms", "net2sms")
        if not run.taken(provider)[number]:
            lost.append(number)
    taken = run.taken("isms") + run.taken("net2sms")
    twice = {number for number, count in taken.items() if count > 1}
    print(
        f"\nshaky iSMS: {len(numbers)} recipients, {len(unknown)} garbled sends, "
        f"lost {len(lost)}, duplicated {len(twice)}"
    )
    assert lost == []
    assert twice <= unknown
    assert max(taken.values()) <= 2


@pytest.mark.slow
def test_serve_killed_mid_dispatch_then_restarted_loses_nothing(tmp_path: Path) -> None:
    """kill -9 of `smsxml serve` and of its dispatch process while calls are in flight,
    then a restart on the same SQLite file: every accepted message ends final, none is
    missing from the provider's record, and the recipients taken twice (printed) are
    among the rows the dead dispatcher held: the at-least-once window of docs/bridge.md.

    tests/server/test_dispatcher.py's kill test kills the endpoint alone: its dispatch
    process then sees its parent gone and stops cleanly (calls finished and recorded),
    which leaves no window open; here the dispatcher dies too, as in a crash."""
    node = SqliteNode(
        tmp_path,
        sandbox="[schedule]\npending_after = 0.05\nfinal_after = 0.3\nfail_suffixes = []\n\n"
        "[faults.isms]\nlatency = 0.2\n",
        dispatch="workers = 1\nbatch = 2\nin_hand = 6\nlease = 2.0\nidle = 0.02\n",
        isms="concurrency = 3\n",
    )
    try:
        (dispatcher,) = wait_for(lambda: helpers(node.bridge.pid, b"smsxml.server.worker"), 30)
        numbers = [f"3069123457{i:02d}" for i in range(1, 41)]
        sent = node.send_each(numbers)
        held_sql = f"SELECT count(*) FROM deliveries WHERE lease_owner LIKE '%:{dispatcher}:%'"

        def held() -> int:
            with closing(sqlite3.connect(f"file:{node.database}?mode=ro", uri=True)) as db:
                return int(db.execute(held_sql).fetchone()[0])

        # part way: some taken by the provider, calls of 200 ms in flight, the rest Queued
        wait_for(lambda: len(node.taken()) >= 6 and held(), timeout=30, interval=0.01)
        for pid in (dispatcher, node.bridge.pid):
            os.kill(pid, signal.SIGKILL)
        node.bridge.wait(10)
        held_at_kill = held()  # the dead dispatcher's leases, left to run out
        before_restart = len(node.taken())
        node.restart_bridge()
        states = node.final_states(sent, timeout=90)
        counts = node.taken()
        lost = [n for n in numbers if counts[n] == 0]
        twice = [n for n in numbers if counts[n] > 1]
        print(
            f"\nkill -9 of serve and its dispatcher: {len(numbers)} accepted, "
            f"{before_restart} taken before the restart, the dead dispatcher held "
            f"{held_at_kill}; lost {len(lost)}, duplicated {len(twice)}"
        )
        assert states == ["Delivered"] * len(numbers)
        assert lost == []
        assert len(twice) <= held_at_kill
        assert max(counts.values()) <= 2
    finally:
        node.stop()
