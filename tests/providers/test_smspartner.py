"""SMS Partner: the client against its sandbox over real HTTP, and the sandbox against the
requests the vendor's pages write."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from smsxml import binding, xmlsafe
from smsxml.errors import (
    AuthenticationFailed,
    BadInput,
    InsufficientCredit,
    InvalidRecipient,
    InvalidSender,
    OutcomeUnknown,
    PermanentFailure,
    ProviderError,
    RateLimited,
    TemporaryFailure,
)
from smsxml.generated.smspartner import Result
from smsxml.providers.base import OutgoingMessage, Submitted
from smsxml.providers.smspartner import PARIS, SmsPartner
from smsxml.sandbox import DeliverySchedule, SandboxConfig, SandboxServer
from smsxml.sandbox.smspartner import partner_state
from smsxml.status import DeliveryState
from tests.conftest import FAST_SCHEDULE, wait_for

MakeSandbox = Callable[..., SandboxServer]
KEY = "demo-key"
MOBILE = "33612345678"
OTHER = "33612345679"
FAILING = "33612345670"  # ends in 0: the sandbox fails its delivery
VIRTUAL = "33700000001"


def v1(server: SandboxServer) -> str:
    return server.url_for("smspartner") + "/v1"


def demo(server: SandboxServer) -> Any:
    return server.sandbox.accounts["smspartner"]["demo"]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One client for the raw requests: building one costs an SSL context (~0.2 s)."""
    with httpx.Client() as client:
        yield client


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[SmsPartner]:
    with SmsPartner(v1(sandbox), KEY, virtual_numbers=[VIRTUAL]) as smspartner:
        yield smspartner


@pytest.fixture
def xml_client(sandbox: SandboxServer) -> Iterator[SmsPartner]:
    with SmsPartner(v1(sandbox), KEY, answer_format="xml") as smspartner:
        yield smspartner


def message(*recipients: str, text: str = "hello", **changes: Any) -> OutgoingMessage:
    return OutgoingMessage(changes.pop("sender", "MyShop"), list(recipients), text, **changes)


def final(client: SmsPartner, submitted: list[Submitted]) -> dict[str, DeliveryState]:
    updates = client.statuses(submitted)
    states = {u.recipient or "": u.state for u in updates}
    return states if all(s.final for s in states.values()) else {}


# sending ------------------------------------------------------------------------------


def test_send_gives_one_id_for_every_recipient_and_charges_each_part(
    sandbox: SandboxServer, client: SmsPartner
) -> None:
    """A send to two numbers is one /send call: one id, 0.038 EUR per part per number."""
    submitted = client.send(message(MOBILE, OTHER))
    assert [s.recipient for s in submitted] == [MOBILE, OTHER]
    assert len({s.provider_id for s in submitted}) == 1
    assert demo(sandbox).credits == Decimal("1000") - Decimal("0.076")
    stored = sandbox.sandbox.find("smspartner", submitted[0].provider_id)
    assert {(m.recipient, m.sender, m.parts) for m in stored} == {
        (MOBILE, "MyShop", 1),
        (OTHER, "MyShop", 1),
    }


@pytest.mark.parametrize(
    ("text", "unicode", "parts"),
    [
        ("a" * 160, False, 1),
        ("a" * 161, False, 2),
        ("a" * 158 + ":br:", False, 1),  # the :br: line break counts two characters
        ("a" * 159 + ":br:", False, 2),
        ("é" * 160, False, 1),  # é is GSM-7
        ("ж" * 160, False, 1),  # without isUnicode the vendor replaces what GSM-7 lacks
        ("ж" * 70, True, 1),
        ("ж" * 71, True, 2),
    ],
)
def test_texts_are_billed_per_sms_part(
    client: SmsPartner, text: str, unicode: bool, parts: int
) -> None:
    """160 GSM characters a part, then 153; with isUnicode 70, then 67."""
    sent = client.send_sms([MOBILE], text, unicode=unicode)
    assert (sent.nb_sms, sent.cost, sent.currency) == (parts, Decimal("0.038") * parts, "EUR")


def test_low_cost_range_and_stop_mention(client: SmsPartner) -> None:
    """gamme 2 costs 0.023 a part; isStopSms appends the STOP mention, which may add a part."""
    assert client.send_sms([MOBILE], "promo", gamme=2).cost == Decimal("0.023")
    assert client.send_sms([MOBILE], "a" * 150, stop_sms=True).nb_sms == 2


def test_send_without_sender_goes_out_from_the_shortcode(
    sandbox: SandboxServer, client: SmsPartner
) -> None:
    """An empty sender means the operator shortcode (36xxx)."""
    submitted = client.send(message(MOBILE, sender=""))
    assert sandbox.sandbox.find("smspartner", submitted[0].provider_id)[0].sender == "36034"


