"""smsxml.sandbox.core: the state every provider sandbox shares: configuration, accounts,
messages on their schedule, delivery callbacks."""

from __future__ import annotations

import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from smsxml.sandbox.core import (
    PROVIDERS,
    DeliverySchedule,
    Faults,
    Sandbox,
    SandboxConfig,
    SandboxMessage,
)
from smsxml.status import DeliveryState
from tests.conftest import CallbackReceiver, wait_for

SCHEDULE = DeliverySchedule(pending_after=10.0, final_after=20.0, fail_suffixes=("0", "99"))


def _message(recipient: str = "306912345671", **fields: Any) -> SandboxMessage:
    values: dict[str, Any] = {
        "provider": "isms",
        "id": "ABC",
        "username": "demo",
        "sender": "Shop",
        "recipient": recipient,
        "text": "hi",
        "parts": 1,
        "cost": Decimal(1),
        "send_at": 1000.0,
    }
    return SandboxMessage(**(values | fields))


def test_a_toml_file_sets_account_schedule_faults_and_seed(tmp_path: Path) -> None:
    """A TOML file sets account, schedule, faults and seed; what it omits keeps its default."""
    path = tmp_path / "sandbox.toml"
    path.write_text(
        "seed = 7\n[account]\nusername = 'ann'\ncredits = 12.5\n"
        "[schedule]\nfinal_after = 2\nfail_suffixes = ['5', '6']\n"
        "[faults.isms]\nerror_count = 2\n",
        encoding="utf-8",
    )
    config = SandboxConfig.from_toml(path)
    assert (config.username, config.password, config.credits, config.seed) == (
        "ann",
        "demo",
        Decimal("12.5"),
        7,
    )
    assert config.schedule == DeliverySchedule(final_after=2, fail_suffixes=("5", "6"))
    assert config.faults == {"isms": Faults(error_count=2)}


def test_faults_for_an_unknown_provider_are_refused(tmp_path: Path) -> None:
    """A [faults.<name>] table naming no sandboxed provider is an error, not ignored."""
    path = tmp_path / "sandbox.toml"
    path.write_text("[faults.isms]\nlatency = 1\n[faults.ismss]\nlatency = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown provider\(s\) in \[faults\]: ismss"):
        SandboxConfig.from_toml(path)


def test_with_faults_changes_a_copy() -> None:
    """with_faults adds to one provider's faults in a new config; the old one is unchanged."""
    base = SandboxConfig().with_faults("isms", latency=0.5)
    changed = base.with_faults("isms", error_rate=0.1).with_faults("net2sms", rate_limit=3)
    assert changed.faults == {
        "isms": Faults(latency=0.5, error_rate=0.1),
        "net2sms": Faults(rate_limit=3),
    }
    assert base.faults == {"isms": Faults(latency=0.5)}


def test_each_provider_has_its_own_demo_account() -> None:
    """Logging in checks the password; accounts of one provider are not another's."""
    sandbox = Sandbox(SandboxConfig(password="pw", api_key="k"))
    assert sandbox.login("isms", "demo", "pw") is sandbox.accounts["isms"]["demo"]
    assert [sandbox.login("isms", *given) for given in [("demo", "x"), ("demo", None),
            ("nobody", "pw"), (None, "pw")]] == [None] * 4  # fmt: skip
    sandbox.accounts["net2sms"]["demo"].password = "changed"
    assert sandbox.login("isms", "demo", "pw") is not None
    assert set(sandbox.accounts) == set(PROVIDERS)
    assert sandbox.by_key("net2sms", "k") is sandbox.accounts["net2sms"]["demo"]
    assert sandbox.by_key("net2sms", "") is None and sandbox.by_key("net2sms", "x") is None


def test_a_charge_takes_all_or_nothing() -> None:
    """charge takes the amount when the account has it, exactly to zero, else nothing."""
    sandbox = Sandbox(SandboxConfig(credits=Decimal(3)))
    account = sandbox.accounts["isms"]["demo"]
    assert not sandbox.charge(account, Decimal("3.01"))
    assert account.credits == Decimal(3)
    assert sandbox.charge(account, Decimal(3)) and account.credits == 0


def test_ids_are_fresh_in_each_providers_style() -> None:
    """digits, hex and uuid ids never repeat; a seed makes the uuids reproducible."""
    first, second = Sandbox(SandboxConfig(seed=4)), Sandbox(SandboxConfig(seed=4))
    ids = [first.new_id(style) for style in ("digits", "hex", "uuid", "digits")]
    assert ids[0] == "1000000001" and ids[3] == "1000000004"
    assert re.fullmatch(r"[0-9A-F]{10}", ids[1])
    assert re.fullmatch(r"0{7}3-[0-9a-f]{4}-11e5-bf51-0025907cd72e", ids[2])
    assert [second.new_id(style) for style in ("digits", "hex", "uuid", "digits")] == ids


