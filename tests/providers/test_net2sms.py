"""net2sms.gr REST API v2: the client against the sandbox over real HTTP, the sandbox's exact
answers to requests written as the vendor page writes them, and injected faults."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import pytest
import time_machine

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
from smsxml.providers.net2sms import Net2sms
from smsxml.sandbox import DeliverySchedule, SandboxConfig, SandboxServer
from smsxml.sandbox.core import Account
from smsxml.status import DeliveryState
from tests.conftest import FAST_SCHEDULE, wait_for

GR = "306912345671"  # delivered by the sandbox schedule
GR_FAILS = "306912345670"  # numbers ending in 0 fail


@pytest.fixture(params=["json", "xml"])
def client(request: pytest.FixtureRequest, sandbox: SandboxServer) -> Iterator[Net2sms]:
    """A key client reading JSON or XML answers."""
    with Net2sms(sandbox.url_for("net2sms"), "demo-key", answer_format=request.param) as c:
        yield c


Api = Callable[..., httpx.Response]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One plain HTTP client for the raw requests (building one costs a TLS context)."""
    with httpx.Client() as plain:
        yield plain


@pytest.fixture
def api(http: httpx.Client, sandbox: SandboxServer) -> Api:
    """A raw GET as the vendor page writes it: https://net2sms.gr/api/<call>?key=…"""

    def get(call: str, **params: str) -> httpx.Response:
        return http.get(f"{sandbox.url_for('net2sms')}/api/{call}", params=params)

    return get


def account(sandbox: SandboxServer) -> Account:
    return sandbox.sandbox.accounts["net2sms"]["demo"]


# keys ------------------------------------------------------------------------------------


def test_get_key_with_username_and_password(sandbox: SandboxServer) -> None:
    """key/get returns the account's key for its username and password."""
    with Net2sms(sandbox.url_for("net2sms"), username="demo", password="demo") as c:
        assert c.get_key() == "demo-key"


def test_reset_key_replaces_the_key(sandbox: SandboxServer) -> None:
    """key/reset returns a new key the client uses from then on; the old key is refused."""
    url = sandbox.url_for("net2sms")
    with Net2sms(url, "demo-key", username="demo", password="demo") as c:
        new = c.reset_key()
        assert new != "demo-key" and len(new) == 14
        assert c.balance().amount == 1000
        assert c.get_key() == new
    with Net2sms(url, "demo-key") as old, pytest.raises(AuthenticationFailed):
        old.balance()


def test_get_key_with_a_wrong_password(sandbox: SandboxServer) -> None:
    """key/get with a wrong password raises AuthenticationFailed with code 101."""
    with Net2sms(sandbox.url_for("net2sms"), username="demo", password="nope") as c:
        with pytest.raises(AuthenticationFailed) as caught:
            c.get_key()
    assert caught.value.code == "101"
    assert caught.value.text == "Invalid API key"


def test_key_calls_need_username_and_password(sandbox: SandboxServer) -> None:
    """key/get from a key-only client is refused before any request."""
    with Net2sms(sandbox.url_for("net2sms"), "demo-key") as c, pytest.raises(ValueError):
        c.get_key()


# sending ---------------------------------------------------------------------------------


def test_send_one_recipient(client: Net2sms, sandbox: SandboxServer) -> None:
    """send() to one number uses sms/send: one id, one SMS charged, sender and text kept."""
    submitted = client.send(OutgoingMessage("MyCompany", [GR], "Hello"))
    assert [s.recipient for s in submitted] == [GR]
    (stored,) = sandbox.sandbox.find("net2sms", submitted[0].provider_id)
    assert (stored.sender, stored.text, stored.parts, stored.flash) == (
        "MyCompany",
        "Hello",
        1,
        False,
    )
    assert account(sandbox).credits == 999


def test_send_sms_options(client: Net2sms, sandbox: SandboxServer) -> None:
    """sms/send passes flash and ucs, and answers the balance after the charge."""
    sent = client.send_sms(GR, "Καλημέρα", sender="306900000000", flash=True, ucs=True)
    (stored,) = sandbox.sandbox.find("net2sms", sent.id)
    assert stored.flash and stored.unicode and stored.sender == "306900000000"
    assert sent.balance == Decimal(999) and sent.remarks == "Success"


