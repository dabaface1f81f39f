"""easysms, net2sms.gr's legacy API: the client against the sandbox over real HTTP, and
faults (the sandbox's exact answers to the vendor page's requests: tests/sandbox/)."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from smsxml.errors import (
    AuthenticationFailed,
    InsufficientCredit,
    InvalidRecipient,
    InvalidSender,
    OutcomeUnknown,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from smsxml.providers.base import Balance, OutgoingMessage
from smsxml.providers.easysms import Easysms
from smsxml.sandbox import SandboxConfig, SandboxServer
from smsxml.sandbox.core import Account
from smsxml.status import DeliveryState
from tests.conftest import FAST_SCHEDULE, wait_for

GR = "306912345671"  # delivered by the sandbox schedule
GR_FAILS = "306912345670"  # numbers ending in 0 fail


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[Easysms]:
    with Easysms(sandbox.url_for("easysms"), "demo", "demo") as c:
        yield c


def account(sandbox: SandboxServer) -> Account:
    return sandbox.sandbox.accounts["easysms"]["demo"]


def message(to: str = GR, text: str = "Hello World", sender: str = "MyCompany") -> OutgoingMessage:
    return OutgoingMessage(sender, [to], text)


# the client ------------------------------------------------------------------------------


def test_send(client: Easysms, sandbox: SandboxServer) -> None:
    """send() queues one message: its id, one SMS charged, sender, flash and report request."""
    (submitted,) = client.send(OutgoingMessage("MyCompany", [GR], "Hello World", flash=True))
    assert submitted.recipient == GR
    (stored,) = sandbox.sandbox.find("easysms", submitted.provider_id)
    assert (stored.sender, stored.text, stored.flash) == ("MyCompany", "Hello World", True)
    assert stored.extra == {"request_delivery": True}
    assert account(sandbox).credits == 999


def test_send_sms_answers_the_balance(client: Easysms) -> None:
    """send_sms gives the sms_id and the balance after the charge (2 parts here)."""
    sent = client.send_sms(GR, "a" * 161, originator="306900000000")
    assert sent.sms_id.isdigit() and sent.balance == Decimal(998)


def test_send_refuses_what_the_api_cannot_do(client: Easysms) -> None:
    """Several recipients or a schedule are refused before any request."""
    with pytest.raises(ValueError):
        client.send(OutgoingMessage("Shop", [GR, GR_FAILS], "x"))
    with pytest.raises(ValueError):
        client.send(OutgoingMessage("Shop", [GR], "x", schedule=datetime.now(UTC)))


def test_balance(client: Easysms, sandbox: SandboxServer) -> None:
    """get_balance gives the number of SMS left."""
    assert client.balance() == Balance(Decimal(1000), "SMS")
    account(sandbox).credits = Decimal(7)
    assert client.get_balance() == 7


def test_wrong_password(sandbox: SandboxServer) -> None:
    """Wrong Basic credentials raise AuthenticationFailed (HTTP 401), on sends and reads."""
    with Easysms(sandbox.url_for("easysms"), "demo", "nope") as c:
        with pytest.raises(AuthenticationFailed) as caught:
            c.send(message())
        assert caught.value.code == 401 and caught.value.provider == "easysms"
        with pytest.raises(AuthenticationFailed):
            c.balance()


def test_not_enough_sms(client: Easysms, sandbox: SandboxServer) -> None:
    """A poor account raises InsufficientCredit (105) and is charged nothing."""
    account(sandbox).credits = Decimal(1)
    with pytest.raises(InsufficientCredit) as caught:
        client.send(message(text="a" * 200))
    assert caught.value.code == "105" and account(sandbox).credits == 1


@pytest.mark.parametrize("sender", ["TooLongName1", "12345678901234567"])
def test_invalid_originator(client: Easysms, sender: str) -> None:
    """An originator over 11 alphanumerics or 16 digits raises InvalidSender (40)."""
    with pytest.raises(InvalidSender) as caught:
        client.send(message(sender=sender))
    assert caught.value.code == "40"


def test_invalid_and_missing_number(client: Easysms) -> None:
    """An unparsable mobile_number raises InvalidRecipient 103, an empty one 102."""
    with pytest.raises(InvalidRecipient) as caught:
        client.send(message(to="12ab"))
    assert caught.value.code == "103"
    with pytest.raises(InvalidRecipient) as caught:
        client.send_sms("", "x")
    assert caught.value.code == "102"


def test_missing_text(client: Easysms) -> None:
    """An empty text is refused with code 104, a permanent failure."""
    with pytest.raises(PermanentFailure) as caught:
        client.send_sms(GR, "")
    assert caught.value.code == "104"


def test_delivery_lifecycle(client: Easysms) -> None:
    """statuses() drains get_status: Delivered, or Failed for a number ending in 0; each
    change once; a message sent without request_delivery is never reported."""
    submitted = client.send(message(GR)) + client.send(message(GR_FAILS))
    quiet = client.send_sms("306912345672", "x", request_delivery=False)
    seen: dict[str, list[DeliveryState]] = {}

    def settled() -> bool:
        for update in client.statuses(submitted):
            assert update.recipient in (GR, GR_FAILS)
            seen.setdefault(update.provider_id, []).append(update.state)
        return len(seen) == 2 and all(states[-1].final for states in seen.values())

    wait_for(settled)
    final = {s.recipient: seen[s.provider_id][-1] for s in submitted}
    assert final == {GR: DeliveryState.DELIVERED, GR_FAILS: DeliveryState.FAILED}
    assert all(len(states) == len(set(states)) for states in seen.values())
    assert quiet.sms_id not in seen
    assert client.statuses(submitted) == []


def test_statuses_report_other_messages_too(client: Easysms) -> None:
    """The drain also returns news of messages it was not asked about, without recipient."""
    (mine,) = client.send(message(GR))
    (other,) = client.send(message("306912345672"))
    time.sleep(FAST_SCHEDULE.final_after + 0.05)
    updates = {u.provider_id: (u.recipient, u.detail) for u in client.statuses([mine])}
    assert updates == {mine.provider_id: (GR, "d"), other.provider_id: (None, "d")}


# faults ----------------------------------------------------------------------------------


def faulty(make_sandbox: Callable[..., SandboxServer], **faults: object) -> Easysms:
    config = SandboxConfig(schedule=FAST_SCHEDULE, seed=1).with_faults("easysms", **faults)
    return Easysms(make_sandbox(config).url_for("easysms"), "demo", "demo")


def test_outage_is_temporary(make_sandbox: Callable[..., SandboxServer]) -> None:
    """HTTP 503 on every request raises TemporaryFailure after retries."""
    with faulty(make_sandbox, error_rate=1.0) as c:
        with pytest.raises(TemporaryFailure) as caught:
            c.balance()
        assert caught.value.code == 503
        with pytest.raises(TemporaryFailure):
            c.send(message())


def test_dropped_connection(make_sandbox: Callable[..., SandboxServer]) -> None:
    """A dropped connection is OutcomeUnknown on a send, TemporaryFailure on a read."""
    with faulty(make_sandbox, drop_rate=1.0) as c:
        with pytest.raises(OutcomeUnknown):
            c.send(message())
        with pytest.raises(TemporaryFailure) as caught:
            c.statuses([])
        assert not isinstance(caught.value, OutcomeUnknown)


def test_rate_limited(make_sandbox: Callable[..., SandboxServer]) -> None:
    """HTTP 429 raises RateLimited."""
    with faulty(make_sandbox, rate_limit=0) as c, pytest.raises(RateLimited):
        c.balance()


def test_malformed_answers(make_sandbox: Callable[..., SandboxServer]) -> None:
    """A garbled answer: TemporaryFailure on reads, OutcomeUnknown on a send."""
    with faulty(make_sandbox, malformed_rate=1.0) as c:
        with pytest.raises(TemporaryFailure, match="malformed answer") as caught:
            c.balance()
        assert not isinstance(caught.value, OutcomeUnknown)
        with pytest.raises(OutcomeUnknown, match="malformed answer"):
            c.send(message())


@pytest.mark.parametrize("body", [b"123|x", b"abc|d", b"123|d|456", b"\x00<garbled"])
def test_garbled_status_list_is_refused(body: bytes) -> None:
    """A get_status body that is not id|state pairs raises TemporaryFailure."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    with Easysms("https://www.net2sms.gr/", "demo", "demo", transport=transport) as c:
        with pytest.raises(TemporaryFailure, match="not id\\|state pairs"):
            c.get_status()


def test_status_list_with_legacy_digits() -> None:
    """States 1/2/3 (legacy) and a trailing pipe are read like s/d/f."""
    body = b"11|1|12|2|13|3|"
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    with Easysms("https://www.net2sms.gr/", "demo", "demo", transport=transport) as c:
        states = [(u.provider_id, u.state) for u in c.get_status()]
    assert states == [
        ("11", DeliveryState.PENDING),
        ("12", DeliveryState.DELIVERED),
        ("13", DeliveryState.FAILED),
    ]


# secrets ---------------------------------------------------------------------------------


def test_credentials_stay_secret(sandbox: SandboxServer, caplog: pytest.LogCaptureFixture) -> None:
    """Neither the repr, nor an error's message, nor the calls' log lines show the password."""
    caplog.set_level(logging.DEBUG, logger="smsxml.providers")
    with Easysms(sandbox.url_for("easysms"), "demo", "s3cr3t-pw") as c:
        assert "s3cr3t-pw" not in repr(c)
        with pytest.raises(AuthenticationFailed) as caught:
            c.send(message())
    token = base64.b64encode(b"demo:s3cr3t-pw").decode()
    for text in (str(caught.value), caplog.text):
        assert "s3cr3t-pw" not in text and token not in text