@pytest.mark.usefixtures("moved_clock")
def test_send_from_a_virtual_number_uses_vn_send(
    sandbox: SandboxServer, client: SmsPartner
) -> None:
    """A sender among the client's virtual numbers goes through /vn/send as ``from``, with
    the message's schedule and Unicode flag."""
    submitted = client.send(message(MOBILE, sender=VIRTUAL))
    assert sandbox.sandbox.find("smspartner", submitted[0].provider_id)[0].sender == VIRTUAL
    later = datetime.now(UTC) + timedelta(days=1)
    submitted = client.send(
        message(MOBILE, text="ж" * 71, sender=VIRTUAL, unicode=True, schedule=later)
    )
    stored = sandbox.sandbox.find("smspartner", submitted[0].provider_id)[0]
    assert (stored.sender, stored.parts) == (VIRTUAL, 2)
    assert 0 <= stored.send_at - later.timestamp() < 300  # rounded up to 5 minutes


def test_vn_send_refuses_a_from_that_is_no_number(client: SmsPartner) -> None:
    """/vn/send ``from`` must be an international number: code 9 on ``from`` → InvalidSender."""
    with pytest.raises(InvalidSender) as raised:
        client.vn_send([MOBILE], "MyShop", "hello")
    assert raised.value.code == 9


def test_send_refuses_more_than_500_recipients(client: SmsPartner) -> None:
    """max_batch is the vendor's 500 numbers per call; the client never splits a send."""
    assert SmsPartner.max_batch == 500
    with pytest.raises(ValueError, match="500"):
        client.send(message(*[MOBILE] * 501))


def test_bulk_send_answers_each_number(sandbox: SandboxServer, client: SmsPartner) -> None:
    """/bulk-send charges the lines it accepts; STOP-listed and invalid numbers fail alone."""
    partner_state(sandbox.sandbox).stop_list.add(OTHER)
    sent = client.bulk_send([(MOBILE, "a" * 161), (OTHER, "hi"), ("922264", "hi")])
    assert (sent.nb_sms, sent.cost, sent.currency) == (2, Decimal("0.076"), "EUR")
    assert [(i.phone_number, i.success, i.code, i.nb_sms) for i in sent.items] == [
        (MOBILE, True, 200, 2),
        (OTHER, False, 14, 0),
        ("922264", False, 9, 0),
    ]
    assert [m.recipient for m in sandbox.sandbox.find("smspartner", sent.message_id)] == [MOBILE]
    assert demo(sandbox).credits == Decimal("1000") - Decimal("0.076")


def test_sandbox_mode_sends_and_charges_nothing(sandbox: SandboxServer, client: SmsPartner) -> None:
    """sandbox=1: a normal answer, no charge, no message to ask the status of."""
    sent = client.send_sms([MOBILE], "hello", sandbox=True)
    assert sent.cost == Decimal("0.038")
    assert demo(sandbox).credits == Decimal("1000")
    with pytest.raises(PermanentFailure) as raised:
        client.message_status(sent.message_id, MOBILE)
    assert raised.value.code == 4


# account ------------------------------------------------------------------------------


def test_me_and_balance_derive_sms_counts_from_the_solde(
    sandbox: SandboxServer, client: SmsPartner
) -> None:
    """The solde is EUR; creditSms/creditSmsECO/creditHlr are what it buys at each price."""
    client.send_sms([MOBILE], "hello")
    info = client.me()
    assert info.solde == Decimal("999.962")
    assert (info.credit_sms, info.credit_sms_eco, info.credit_hlr) == (26314, 43476, 199992)
    assert (info.username, info.currency, info.to_send) == ("demo", "EUR", 0)
    balance = client.balance()
    assert (balance.amount, balance.unit) == (Decimal("999.962"), "EUR")


# delivery -----------------------------------------------------------------------------


def test_statuses_follow_the_lifecycle(client: SmsPartner) -> None:
    """Waiting reads as Pending, then Delivered; a number ending in 0 ends Failed."""
    submitted = client.send(message(MOBILE, FAILING))
    first = client.statuses(submitted)
    assert {u.state for u in first} <= {DeliveryState.PENDING, DeliveryState.DELIVERED}
    assert {u.detail for u in first} <= {"Waiting", "Delivered"}
    states = wait_for(lambda: final(client, submitted))
    assert states == {MOBILE: DeliveryState.DELIVERED, FAILING: DeliveryState.FAILED}