@pytest.mark.parametrize(
    ("recipient", "elapsed", "state"),
    [
        ("306912345671", -5.0, DeliveryState.QUEUED),  # scheduled later
        ("306912345671", 9.9, DeliveryState.QUEUED),
        ("306912345671", 10.0, DeliveryState.PENDING),
        ("306912345671", 20.0, DeliveryState.DELIVERED),
        ("306912345670", 20.0, DeliveryState.FAILED),
        ("306912345699", 25.0, DeliveryState.FAILED),
        ("306912345609", 25.0, DeliveryState.DELIVERED),
    ],
)
def test_state_follows_the_schedule(recipient: str, elapsed: float, state: DeliveryState) -> None:
    """Queued, Pending, then Delivered, or Failed for a number ending in a fail suffix."""
    sandbox = Sandbox(SandboxConfig(schedule=SCHEDULE))
    assert sandbox.state(_message(recipient), now=1000.0 + elapsed) is state


def test_a_cancelled_message_is_failed() -> None:
    """Cancelled before delivery, a message is Failed whatever the schedule says."""
    sandbox = Sandbox(SandboxConfig(schedule=SCHEDULE))
    assert sandbox.state(_message(cancelled=True), now=1000.0) is DeliveryState.FAILED


def test_messages_are_found_counted_and_drained_once() -> None:
    """Messages are found by id, counted per recipient, and each state change drained once."""
    sandbox = Sandbox(SandboxConfig(schedule=SCHEDULE))
    now = time.time()
    ann = sandbox.add(_message("306912345671", send_at=now - 15))  # Pending
    bob = sandbox.add(_message("306912345672", send_at=now - 30))  # Delivered
    sandbox.add(_message("306912345673", send_at=now))  # Queued: no news
    sandbox.add(_message("306912345671", id="XYZ", username="other", send_at=now - 30))
    assert sandbox.find("isms", "ABC", "306912345672") == [bob]
    assert len(sandbox.find("isms", "ABC")) == 3 and sandbox.find("net2sms", "ABC") == []
    assert sandbox.sent("isms") == {"306912345671": 2, "306912345672": 1, "306912345673": 1}
    assert sandbox.drain("isms", "demo") == [
        (ann, DeliveryState.PENDING),
        (bob, DeliveryState.DELIVERED),
    ]
    assert sandbox.drain("isms", "demo") == []
    ann.send_at -= 10  # now final
    assert sandbox.drain("isms", "demo") == [(ann, DeliveryState.DELIVERED)]


def test_callbacks_post_each_final_state_once(callbacks: CallbackReceiver) -> None:
    """Each final state is POSTed once, as a form or JSON; a withdrawn dlr_url never."""
    built: list[tuple[str, DeliveryState]] = []

    def builder(message: SandboxMessage, state: DeliveryState) -> tuple[str, dict[str, Any]] | None:
        built.append((message.recipient, state))
        if not state.final:
            return None
        kind = "json" if message.recipient.endswith("0") else "form"
        return kind, {"to": message.recipient, "state": state.value}

    sandbox = Sandbox(SandboxConfig(schedule=DeliverySchedule(0.05, 0.3)))
    sandbox.callbacks["isms"] = builder
    now = time.time()
    sandbox.add(_message("306912345671", dlr_url=callbacks.url, send_at=now - 1))
    withdrawn = sandbox.add(_message("306912345672", dlr_url=callbacks.url, send_at=now - 1))
    withdrawn.dlr_url = None
    sandbox.add(_message("306912345670", dlr_url=callbacks.url, send_at=now))  # final later
    sandbox.add(_message("306912345673", send_at=now - 1))  # no dlr_url: nothing to post
    sandbox.start()
    try:
        wait_for(lambda: len(callbacks.received) >= 2, timeout=5)
    finally:
        sandbox.stop()
    posted = [(r["form"] or r["json"], r["content_type"]) for r in callbacks.received]
    assert posted == [
        ({"to": "306912345671", "state": "Delivered"}, "application/x-www-form-urlencoded"),
        ({"to": "306912345670", "state": "Failed"}, "application/json"),
    ]
    assert built.count(("306912345671", DeliveryState.DELIVERED)) == 1
    assert all(recipient in ("306912345671", "306912345670") for recipient, _ in built)
    assert len(sandbox.sent_callbacks) == 2


def test_a_cancelled_message_is_reported_failed_at_once(callbacks: CallbackReceiver) -> None:
    """Messages whose state changes in an hour wait unseen; the one cancelled meanwhile
    is POSTed as Failed at once, and only it."""

    def builder(message: SandboxMessage, state: DeliveryState) -> tuple[str, dict[str, Any]]:
        return "form", {"to": message.recipient, "state": state.value}

    sandbox = Sandbox(SandboxConfig(schedule=DeliverySchedule(3600, 7200)))
    sandbox.callbacks["isms"] = builder
    now = time.time()
    waiting = [
        sandbox.add(_message(f"3069123456{i:02d}", dlr_url=callbacks.url, send_at=now))
        for i in range(50)
    ]
    sandbox.start()
    try:
        sandbox.cancel(waiting[7])
        wait_for(lambda: callbacks.received, timeout=5)
    finally:
        sandbox.stop()
    assert [r["form"] for r in callbacks.received] == [{"to": "306912345607", "state": "Failed"}]
    assert sandbox.state(waiting[7]) is DeliveryState.FAILED
    assert sandbox.state(waiting[8]) is DeliveryState.QUEUED