def test_long_and_unicode_texts_are_charged_per_part(
    client: Net2sms, sandbox: SandboxServer
) -> None:
    """161 GSM-7 characters cost 2 SMS; 71 Greek lowercase letters are sent UCS-2, 2 SMS."""
    client.send(OutgoingMessage("Shop", [GR], "a" * 161))
    submitted = client.send(OutgoingMessage("Shop", [GR], "α" * 71))
    (stored,) = sandbox.sandbox.find("net2sms", submitted[0].provider_id)
    assert stored.unicode and stored.parts == 2
    assert account(sandbox).credits == 996


def test_send_bulk(client: Net2sms, sandbox: SandboxServer) -> None:
    """send() to several numbers is one sms/bulk call: one id per recipient, in order."""
    recipients = [GR, "306912345672", "4917512345"]
    submitted = client.send(OutgoingMessage("Shop", recipients, "Sale"))
    assert [s.recipient for s in submitted] == recipients
    assert len({s.provider_id for s in submitted}) == 3
    assert account(sandbox).credits == 997


def test_send_bulk_counts_rejected_numbers(client: Net2sms, sandbox: SandboxServer) -> None:
    """sms/bulk accepts the valid numbers, counts the others and charges only the accepted."""
    bulk = client.send_bulk([GR, "not-a-number", "306912345672"], "Hi", sender="Shop")
    assert [s.recipient for s in bulk.submitted] == [GR, "306912345672"]
    assert (bulk.accepted, bulk.rejected, bulk.cost, bulk.balance) == (2, 1, 2, 998)
    assert bulk.remarks == "Success: Accepted for delivery: 2, Not accepted for delivery: 1"


def test_send_checks_the_batch_size(client: Net2sms) -> None:
    """More recipients than max_batch, or none, is refused before any request."""
    with pytest.raises(ValueError):
        client.send(OutgoingMessage("Shop", [GR] * (Net2sms.max_batch + 1), "x"))
    with pytest.raises(ValueError):
        client.send(OutgoingMessage("Shop", [], "x"))


def test_username_and_password_instead_of_a_key(sandbox: SandboxServer) -> None:
    """A client without a key sends with username and password on every call."""
    with Net2sms(sandbox.url_for("net2sms"), username="demo", password="demo") as c:
        assert len(c.send(OutgoingMessage("Shop", [GR], "Hi"))) == 1
        assert c.balance().amount == 999


# refusals --------------------------------------------------------------------------------


def test_invalid_key(sandbox: SandboxServer) -> None:
    """A wrong key raises AuthenticationFailed (101) on sends and reads."""
    with Net2sms(sandbox.url_for("net2sms"), "wrong-key") as c:
        with pytest.raises(AuthenticationFailed) as caught:
            c.send(OutgoingMessage("Shop", [GR], "Hi"))
        assert caught.value.code == "101" and caught.value.provider == "net2sms"
        with pytest.raises(AuthenticationFailed):
            c.balance()


def test_not_enough_sms(client: Net2sms, sandbox: SandboxServer) -> None:
    """An account short of SMS raises InsufficientCredit (105) and is charged nothing."""
    account(sandbox).credits = Decimal(1)
    with pytest.raises(InsufficientCredit) as caught:
        client.send(OutgoingMessage("Shop", [GR], "a" * 200))
    assert caught.value.code == "105"
    assert caught.value.text == "Error: You dont have enough sms"
    with pytest.raises(InsufficientCredit):
        client.send(OutgoingMessage("Shop", [GR, "306912345672"], "Hi"))
    assert account(sandbox).credits == 1


@pytest.mark.parametrize("sender", ["TooLongName1", "12345678901234567", "Bad!Name", "+3069"])
def test_invalid_sender(client: Net2sms, sender: str) -> None:
    """A sender over 11 alphanumerics or 16 digits, or with odd characters, raises
    InvalidSender (40)."""
    with pytest.raises(InvalidSender) as caught:
        client.send(OutgoingMessage(sender, [GR], "Hi"))
    assert caught.value.code == "40"