def test_message_status_answers_in_vendor_words(client: SmsPartner) -> None:
    """/message-status: statut Waiting → Delivered / Not delivered, with cost and country."""
    sent = client.send_sms([MOBILE, FAILING], "hello")
    wait_for(lambda: client.message_status(sent.message_id, MOBILE).state.final)
    delivered = client.message_status(sent.message_id, MOBILE)
    assert (delivered.statut, delivered.state) == ("Delivered", DeliveryState.DELIVERED)
    assert (delivered.cost, delivered.country_code, delivered.number) == (
        Decimal("0.038"),
        "FR",
        "+" + MOBILE,
    )
    failed = client.message_status(sent.message_id, FAILING)
    assert (failed.statut, failed.state) == ("Not delivered", DeliveryState.FAILED)


def test_statuses_leave_out_what_the_provider_cannot_find(client: SmsPartner) -> None:
    """multi-status says "Numéro introuvable" for an unknown pair; statuses() skips it."""
    sent = client.send_sms([MOBILE], "hello")
    items = client.multi_status([(sent.message_id, MOBILE), ("999", OTHER)])
    assert [(i.phone_number, i.state is not None) for i in items] == [
        (MOBILE, True),
        (OTHER, False),
    ]
    assert items[1].status == "Numéro introuvable"
    updates = client.statuses([Submitted(MOBILE, sent.message_id), Submitted(OTHER, "999")])
    assert [u.recipient for u in updates] == [MOBILE]


def test_statuses_ask_500_pairs_a_call(sandbox: SandboxServer) -> None:
    """statuses() splits its pairs into /multi-status calls of at most 500."""
    calls: list[int] = []

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            calls.append(len(json.loads(request.content)["SMSStatut_List"]))
            return super().handle_request(request)

    with SmsPartner(v1(sandbox), KEY, transport=Counting()) as smspartner:
        assert smspartner.statuses([Submitted(MOBILE, str(n)) for n in range(501)]) == []
    assert calls == [500, 1]


def test_delivery_callback_is_posted_and_parsed(client: SmsPartner, callbacks: Any) -> None:
    """urlDlr gets a JSON POST per final state; parse_delivery_report reads it."""
    submitted = client.send(message(MOBILE, FAILING, dlr_url=callbacks.url))
    wait_for(lambda: len(callbacks.received) >= 2)
    assert {r["content_type"] for r in callbacks.received} == {"application/json"}
    updates = {
        u.recipient: u
        for u in (SmsPartner.parse_delivery_report(r["json"]) for r in callbacks.received)
    }
    assert updates[MOBILE].state is DeliveryState.DELIVERED
    assert updates[FAILING].state is DeliveryState.FAILED
    assert updates[FAILING].detail == "Not delivered"
    assert {u.provider_id for u in updates.values()} == {submitted[0].provider_id}
    payload = callbacks.received[0]["json"]
    assert set(payload) == {"messageId", "phoneNumber", "status", "date", "cost", "currency"}


def test_parse_delivery_report_takes_every_vendor_spelling() -> None:
    """``statut``/``number`` (message-status spelling) parse too; junk is BadInput."""
    update = SmsPartner.parse_delivery_report(
        {"messageId": 307, "number": "0612345678", "statut": "Waiting"}
    )
    assert (update.provider_id, update.recipient, update.state) == (
        "307",
        MOBILE,
        DeliveryState.PENDING,
    )
    with pytest.raises(BadInput):
        SmsPartner.parse_delivery_report({"messageId": 1, "status": "Lost"})
    with pytest.raises(BadInput):
        SmsPartner.parse_delivery_report({"status": "Delivered"})


# scheduling and cancelling ------------------------------------------------------------


@pytest.mark.usefixtures("moved_clock")
def test_schedule_is_sent_in_paris_time_rounded_up_to_five_minutes(client: SmsPartner) -> None:
    """A UTC 10:02 becomes the next 5-minute mark in Paris time, echoed by the answer."""
    when = (datetime.now(UTC) + timedelta(days=2)).replace(minute=2, second=0, microsecond=0)
    sent = client.send_sms([MOBILE], "later", scheduled=when)
    expected = (when + timedelta(minutes=3)).astimezone(PARIS)
    assert sent.scheduled == f"{expected:%Y-%m-%d %H:%M:%S}"


@pytest.mark.usefixtures("moved_clock")
def test_scheduled_send_can_be_cancelled_and_is_refunded(
    sandbox: SandboxServer, client: SmsPartner
) -> None:
    """A send due in a day waits, counts in toSend, and message-cancel refunds it."""
    sent = client.send_sms([MOBILE], "later", scheduled=datetime.now(UTC) + timedelta(days=1))
    assert client.message_status(sent.message_id, MOBILE).statut == "Waiting"
    assert client.me().to_send == 1
    assert client.message_cancel(sent.message_id) == "L'envoi du SMS a été annulé."
    assert demo(sandbox).credits == Decimal("1000")
    assert client.message_status(sent.message_id, MOBILE).state is DeliveryState.FAILED


