"""easysms, net2sms.gr's legacy API: the client against the sandbox over real HTTP, the
sandbox's exact answers to requests written as the vendor page writes them, and faults."""

from __future__ import annotations

import base64
import logging
import time
import urllib.request
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
SEND = "/srvauth/index?cmd=easysms&action=send_sms"


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[Easysms]:
    with Easysms(sandbox.url_for("easysms"), "demo", "demo") as c:
        yield c


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One plain HTTP client for the raw requests (building one costs a TLS context)."""
    with httpx.Client() as plain:
        yield plain


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


# the vendor's own requests, exact answers ------------------------------------------------


def test_send_as_the_vendor_page_writes_it(http: httpx.Client, sandbox: SandboxServer) -> None:
    """GET …/srvauth/index?cmd=easysms&action=send_sms&mobile_number=…&text=…&originator=…
    with Basic auth answers return_code|sms_id|balance, like 1|456123789|112."""
    url = sandbox.url_for("easysms") + SEND + "&mobile_number=4917512345"
    url += "&text=Hello+World&originator=MyCompany"
    answer = http.get(url, auth=("demo", "demo"))
    code, sms_id, balance = answer.text.split("|")
    assert (answer.status_code, code, balance) == (200, "1", "999")
    assert sms_id.isdigit() and len(sms_id) == 10
    assert answer.content == f"1|{sms_id}|999".encode()
    (stored,) = sandbox.sandbox.find("easysms", sms_id)
    assert (stored.recipient, stored.text, stored.sender) == (
        "4917512345",
        "Hello World",
        "MyCompany",
    )


def test_credentials_in_the_url(http: httpx.Client, sandbox: SandboxServer) -> None:
    """https://user:pass@host/srvauth/index?… (the PHP and C samples) is Basic auth too."""
    url = sandbox.url_for("easysms").replace("http://", "http://demo:demo@")
    answer = http.get(url + SEND + "&mobile_number=4917512345&text=x")
    assert answer.text.startswith("1|")


def test_basic_auth_challenge(sandbox: SandboxServer) -> None:
    """Without credentials: 401 with a Basic challenge, so urllib's HTTPBasicAuthHandler
    (the Python sample's opener) answers it and gets the balance."""
    url = sandbox.url_for("easysms") + "/srvauth/index"
    bare = httpx.get(url, params={"cmd": "easysms", "action": "get_balance", "balance": "true"})
    assert bare.status_code == 401
    assert bare.headers["WWW-Authenticate"] == 'Basic realm="net2sms.gr"'
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, url, "demo", "demo")
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(passwords))
    with opener.open(url + "?cmd=easysms&action=get_balance&balance=true") as response:
        assert response.read() == b"1000"


def test_get_status_answers_a_flat_list(http: httpx.Client, sandbox: SandboxServer) -> None:
    """action=get_status&get_status=true answers id|state|id|state, then nothing."""
    base = sandbox.url_for("easysms")
    ids = [
        http.get(
            base + SEND + f"&mobile_number={to}&text=x&request_delivery=true", auth=("demo", "demo")
        ).text.split("|")[1]
        for to in (GR, GR_FAILS)
    ]
    time.sleep(FAST_SCHEDULE.final_after + 0.05)
    status = base + "/srvauth/index?cmd=easysms&action=get_status&get_status=true"
    assert http.get(status, auth=("demo", "demo")).content == f"{ids[0]}|d|{ids[1]}|f".encode()
    assert http.get(status, auth=("demo", "demo")).content == b""


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("&text=x", "102"),
        ("&mobile_number=12ab&text=x", "103"),
        ("&mobile_number=4917512345", "104"),
        ("&mobile_number=4917512345&text=x&originator=TooLongName1", "40"),
    ],
)
def test_refused_sends(http: httpx.Client, sandbox: SandboxServer, query: str, code: str) -> None:
    """A refused send answers code|0|balance with HTTP 200 and charges nothing."""
    answer = http.get(sandbox.url_for("easysms") + SEND + query, auth=("demo", "demo"))
    assert (answer.status_code, answer.content) == (200, f"{code}|0|1000".encode())


def test_poor_account_raw(http: httpx.Client, sandbox: SandboxServer) -> None:
    """Without SMS left the send answers 105|0|0."""
    account(sandbox).credits = Decimal(0)
    answer = http.get(
        sandbox.url_for("easysms") + SEND + f"&mobile_number={GR}&text=x", auth=("demo", "demo")
    )
    assert answer.content == b"105|0|0"


def test_post_typos_and_unknown_actions(http: httpx.Client, sandbox: SandboxServer) -> None:
    """A POSTed form works; an unknown parameter (the `originator=` typo of one client) is
    ignored; an unknown action answers HTTP 400."""
    url = sandbox.url_for("easysms") + "/srvauth/index"
    form = {
        "cmd": "easysms",
        "action": "send_sms",
        "mobile_number": GR,
        "text": "x",
        "originator=": "PV",
    }
    answer = http.post(url, data=form, auth=("demo", "demo"))
    (stored,) = sandbox.sandbox.find("easysms", answer.text.split("|")[1])
    assert stored.sender == "net2sms"  # the default: the typo sent no originator
    unknown = http.get(url, params={"cmd": "easysms", "action": "teleport"}, auth=("demo", "demo"))
    assert unknown.status_code == 400


def test_accounts_are_not_shared_with_net2sms(http: httpx.Client, sandbox: SandboxServer) -> None:
    """easysms has its own accounts: a changed net2sms password does not change it."""
    sandbox.sandbox.accounts["net2sms"]["demo"].password = "other"
    url = sandbox.url_for("easysms") + "/srvauth/index?cmd=easysms&action=get_balance&balance=true"
    assert http.get(url, auth=("demo", "demo")).content == b"1000"
    assert http.get(url, auth=("demo", "other")).status_code == 401


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