@pytest.mark.parametrize("sender", ["ElevenChars", "1234567890123456", "My Shop"])
def test_valid_senders(client: Net2sms, sender: str) -> None:
    """11 alphanumerics, 16 digits and names with a space are accepted."""
    assert client.send(OutgoingMessage(sender, [GR], "Hi"))


@pytest.mark.parametrize("to", ["abc", "123", "3069123456789012", "0691234567"])
def test_invalid_recipient(client: Net2sms, to: str) -> None:
    """A number that cannot be parsed raises InvalidRecipient (103), alone or in a bulk."""
    with pytest.raises(InvalidRecipient) as caught:
        client.send(OutgoingMessage("Shop", [to], "Hi"))
    assert caught.value.code == "103"
    with pytest.raises(InvalidRecipient):
        client.send(OutgoingMessage("Shop", [to, "x"], "Hi"))


def test_missing_text(client: Net2sms) -> None:
    """An empty text is refused with code 104, a permanent failure."""
    with pytest.raises(PermanentFailure) as caught:
        client.send_sms(GR, "")
    assert caught.value.code == "104"


# balance ---------------------------------------------------------------------------------


def test_balance_and_me_balance(client: Net2sms, sandbox: SandboxServer) -> None:
    """balance/get and me/balance both give the SMS left."""
    assert client.balance() == Balance(Decimal(1000), "SMS")
    account(sandbox).credits = Decimal(12)
    assert client.me_balance() == Balance(Decimal(12), "SMS")


# delivery --------------------------------------------------------------------------------


def test_delivery_lifecycle_through_the_drain(client: Net2sms, sandbox: SandboxServer) -> None:
    """statuses() drains status/get: Pending, then Delivered, or Failed for a number ending
    in 0; each change comes once; news of messages sent elsewhere come too."""
    submitted = client.send(OutgoingMessage("Shop", [GR, GR_FAILS], "Hi"))
    with Net2sms(sandbox.url_for("net2sms"), "demo-key") as other:
        (elsewhere,) = other.send(OutgoingMessage("Shop", ["306912345679"], "Hi"))
    seen: dict[str, list[DeliveryState]] = {}

    def settled() -> bool:
        for update in client.statuses(submitted):
            seen.setdefault(update.provider_id, []).append(update.state)
            if update.provider_id != elsewhere.provider_id:
                assert update.recipient in (GR, GR_FAILS)
        return all(ids and ids[-1].final for ids in seen.values()) and len(seen) == 3

    wait_for(settled)
    by_recipient = {s.recipient: seen[s.provider_id][-1] for s in submitted}
    assert by_recipient == {GR: DeliveryState.DELIVERED, GR_FAILS: DeliveryState.FAILED}
    assert seen[elsewhere.provider_id][-1] is DeliveryState.DELIVERED
    assert all(len(states) == len(set(states)) for states in seen.values())
    assert client.statuses(submitted) == []


def test_status_sms(client: Net2sms, sandbox: SandboxServer) -> None:
    """status/sms has no report while a message is queued, then its state and cost. The
    sandbox's schedule runs on a clock the test holds still, then moves past it (the
    first check, 50 ms late on a loaded machine, once found the message Pending)."""
    with time_machine.travel(time.time(), tick=False) as clock:
        sent = client.send_sms(GR_FAILS, "Hi")
        assert client.status_sms(sent.id) is None
        clock.shift(FAST_SCHEDULE.final_after + 1)
        report = client.status_sms(sent.id)
    assert report is not None
    assert (report.id, report.state, report.letter, report.cost) == (
        sent.id,
        DeliveryState.FAILED,
        "f",
        1,
    )


def test_status_sms_of_an_unknown_message(client: Net2sms) -> None:
    """status/sms of an unknown id raises code 109; of a non-number, 108."""
    with pytest.raises(PermanentFailure) as caught:
        client.status_sms("999")
    assert caught.value.code == "109"
    with pytest.raises(PermanentFailure) as caught:
        client.status_sms("abc")
    assert caught.value.code == "108"