def test_cancel_is_refused_once_the_send_is_near_or_gone(client: SmsPartner) -> None:
    """No cancel less than 5 minutes before the send (code 9); unknown ids are code 4."""
    sent = client.send_sms([MOBILE], "now")
    with pytest.raises(PermanentFailure) as raised:
        client.message_cancel(sent.message_id)
    assert raised.value.code == 9
    with pytest.raises(PermanentFailure) as raised:
        client.message_cancel("999")
    assert raised.value.code == 4


# errors -------------------------------------------------------------------------------


def test_wrong_key_is_authentication_failed(sandbox: SandboxServer) -> None:
    """Code 10 "Clé API incorrecte" on every call."""
    with SmsPartner(v1(sandbox), "wrong") as smspartner:
        for call in (smspartner.balance, lambda: smspartner.send(message(MOBILE))):
            with pytest.raises(AuthenticationFailed) as raised:
                call()
            assert (raised.value.code, raised.value.text) == (10, "Clé API incorrecte")


@pytest.mark.parametrize(("flag", "code"), [("deactivated", 20), ("blocked", 30)])
def test_deactivated_or_blocked_account_is_authentication_failed(
    sandbox: SandboxServer, client: SmsPartner, flag: str, code: int
) -> None:
    """Codes 20 (deactivated) and 30 (blocked) stop the account."""
    getattr(partner_state(sandbox.sandbox), flag).add("demo")
    with pytest.raises(AuthenticationFailed) as raised:
        client.send(message(MOBILE))
    assert raised.value.code == code


def test_poor_account_is_insufficient_credit(sandbox: SandboxServer, client: SmsPartner) -> None:
    """Code 11 "Manque de crédits": nothing charged, nothing stored."""
    demo(sandbox).credits = Decimal("0.05")
    with pytest.raises(InsufficientCredit) as raised:
        client.send(message(MOBILE, OTHER))
    assert (raised.value.code, raised.value.text) == (11, "Manque de crédits")
    assert demo(sandbox).credits == Decimal("0.05")
    assert list(sandbox.sandbox.owned_by("smspartner", "demo")) == []


@pytest.mark.parametrize("sender", ["TooLongSender", "AB", "My-Shop!"])
def test_bad_sender_is_invalid_sender(client: SmsPartner, sender: str) -> None:
    """/send senders are 3–11 letters or digits: code 9 on ``sender`` → InvalidSender."""
    with pytest.raises(InvalidSender) as raised:
        client.send(message(MOBILE, sender=sender))
    assert raised.value.code == 9


def test_bad_recipient_is_invalid_recipient(client: SmsPartner) -> None:
    """One invalid number refuses the whole send: code 9 on ``phoneNumbers``."""
    with pytest.raises(InvalidRecipient) as raised:
        client.send(message(MOBILE, "922264"))
    assert raised.value.code == 9
    assert "922264" in raised.value.text


def test_stop_listed_recipient_is_invalid_recipient(
    sandbox: SandboxServer, client: SmsPartner
) -> None:
    """Code 14: the number asked for STOP."""
    partner_state(sandbox.sandbox).stop_list.add(OTHER)
    with pytest.raises(InvalidRecipient) as raised:
        client.send(message(MOBILE, OTHER))
    assert raised.value.code == 14


def test_missing_text_is_a_permanent_failure(client: SmsPartner) -> None:
    """Code 9 on ``message`` is neither a sender nor a recipient problem."""
    with pytest.raises(PermanentFailure) as raised:
        client.send(message(MOBILE, text=""))
    assert type(raised.value) is PermanentFailure
    assert (raised.value.code, raised.value.text) == (9, "Le message est requis")


# the vendor's own requests, byte for byte ---------------------------------------------