@pytest.mark.usefixtures("moved_clock")
def test_scheduled_message_can_be_cancelled(client: Net2sms, sandbox: SandboxServer) -> None:
    """A message scheduled with timestamp stays queued; sms/cancel purges it and refunds it;
    a second cancel is refused with 110."""
    later = int(time.time()) + 3600
    sent = client.send_sms(GR, "a" * 200, timestamp=later)
    (stored,) = sandbox.sandbox.find("net2sms", sent.id)
    assert stored.send_at == later and account(sandbox).credits == 998
    assert client.status_sms(sent.id) is None
    cancelled = client.cancel(sent.id)
    assert (cancelled.id, cancelled.balance) == (sent.id, 1000)
    assert cancelled.remarks == "Success: Message purged"
    with pytest.raises(PermanentFailure) as caught:
        client.cancel(sent.id)
    assert caught.value.code == "110"


def test_message_already_sent_cannot_be_cancelled(client: Net2sms) -> None:
    """sms/cancel of a message already gone out raises 111, of a delivered one 110."""
    sent = client.send_sms(GR, "Hi")
    with pytest.raises(PermanentFailure) as caught:
        client.cancel(sent.id)
    assert caught.value.code == "111"
    wait_for(lambda: (r := client.status_sms(sent.id)) and r.state.final)
    with pytest.raises(PermanentFailure) as caught:
        client.cancel(sent.id)
    assert caught.value.code == "110"


def test_mobile_check(client: Net2sms) -> None:
    """mobile/check describes a Greek mobile given nationally; a bad number raises 201."""
    info = client.mobile_check("6912345678")
    assert (info.msisdn, info.national, info.country, info.country_code) == (
        "306912345678",
        "6912345678",
        "GREECE",
        30,
    )
    assert (info.gsm_code, info.number, info.mcc) == ("691", "2345678", "202")
    with pytest.raises(InvalidRecipient) as caught:
        client.mobile_check("12")
    assert caught.value.code == "201"


# the vendor's own requests, exact answers ------------------------------------------------


def test_key_get_in_three_shapes(api: Api, sandbox: SandboxServer) -> None:
    """key/get answers the bare key (v2, the default), JSON and XML as on the vendor page."""
    creds = {"username": "demo", "password": "demo"}
    assert api("key/get", **creds).content == b"demo-key"
    assert api("key/get", **creds, type="v2").content == b"demo-key"
    answer = api("key/get", **creds, type="json")
    assert answer.content == b'{"status":"1","key":"demo-key","remarks":"Success"}'
    assert answer.headers["content-type"].startswith("application/json")
    assert api("key/get", **creds, type="xml").content == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<response>\n  <status>1</status>\n'
        b"  <key>demo-key</key>\n  <remarks>Success</remarks>\n</response>\n"
    )


def test_sms_send_in_three_shapes(api: Api, sandbox: SandboxServer) -> None:
    """sms/send?key=…&to=…&text=…&from=… answers the id (v2), JSON and XML."""
    send = {"key": "demo-key", "to": "4917512345", "text": "My test message", "from": "MyMessage"}
    message_id = api("sms/send", **send).text
    assert message_id.isdigit() and len(message_id) == 10
    answer = json.loads(api("sms/send", **send, type="json").content)
    assert list(answer) == ["status", "id", "balance", "remarks"]
    assert answer["status"] == "1" and answer["balance"] == "998"
    xml = api("sms/send", **send, type="xml").content
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<response>\n')
    assert b"<balance>997</balance>\n  <remarks>Success</remarks>\n</response>\n" in xml
    (stored,) = sandbox.sandbox.find("net2sms", message_id)
    assert (stored.recipient, stored.sender, stored.text) == (
        "4917512345",
        "MyMessage",
        "My test message",
    )


def test_balance_get_in_three_shapes(api: Api, sandbox: SandboxServer) -> None:
    """balance/get answers the number of SMS left in every shape."""
    assert api("balance/get", key="demo-key").content == b"1000"
    assert (
        api("balance/get", key="demo-key", type="json").content
        == b'{"status":"1","balance":"1000","remarks":"Success"}'
    )
    assert (
        api("me/balance", key="demo-key", type="json").content
        == b'{"status":"1","balance":"1000","remarks":"Success","error":"0"}'
    )
    assert b"<balance>1000</balance>" in api("balance/get", key="demo-key", type="xml").content


def test_status_get_in_three_shapes(api: Api, sandbox: SandboxServer) -> None:
    """status/get lists each change once: v2 pipes, JSON numbered objects, XML <sms>."""
    ids = [api("sms/send", key="demo-key", to=to, text="x").text for to in (GR, GR_FAILS)]
    time.sleep(FAST_SCHEDULE.final_after + 0.05)
    assert api("status/get", key="demo-key").text == f"{ids[0]}|d|\n{ids[1]}|f"
    assert api("status/get", key="demo-key", type="json").content == (
        b'{"status":"1","total":"0","remarks":"Info: No pending reports"}'
    )
    api("sms/send", key="demo-key", to=GR, text="x")
    time.sleep(FAST_SCHEDULE.final_after + 0.05)
    answer = json.loads(api("status/get", key="demo-key", type="json").content)
    assert answer["total"] == "1" and answer["0"]["status"] == "d" and "1" not in answer
    api("sms/send", key="demo-key", to=GR_FAILS, text="x")
    time.sleep(FAST_SCHEDULE.final_after + 0.05)
    xml = api("status/get", key="demo-key", type="xml").text
    assert "<total>1</total>" in xml and "<status>f</status>\n  </sms>" in xml


@pytest.mark.parametrize(
    ("params", "code", "remarks"),
    [
        ({"key": "nope", "to": GR, "text": "x"}, "101", "Invalid API key"),
        ({"key": "demo-key", "text": "x"}, "102", "Error: Parameter [to] is missing"),
        (
            {"key": "demo-key", "to": "12a", "text": "x"},
            "103",
            "Error: Parameter [to] cannot be parsed",
        ),
        ({"key": "demo-key", "to": GR}, "104", "Error: Parameter [text] is missing"),
        (
            {"key": "demo-key", "to": GR, "text": "x", "from": "A" * 12},
            "40",
            "Error: Parameter [from] is invalid",
        ),
        (
            {"key": "demo-key", "to": GR, "text": "x", "timestamp": "soon"},
            "106",
            "Error: Message couldnt be sent",
        ),
    ],
)
def test_sms_send_failures(
    api: Api, sandbox: SandboxServer, params: dict[str, str], code: str, remarks: str
) -> None:
    """Failures come with HTTP 200: v2 prints the remarks, JSON and XML the zeroed send shape."""
    v2 = api("sms/send", **params)
    assert (v2.status_code, v2.text) == (200, remarks)
    balance = "0" if code == "101" else "1000"
    assert json.loads(api("sms/send", **params, type="json").content) == {
        "status": "0",
        "id": "0",
        "cost": "0",
        "balance": balance,
        "mcc": "",
        "mnc": "",
        "remarks": remarks,
        "error": code,
    }
    xml = api("sms/send", **params, type="xml").text
    assert (
        f"<status>0</status>\n  <id>0</id>\n  <cost>0</cost>\n  <balance>{balance}</balance>" in xml
    )
    assert f"<mcc/>\n  <mnc/>\n  <remarks>{remarks}</remarks>\n  <error>{code}</error>" in xml


def test_not_enough_sms_raw(api: Api, sandbox: SandboxServer) -> None:
    """A poor account gets error 105 and keeps its balance."""
    account(sandbox).credits = Decimal(0)
    answer = json.loads(api("sms/send", key="demo-key", to=GR, text="x", type="json").content)
    assert (answer["error"], answer["remarks"], answer["balance"]) == (
        "105",
        "Error: You dont have enough sms",
        "0",
    )