def test_vn_send_curl_sample(http: httpx.Client, sandbox: SandboxServer) -> None:
    """The vn/send page's curl: JSON POST, compact JSON answer."""
    body = '{"apiKey":"demo-key","to":"33612345678","from":"33700000001","message":"test"}'
    answer = http.post(
        v1(sandbox) + "/vn/send", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.content == (
        b'{"success":true,"code":200,"message_id":1000000001,"nb_sms":1,"cost":0.038,'
        b'"currency":"EUR"}'
    )


def test_vn_send_xml_answer(http: httpx.Client, sandbox: SandboxServer) -> None:
    """_format=xml: the page's positional <entry> list, CDATA strings, binding to Result."""
    fields = {"apiKey": KEY, "to": MOBILE, "from": VIRTUAL, "message": "test", "_format": "xml"}
    answer = http.post(v1(sandbox) + "/vn/send", json=fields)
    assert answer.content == (
        b"<?xml version='1.0' encoding='UTF-8'?>\n<result><entry>true</entry><entry>200</entry>"
        b"<entry>1000000001</entry><entry>1</entry><entry>0.038</entry>"
        b"<entry><![CDATA[EUR]]></entry></result>"
    )
    assert [e.content for e in binding.from_xml(answer.content, Result).entry] == [
        *(["true"], ["200"], ["1000000001"], ["1"], ["0.038"], ["EUR"])
    ]


def test_python_sample_posts_json_without_content_type(
    http: httpx.Client, sandbox: SandboxServer
) -> None:
    """The page's Python sample sends ``data=json.dumps(...)``: no JSON Content-Type."""
    body = json.dumps({"apiKey": KEY, "to": MOBILE, "from": VIRTUAL, "message": "msg"})
    answer = http.post(v1(sandbox) + "/vn/send", content=body)
    assert answer.json()["success"] is True


def test_php_sample_posts_json_labelled_as_a_form(
    http: httpx.Client, sandbox: SandboxServer
) -> None:
    """The page's PHP sample sets ``CURLOPT_POSTFIELDS`` to ``json_encode($fields)``, which
    curl labels ``application/x-www-form-urlencoded``: the API reads it as JSON."""
    body = json.dumps({"apiKey": KEY, "to": MOBILE, "from": VIRTUAL, "message": "msg"})
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = http.post(v1(sandbox) + "/vn/send", content=body, headers=form)
    assert answer.json()["success"] is True


@pytest.mark.usefixtures("moved_clock")
def test_send_php_sample_with_a_schedule(http: httpx.Client, sandbox: SandboxServer) -> None:
    """The /send sample: national number, sender, scheduledDeliveryDate + time + minute."""
    day = (datetime.now(PARIS) + timedelta(days=3)).strftime("%d/%m/%Y")
    fields = {
        "apiKey": KEY,
        "phoneNumbers": "0612345678",
        "message": "This is your message",
        "sender": "mycompany",
        "scheduledDeliveryDate": day,
        "time": 9,
        "minute": 0,
    }
    answer = http.post(v1(sandbox) + "/send", json=fields)
    when = datetime.strptime(day, "%d/%m/%Y")
    assert answer.content == (
        b'{"success":true,"code":200,"message_id":1000000001,"nb_sms":1,"cost":0.038,'
        b'"currency":"EUR","scheduledDeliveryDate":"' + f"{when:%Y-%m-%d} 09:00:00".encode() + b'"}'
    )


def test_send_validation_errors_are_listed_together(
    http: httpx.Client, sandbox: SandboxServer
) -> None:
    """Code 9 lists every field at fault, ``children[field].data``, with HTTP 400."""
    fields = {
        "apiKey": KEY,
        "phoneNumbers": "922264",
        "sender": "TooLongSender",
        "scheduledDeliveryDate": "21/11/2014",
    }
    answer = http.post(v1(sandbox) + "/send", json=fields)
    assert answer.status_code == 400
    assert answer.json() == {
        "success": False,
        "code": 9,
        "errors": [
            {
                "elementId": "children[sender].data",
                "message": "L'emetteur ne peut pas etre plus long que 11 caracteres",
            },
            {
                "elementId": "children[phoneNumbers].data",
                "message": "Ce numero de telephone n'est pas valide (922264)",
            },
            {"elementId": "children[minute].data", "message": "La minute est requise"},
            {"elementId": "children[time].data", "message": "L'heure est requise"},
            {"elementId": "children[message].data", "message": "Le message est requis"},
        ],
    }


@pytest.mark.usefixtures("moved_clock")
def test_past_schedule_is_refused(http: httpx.Client, sandbox: SandboxServer) -> None:
    """A date before now: the vendor's "est anterieure a la date actuelle" (code 9)."""
    fields = {"apiKey": KEY, "phoneNumbers": "+" + MOBILE, "message": "x"}
    fields |= {"scheduledDeliveryDate": "21/11/2014", "time": "9", "minute": "0"}
    answer = http.post(v1(sandbox) + "/send", json=fields)
    assert answer.json()["errors"] == [
        {
            "elementId": "children[scheduledDeliveryDate].data",
            "message": "La date (21/11/2014 à 9:0) est anterieure a la date actuelle.",
        }
    ]


@pytest.mark.parametrize(
    ("fields", "status", "body"),
    [
        ({}, 401, b'{"success":false,"code":1,"message":"La cl\\u00e9 API est requise"}'),
        (
            {"apiKey": "nope"},
            401,
            b'{"success":false,"code":10,"message":"Cl\\u00e9 API incorrecte"}',
        ),
        (
            {"apiKey": KEY, "message": "x"},
            400,
            b'{"success":false,"code":2,"message":"Le num\\u00e9ro de t\\u00e9l\\u00e9phone '
            b'est requis"}',
        ),
    ],
)
def test_error_answers_bytes(
    http: httpx.Client, sandbox: SandboxServer, fields: dict[str, str], status: int, body: bytes
) -> None:
    """Codes 1, 10 and 2 as JSON with HTTP 4xx, non-ASCII escaped like PHP's json_encode."""
    answer = http.post(v1(sandbox) + "/send", json=fields)
    assert (answer.status_code, answer.content) == (status, body)


def test_error_answer_in_xml(http: httpx.Client, sandbox: SandboxServer) -> None:
    """A simple error in XML: success, code, message, flat enough for Result."""
    answer = http.get(v1(sandbox) + "/me", params={"apiKey": "nope", "_format": "xml"})
    assert answer.status_code == 401
    assert answer.content == (
        b"<?xml version='1.0' encoding='UTF-8'?>\n<result><entry>false</entry><entry>10</entry>"
        + "<entry><![CDATA[Clé API incorrecte]]></entry></result>".encode()
    )
    assert binding.from_xml(answer.content, Result).entry[1].content == ["10"]


def test_me_get_sample(http: httpx.Client, sandbox: SandboxServer) -> None:
    """GET /me?apiKey=…: the user, then the credits; solde and balance are strings."""
    answer = http.get(v1(sandbox) + "/me?apiKey=demo-key")
    assert answer.content == (
        b'{"success":true,"code":200,"user":{"username":"demo","firstname":"","lastname":""},'
        b'"credits":{"creditSms":26315,"creditSmsECO":43478,"creditHlr":200000,"toSend":0,'
        b'"solde":"1000.000","currency":"EUR","balance":"1000.000"}}'
    )


def slow(make_sandbox: MakeSandbox) -> SandboxServer:
    """A sandbox whose messages stay Waiting for the length of a test."""
    return make_sandbox(SandboxConfig(schedule=DeliverySchedule(30.0, 60.0), seed=1))


def test_message_status_get_sample(http: httpx.Client, make_sandbox: MakeSandbox) -> None:
    """GET /message-status?apiKey&messageId&phoneNumber=06…: the number is echoed as asked."""
    sandbox = slow(make_sandbox)
    http.post(
        v1(sandbox) + "/send", json={"apiKey": KEY, "phoneNumbers": "+" + MOBILE, "message": "x"}
    )
    answer = http.get(
        v1(sandbox) + "/message-status?apiKey=demo-key&messageId=1000000001&phoneNumber=0612345678"
    )
    body = re.sub(rb'"date":"[0-9: -]{19}"', b'"date":"D"', answer.content)
    assert body == (
        b'{"success":true,"code":200,"number":"0612345678","messageId":"1000000001",'
        b'"stopSms":false,"date":"D","statut":"Waiting","cost":0.038,"countryCode":"FR",'
        b'"currency":"EUR"}'
    )


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("phoneNumber=0612345678", 400, 3),
        ("messageId=1", 400, 2),
        ("messageId=1&phoneNumber=0612345678", 404, 4),
    ],
)
def test_message_status_errors(
    http: httpx.Client, sandbox: SandboxServer, query: str, status: int, code: int
) -> None:
    """Codes 3 (no messageId), 2 (no phoneNumber), 4 (not found)."""
    answer = http.get(v1(sandbox) + f"/message-status?apiKey=demo-key&{query}")
    assert (answer.status_code, answer.json()["code"]) == (status, code)