def test_sms_bulk_raw_forms(http: httpx.Client, sandbox: SandboxServer) -> None:
    """sms/bulk takes `to` as a comma list or as to[]=…&to[]=…, by GET or POST."""
    url = f"{sandbox.url_for('net2sms')}/api/sms/bulk"
    comma = http.get(
        url, params={"key": "demo-key", "to": f"{GR},bad", "text": "x", "type": "json"}
    )
    answer = comma.json()
    assert (answer["accepted"], answer["rejected"], answer["cost"], answer["error"]) == (
        "1",
        "1",
        "1",
        "0",
    )
    assert answer["sms"] == [{"id": answer["id"][0], "smsId": answer["id"][0], "msisdn": GR}]
    form = {"key": "demo-key", "to[]": [GR, GR_FAILS], "text": "x", "type": "json"}
    posted = http.post(url, data=form).json()
    assert [item["msisdn"] for item in posted["sms"]] == [GR, GR_FAILS]
    assert posted["remarks"] == "Success"


def test_post_and_multipart_are_accepted(http: httpx.Client, sandbox: SandboxServer) -> None:
    """The same call POSTed url-encoded, or multipart as PHP's curl sends an array, works."""
    url = f"{sandbox.url_for('net2sms')}/api/sms/send"
    fields = {"key": "demo-key", "to": GR, "text": "Hi", "type": "json"}
    assert http.post(url, data=fields).json()["status"] == "1"
    multipart = {name: (None, value) for name, value in fields.items()}
    assert http.post(url, files=multipart).json()["status"] == "1"


def test_unknown_parameters_are_ignored(api: Api, sandbox: SandboxServer) -> None:
    """Parameters the API does not know do not change the answer."""
    answer = api("balance/get", key="demo-key", type="json", colour="blue", originator="x")
    assert answer.json()["balance"] == "1000"


def test_unknown_call_is_not_found(api: Api, sandbox: SandboxServer) -> None:
    """A path that is no call answers HTTP 404."""
    assert api("sms/teleport", key="demo-key").status_code == 404


def test_mobile_check_needs_no_key(api: Api, sandbox: SandboxServer) -> None:
    """mobile/check is free and open: no key; without `mobile` it answers 205."""
    answer = api("mobile/check", mobile="306912345678", type="json").json()
    assert answer["mobile"]["country"] == "GREECE" and answer["status"] == "1"
    assert api("mobile/check", type="json").json()["error"] == "205"


# faults ----------------------------------------------------------------------------------


def faulty(make_sandbox: Callable[..., SandboxServer], **faults: object) -> Net2sms:
    config = SandboxConfig(schedule=FAST_SCHEDULE, seed=1).with_faults("net2sms", **faults)
    return Net2sms(make_sandbox(config).url_for("net2sms"), "demo-key")


def test_outage_is_temporary(make_sandbox: Callable[..., SandboxServer]) -> None:
    """HTTP 503 on every request: reads and sends raise TemporaryFailure after retries."""
    with faulty(make_sandbox, error_rate=1.0) as c:
        with pytest.raises(TemporaryFailure) as caught:
            c.balance()
        assert caught.value.code == 503 and not isinstance(caught.value, OutcomeUnknown)
        with pytest.raises(TemporaryFailure):
            c.send(OutgoingMessage("Shop", [GR], "Hi"))


def test_http_500_on_send_is_an_unknown_outcome(make_sandbox: Callable[..., SandboxServer]) -> None:
    """HTTP 500 may come after the send was done: OutcomeUnknown, not retried."""
    with faulty(make_sandbox, error_rate=1.0, error_status=500) as c:
        with pytest.raises(OutcomeUnknown):
            c.send(OutgoingMessage("Shop", [GR], "Hi"))


def test_dropped_connection(make_sandbox: Callable[..., SandboxServer]) -> None:
    """A dropped connection is OutcomeUnknown on a send, TemporaryFailure on a read."""
    with faulty(make_sandbox, drop_rate=1.0) as c:
        with pytest.raises(OutcomeUnknown):
            c.send(OutgoingMessage("Shop", [GR], "Hi"))
        with pytest.raises(TemporaryFailure) as caught:
            c.status_get()
        assert not isinstance(caught.value, OutcomeUnknown)


def test_rate_limited(make_sandbox: Callable[..., SandboxServer]) -> None:
    """HTTP 429 raises RateLimited with the Retry-After delay."""
    with faulty(make_sandbox, rate_limit=0) as c, pytest.raises(RateLimited) as caught:
        c.balance()
    assert caught.value.retry_after == 1.0


@pytest.mark.parametrize("answer_format", ["json", "xml"])
def test_malformed_answers(make_sandbox: Callable[..., SandboxServer], answer_format: str) -> None:
    """A garbled answer is a TemporaryFailure on reads and an OutcomeUnknown on a send
    (the provider did act on it)."""
    config = SandboxConfig(schedule=FAST_SCHEDULE).with_faults("net2sms", malformed_rate=1.0)
    server = make_sandbox(config)
    with Net2sms(server.url_for("net2sms"), "demo-key", answer_format=answer_format) as c:
        with pytest.raises(TemporaryFailure, match="malformed answer") as caught:
            c.balance()
        assert not isinstance(caught.value, OutcomeUnknown)
        with pytest.raises(OutcomeUnknown, match="malformed answer"):
            c.send(OutgoingMessage("Shop", [GR], "Hi"))
    assert server.sandbox.accounts["net2sms"]["demo"].credits == 999


# secrets ---------------------------------------------------------------------------------


def test_credentials_stay_secret(sandbox: SandboxServer, caplog: pytest.LogCaptureFixture) -> None:
    """Neither the repr, nor an error's message, nor the calls' log lines show key or password."""
    caplog.set_level(logging.DEBUG, logger="smsxml.providers")
    url = sandbox.url_for("net2sms")
    with Net2sms(url, "secret-key-123", username="demo", password="s3cr3t-pw") as c:
        assert "secret-key-123" not in repr(c) and "s3cr3t-pw" not in repr(c)
        with pytest.raises(AuthenticationFailed) as caught:
            c.send(OutgoingMessage("Shop", [GR], "Hi"))
        with pytest.raises(AuthenticationFailed) as on_key:
            c.get_key()
    for error in (caught.value, on_key.value):
        assert "secret-key-123" not in str(error) and "s3cr3t-pw" not in str(error)
    assert caplog.records and "secret-key-123" not in caplog.text and "s3cr3t-pw" not in caplog.text


def test_statuses_fill_in_known_recipients(client: Net2sms) -> None:
    """statuses() gives the recipient of ids it was handed, and None for the others."""
    (mine,) = client.send(OutgoingMessage("Shop", [GR], "Hi"))
    (other,) = client.send(OutgoingMessage("Shop", ["306912345672"], "Hi"))
    time.sleep(FAST_SCHEDULE.final_after + 0.05)
    updates = client.statuses([mine])
    assert {u.provider_id: u.recipient for u in updates} == {
        mine.provider_id: GR,
        other.provider_id: None,
    }
    assert all(u.state is DeliveryState.DELIVERED and u.detail == "d" for u in updates)


def test_states_in_order(make_sandbox: Callable[..., SandboxServer]) -> None:
    """With a slow schedule: nothing to report while Queued, then s (Pending), then d or f,
    each reported once by the drain."""
    slow = DeliverySchedule(pending_after=0.4, final_after=1.2, fail_suffixes=("0",))
    server = make_sandbox(SandboxConfig(schedule=slow))
    with Net2sms(server.url_for("net2sms"), "demo-key") as c:
        submitted = c.send(OutgoingMessage("Shop", [GR, GR_FAILS], "Hi"))
        sent_at = time.monotonic()
        ids = [s.provider_id for s in submitted]
        assert c.statuses(submitted) == [] and c.status_sms(ids[0]) is None
        time.sleep(max(0.0, sent_at + 0.7 - time.monotonic()))
        pending = c.statuses(submitted)
        assert [(u.provider_id, u.state, u.detail) for u in pending] == [
            (ids[0], DeliveryState.PENDING, "s"),
            (ids[1], DeliveryState.PENDING, "s"),
        ]
        assert c.statuses(submitted) == []
        time.sleep(max(0.0, sent_at + 1.4 - time.monotonic()))
        final = {u.recipient: (u.state, u.detail) for u in c.statuses(submitted)}
        assert final == {GR: (DeliveryState.DELIVERED, "d"), GR_FAILS: (DeliveryState.FAILED, "f")}