def test_multi_status_curl_sample(http: httpx.Client, make_sandbox: MakeSandbox) -> None:
    """The multi-status curl: national numbers in, "+" international out (letters read as on a
    keypad, as the vendor's own answer shows: 06xxxxxxx2 → +33699999992), unknown pairs code 4."""
    sandbox = slow(make_sandbox)
    http.post(
        v1(sandbox) + "/send", json={"apiKey": KEY, "phoneNumbers": "0612345678", "message": "x"}
    )
    body = (
        '{"apiKey": "demo-key","SMSStatut_List": [{"phoneNumber": "0612345678", '
        '"messageId": 1000000001},{"phoneNumber": "06xxxxxxx2", "messageId": 1000}]}'
    )
    answer = http.post(
        v1(sandbox) + "/multi-status", content=body, headers={"Content-Type": "application/json"}
    )
    found, missing = answer.json()["StatutResponse_List"]
    assert set(found) == {
        "success",
        "code",
        "phoneNumber",
        "messageId",
        "status",
        "date",
        "stopSms",
        "isSpam",
    }
    assert (found["phoneNumber"], found["messageId"], found["status"]) == (
        "+33612345678",
        1000000001,
        "Waiting",
    )
    assert json.dumps(missing, separators=(",", ":")).encode() == (
        b'{"success":false,"code":4,"phoneNumber":"+33699999992","messageId":1000,'
        b'"status":"Num\\u00e9ro introuvable"}'
    )


@pytest.mark.usefixtures("moved_clock")
def test_message_cancel_get_sample(http: httpx.Client, sandbox: SandboxServer) -> None:
    """GET /message-cancel?apiKey&messageId: the vendor's confirmation text."""
    day = (datetime.now(PARIS) + timedelta(days=1)).strftime("%d/%m/%Y")
    fields = {"apiKey": KEY, "phoneNumbers": "+" + MOBILE, "message": "x"}
    http.post(
        v1(sandbox) + "/send", json=fields | {"scheduledDeliveryDate": day, "time": 9, "minute": 0}
    )
    answer = http.get(v1(sandbox) + "/message-cancel?apiKey=demo-key&messageId=1000000001")
    assert answer.content == (
        b'{"success":true,"code":200,"message":"L\'envoi du SMS a \\u00e9t\\u00e9 annul\\u00e9."}'
    )


def test_unknown_paths_methods_and_bodies(http: httpx.Client, sandbox: SandboxServer) -> None:
    """404 off the API, 405 for a GET send, 400 code 9 for a body that is not JSON."""
    assert http.get(v1(sandbox) + "/nothing").status_code == 404
    assert http.get(v1(sandbox) + "/send?apiKey=demo-key").status_code == 405
    answer = http.post(v1(sandbox) + "/send", content=b'{"message": "un "guillemet""}')
    assert (answer.status_code, answer.json()["code"]) == (400, 9)


def test_unknown_parameters_are_ignored(http: httpx.Client, sandbox: SandboxServer) -> None:
    """Clients send typos and extras (webhookUrl, virtualNumber in the vendor's samples)."""
    fields = {"apiKey": KEY, "phoneNumbers": "+" + MOBILE, "message": "x", "webhookUrl": "x"}
    assert http.post(v1(sandbox) + "/send", json=fields | {"virtualNumber": "1"}).json()["success"]


# the positional XML through the client ------------------------------------------------


@pytest.mark.usefixtures("moved_clock")
def test_xml_client_reads_positional_answers(xml_client: SmsPartner) -> None:
    """With answer_format="xml", sends, statuses and cancels bind to Result by position."""
    sent = xml_client.send_sms([MOBILE], "hello", scheduled=datetime.now(UTC) + timedelta(days=1))
    assert (sent.nb_sms, sent.cost, sent.currency) == (1, Decimal("0.038"), "EUR")
    assert sent.scheduled
    status = xml_client.message_status(sent.message_id, MOBILE)
    assert (status.statut, status.country_code, status.stop_sms) == ("Waiting", "FR", False)
    assert xml_client.message_cancel(sent.message_id) == "L'envoi du SMS a été annulé."


def test_xml_client_reads_nested_validation_errors(xml_client: SmsPartner) -> None:
    """The XML of code 9 nests unnamed entries; the client still finds the sender at fault."""
    with pytest.raises(InvalidSender) as raised:
        xml_client.send(message(MOBILE, sender="TooLongSender"))
    assert raised.value.text == "L'emetteur ne peut pas etre plus long que 11 caracteres"


def test_code_9_xml_answer_is_schema_valid_and_read_as_a_clear_error(
    http: httpx.Client, sandbox: SandboxServer, xml_client: SmsPartner
) -> None:
    """Code 9 in XML holds one nested <entry> [elementId, message] per problem: result.xsd
    accepts it, and the client raises the failing field's error with every vendor text."""
    fields = {"apiKey": KEY, "phoneNumbers": "12", "message": "", "_format": "xml"}
    answer = http.post(v1(sandbox) + "/send", json=fields)
    assert answer.status_code == 400
    root = xmlsafe.parse(answer.content)
    assert xmlsafe.schema_problems(xmlsafe.load_schema("smspartner/result.xsd"), root) == []
    assert [len(problem) for problem in root[2]] == [2, 2]
    with pytest.raises(InvalidRecipient) as raised:
        xml_client.send_sms(["12"], "")
    assert raised.value.code == 9
    assert raised.value.text == (
        "Ce numero de telephone n'est pas valide (+12); Le message est requis"
    )


def test_xml_client_reads_simple_errors(sandbox: SandboxServer) -> None:
    """A code-10 XML answer is AuthenticationFailed too."""
    with SmsPartner(v1(sandbox), "nope", answer_format="xml") as smspartner:
        with pytest.raises(AuthenticationFailed):
            smspartner.message_status("1", MOBILE)


# faults -------------------------------------------------------------------------------


def faulty(make_sandbox: MakeSandbox, **faults: Any) -> SmsPartner:
    config = SandboxConfig(schedule=FAST_SCHEDULE, seed=1).with_faults("smspartner", **faults)
    return SmsPartner(v1(make_sandbox(config)), KEY)


def test_503_on_reads_is_temporary_after_retries(make_sandbox: MakeSandbox) -> None:
    """HTTP 503 on every try: TemporaryFailure once the retries are spent."""
    with faulty(make_sandbox, error_rate=1.0) as smspartner:
        with pytest.raises(TemporaryFailure) as raised:
            smspartner.balance()
    assert type(raised.value) is TemporaryFailure
    assert raised.value.code == 503


def test_one_503_is_retried_away(make_sandbox: MakeSandbox) -> None:
    """A single 503 on a read is retried and the call succeeds."""
    with faulty(make_sandbox, error_count=1) as smspartner:
        assert smspartner.balance().amount == Decimal("1000")


@pytest.mark.parametrize(("status", "error"), [(503, TemporaryFailure), (500, OutcomeUnknown)])
def test_5xx_on_send(make_sandbox: MakeSandbox, status: int, error: type[ProviderError]) -> None:
    """503 means not processed (temporary); 500 on a send may have sent it (outcome unknown)."""
    with faulty(make_sandbox, error_rate=1.0, error_status=status) as smspartner:
        with pytest.raises(error) as raised:
            smspartner.send(message(MOBILE))
    assert type(raised.value) is error


def test_dropped_connection(make_sandbox: MakeSandbox) -> None:
    """A dropped connection: OutcomeUnknown on a send, TemporaryFailure on a read."""
    with faulty(make_sandbox, drop_rate=1.0) as smspartner:
        with pytest.raises(OutcomeUnknown):
            smspartner.send(message(MOBILE))
        with pytest.raises(TemporaryFailure) as raised:
            smspartner.message_status("1", MOBILE)
    assert not isinstance(raised.value, OutcomeUnknown)


def test_rate_limit_is_rate_limited(make_sandbox: MakeSandbox) -> None:
    """HTTP 429 with Retry-After: RateLimited carrying the delay."""
    with faulty(make_sandbox, rate_limit=0) as smspartner:
        with pytest.raises(RateLimited) as raised:
            smspartner.send(message(MOBILE))
    assert raised.value.retry_after == 1.0


def test_garbled_answers(make_sandbox: MakeSandbox) -> None:
    """A cut, junk-tailed answer: OutcomeUnknown for a send or a cancel (it may have acted),
    TemporaryFailure for a read, in JSON and in XML."""
    config = SandboxConfig(schedule=FAST_SCHEDULE, seed=1).with_faults(
        "smspartner", malformed_rate=1.0
    )
    server = make_sandbox(config)
    with SmsPartner(v1(server), KEY) as smspartner:
        with pytest.raises(OutcomeUnknown):
            smspartner.send(message(MOBILE))
        with pytest.raises(OutcomeUnknown):
            smspartner.message_cancel("1")
        with pytest.raises(TemporaryFailure) as raised:
            smspartner.me()
        assert type(raised.value) is TemporaryFailure
        assert raised.value.code == "malformed"
    with SmsPartner(v1(server), KEY, answer_format="xml") as smspartner:
        with pytest.raises(OutcomeUnknown):
            smspartner.send(message(MOBILE))
        with pytest.raises(TemporaryFailure) as raised:
            smspartner.message_status("1", MOBILE)
        assert type(raised.value) is TemporaryFailure


# secrets ------------------------------------------------------------------------------


def test_the_key_never_shows(make_sandbox: MakeSandbox, caplog: pytest.LogCaptureFixture) -> None:
    """Neither the repr, nor an error message, nor httpx's request log shows the API key."""
    secret = "s3cr3t-Key-42"
    config = SandboxConfig(api_key=secret, schedule=FAST_SCHEDULE).with_faults(
        "smspartner", error_rate=1.0
    )
    caplog.set_level(logging.DEBUG)
    with SmsPartner(v1(make_sandbox(config)), secret) as smspartner:
        assert secret not in repr(smspartner)
        with pytest.raises(TemporaryFailure) as raised:
            smspartner.message_status("1", MOBILE)  # the key travels in the query string
    assert secret not in str(raised.value)
    with SmsPartner("http://127.0.0.1:9/v1", secret) as smspartner:
        with pytest.raises(TemporaryFailure) as raised:
            smspartner.send(message(MOBILE))
    assert secret not in str(raised.value)
    assert secret not in caplog.text
    with pytest.raises(ValueError):
        SmsPartner("http://127.0.0.1:9/v1", "")
