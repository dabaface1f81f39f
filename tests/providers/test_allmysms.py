"""allmysms HTTP API v9: the client against the sandbox over real HTTP, and raw requests
written as the vendor's samples write them."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from werkzeug.test import Client as WsgiClient

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
from smsxml.generated.allmysms import Data, Flag, Recipient
from smsxml.providers.allmysms import PARIS, Allmysms
from smsxml.providers.base import OutgoingMessage, StatusUpdate, Submitted
from smsxml.sandbox import Sandbox, SandboxConfig, SandboxServer
from smsxml.sandbox.allmysms import STATUS_TEXTS, AllmysmsApp
from smsxml.sandbox.core import Account
from smsxml.status import DeliveryState
from tests.conftest import FAST_SCHEDULE, CallbackReceiver, wait_for

FR1, FR2, FR_FAIL = "33612345678", "33687654321", "33611111110"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-11e5-bf51-0025907cd72e"
ONE_SMS = f"<DATA><MESSAGE>x</MESSAGE><SMS><MOBILEPHONE>{FR1}</MOBILEPHONE></SMS></DATA>"


def api(server: SandboxServer) -> str:
    return server.url_for("allmysms") + "/http/9.0/"


def account(server: SandboxServer, name: str = "demo") -> Account:
    return server.sandbox.accounts["allmysms"][name]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One HTTP client for the raw requests (building one costs ~0.15 s of TLS setup)."""
    with httpx.Client() as client:
        yield client


@pytest.fixture(scope="module")
def shared_client() -> Iterator[Allmysms]:
    """A client of one sandbox shared by tests that change no state (refused feeds)."""
    with SandboxServer(SandboxConfig(schedule=FAST_SCHEDULE, seed=1)) as server:
        with Allmysms(api(server), login="demo", api_key="demo-key") as c:
            yield c


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[Allmysms]:
    with Allmysms(api(sandbox), login="demo", api_key="demo-key") as c:
        yield c


def feed(*numbers: str, message: str = "Bonjour", **fields: object) -> Data:
    return Data(message=message, sms=[Recipient(mobilephone=n) for n in numbers], **fields)


def future_date(hours: int = 2) -> str:
    return (datetime.now(PARIS) + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")


# sending ------------------------------------------------------------------------------


def test_send_xml_feed_gives_one_id_per_recipient_and_charges_per_part(
    client: Allmysms, sandbox: SandboxServer
) -> None:
    """send() posts an XML feed; one uuid smsId per recipient; 2 parts x 2 numbers = 4."""
    submitted = client.send(OutgoingMessage("Shop", [FR1, FR2], "x" * 200))
    assert [s.recipient for s in submitted] == [FR1, FR2]
    assert all(re.fullmatch(UUID, s.provider_id) for s in submitted)
    assert account(sandbox).credits == Decimal(996)
    stored = sandbox.sandbox.find("allmysms", submitted[0].provider_id)[0]
    assert (stored.sender, stored.parts, stored.text) == ("Shop", 2, "x" * 200)


def test_send_json_feed_on_request(sandbox: SandboxServer) -> None:
    """feed_format="json" sends {"DATA": …}; the sandbox reads it like the XML feed."""
    with Allmysms(api(sandbox), login="demo", api_key="demo-key", feed_format="json") as c:
        result = c.send_feed(feed(FR1, message="Ça marche", tpoa="Shop", flash=Flag.VALUE_1))
    assert (result.status, result.nb_contacts, result.credits) == (100, 1, Decimal(999))
    stored = sandbox.sandbox.find("allmysms", result.submitted[0].provider_id)[0]
    assert (stored.text, stored.flash, stored.unicode) == ("Ça marche", True, False)


def test_xml_answers_bind_to_the_generated_response(sandbox: SandboxServer) -> None:
    """answer_format="xml" reads the <RESPONSE> answer through binding.from_xml."""
    with Allmysms(api(sandbox), login="demo", api_key="demo-key", answer_format="xml") as c:
        result = c.send_feed(feed(FR1, FR2))
        assert (result.status, result.credits_used, result.nb_sms) == (100, Decimal(2), 2)
        assert result.campaign_id and len(result.submitted) == 2
        with pytest.raises(InvalidSender):
            c.send_feed(feed(FR1, tpoa="1bad"))


def test_placeholders_are_filled_per_recipient_and_charged_after_substitution(
    client: Allmysms, sandbox: SandboxServer
) -> None:
    """#param_1# takes each recipient's PARAM_1; a long value makes 2 parts, so 3 credits."""
    data = Data(
        message="Bonjour #param_1#, code #param_2#",
        dynamic=2,
        sms=[
            Recipient(mobilephone=FR1, param_1="Anne", param_2="42"),
            Recipient(mobilephone=FR2, param_1="B" * 150, param_2="7"),
        ],
    )
    result = client.send_feed(data)
    assert (result.credits_used, result.nb_sms, result.nb_contacts) == (Decimal(3), 3, 2)
    texts = [sandbox.sandbox.find("allmysms", s.provider_id)[0].text for s in result.submitted]
    assert texts == ["Bonjour Anne, code 42", f"Bonjour {'B' * 150}, code 7"]


def test_some_invalid_numbers_are_skipped_and_the_others_sent(client: Allmysms) -> None:
    """Status 113: invalidNumbers lists the refused numbers; smsIds the sent ones, in order."""
    result = client.send_feed(feed(FR1, "3361", FR2, "999"))
    assert (result.status, result.invalid_numbers) == (113, ("3361", "999"))
    assert [s.recipient for s in result.submitted] == [FR1, FR2]
    assert client.send(OutgoingMessage("", ["3361", FR1], "x"))[0].recipient == FR1


def test_too_many_recipients_is_a_programming_error(client: Allmysms) -> None:
    """send() refuses more than max_batch recipients before any request."""
    with pytest.raises(ValueError, match="1000"):
        client.send(OutgoingMessage("Shop", [FR1] * 1001, "x"))


@pytest.mark.usefixtures("moved_clock")
def test_scheduled_campaign_is_queued_then_deleted_with_refund(
    client: Allmysms, sandbox: SandboxServer
) -> None:
    """DATE in the future: 101; deleteCampaign cancels it, refunds it, and forgets its ids."""
    now = client.send(OutgoingMessage("Shop", [FR1], "Tout de suite"))
    scheduled = client.send_feed(feed(FR1, FR2, date=future_date()))
    assert scheduled.scheduled and scheduled.status_text == STATUS_TEXTS[101]
    assert account(sandbox).credits == Decimal(997)
    assert {u.state for u in client.statuses(scheduled.submitted)} == {DeliveryState.QUEUED}
    client.delete_campaign(scheduled.campaign_id)
    assert account(sandbox).credits == Decimal(999)
    known = client.statuses([*scheduled.submitted, *now])
    assert [u.provider_id for u in known] == [now[0].provider_id]
    with pytest.raises(PermanentFailure) as error:
        client.get_acks(scheduled.campaign_id)
    assert error.value.code == "KO"


@pytest.mark.usefixtures("moved_clock")
def test_schedule_datetime_is_sent_in_paris_time(client: Allmysms, sandbox: SandboxServer) -> None:
    """An aware datetime becomes a Paris DATE; the sandbox holds the message until then."""
    when = datetime.now(PARIS) + timedelta(days=1)
    (sub,) = client.send(OutgoingMessage("Shop", [FR1], "x", schedule=when))
    stored = sandbox.sandbox.find("allmysms", sub.provider_id)[0]
    assert abs(stored.send_at - when.timestamp()) < 1


def test_deleting_a_sent_or_unknown_campaign_is_refused(client: Allmysms) -> None:
    """deleteCampaign only cancels campaigns still waiting for their DATE."""
    sent = client.send_feed(feed(FR1))
    for campaign_id in (sent.campaign_id, "999"):
        with pytest.raises(PermanentFailure) as error:
            client.delete_campaign(campaign_id)
        assert error.value.code == "KO"


def test_simulate_campaign_prices_a_feed_without_sending(
    client: Allmysms, sandbox: SandboxServer
) -> None:
    """simulateCampaign: nbCredits/nbContacts/nbSms; nothing charged, nothing stored."""
    simulation = client.simulate_campaign(feed(FR1, FR2, "12", message="ê" * 80))
    assert (simulation.nb_credits, simulation.nb_contacts, simulation.nb_sms) == (4, 2, 4)
    assert simulation.invalid_numbers == ("12",)
    assert account(sandbox).credits == Decimal(1000)
    assert not sandbox.sandbox.messages["allmysms"]
    account(sandbox).credits = Decimal(3)
    with pytest.raises(InsufficientCredit):
        client.simulate_campaign(feed(FR1, FR2, message="ê" * 80))


def test_get_info_and_balance(client: Allmysms, sandbox: SandboxServer) -> None:
    """getInfo gives the credits (the apiKey it echoes is not kept); balance() uses it."""
    account(sandbox).credits = Decimal("12.5")
    info = client.get_info()
    assert (info.status, info.credits) == ("Active Account", Decimal("12.5"))
    assert "demo-key" not in repr(info)
    assert client.balance().amount == Decimal("12.5") and client.balance().unit == "credits"
    with pytest.raises(PermanentFailure, match="Sous-compte"):
        client.get_info("nobody")


# delivery -----------------------------------------------------------------------------


def all_final(updates: list[StatusUpdate]) -> list[StatusUpdate] | None:
    return updates if all(u.state.final for u in updates) else None


def test_statuses_follow_the_lifecycle(client: Allmysms) -> None:
    """getAckBySmsId: Queued (no ack), Pending (statut 3), then Delivered (1) / Failed (2)."""
    submitted = client.send(OutgoingMessage("Shop", [FR1, FR_FAIL], "Bonjour"))
    first = client.statuses(submitted)
    assert {u.state for u in first} <= {DeliveryState.QUEUED, DeliveryState.PENDING}
    wait_for(
        lambda: any(u.state is DeliveryState.PENDING for u in client.statuses(submitted)),
    )
    final = wait_for(lambda: all_final(client.statuses(submitted)))
    assert [(u.state, u.recipient, u.detail) for u in final] == [
        (DeliveryState.DELIVERED, FR1, "1 Delivered"),
        (DeliveryState.FAILED, FR_FAIL, "2 Not delivered"),
    ]


def test_get_acks_of_a_campaign(client: Allmysms) -> None:
    """getAcks lists the acknowledgements received, with the campaign's CLIMSGID."""
    result = client.send_feed(feed(FR1, FR_FAIL, climsgid="order-42"))
    acks = wait_for(
        lambda: (
            (a := client.get_acks(result.campaign_id)).acks
            and all(x.state.final for x in a.acks)
            and a
        )
    )
    assert acks.cli_msg_id == "order-42"
    assert sorted((a.phone_number, a.statut, a.comment) for a in acks.acks) == [
        (FR_FAIL, 2, "Not delivered"),
        (FR1, 1, "Delivered"),
    ]
    assert all(isinstance(a.reception_date, datetime) for a in acks.acks)
    one = client.get_ack_by_sms_id(result.submitted[0].provider_id)
    assert (one.statut, one.sms_id) == (1, result.submitted[0].provider_id)


def test_webhook_posts_final_acks_that_parse_as_status_updates(
    client: Allmysms, sandbox: SandboxServer, callbacks: CallbackReceiver, http: httpx.Client
) -> None:
    """The per-login webhook (sandbox-only endpoint) gets one form POST per final ack."""
    answer = http.post(
        sandbox.url_for("allmysms") + "/sandbox/webhook",
        data={"login": "demo", "apiKey": "demo-key", "url": callbacks.url},
    )
    assert answer.json() == {"status": "OK"}
    result = client.send_feed(feed(FR1, FR_FAIL))
    wait_for(lambda: len(callbacks.received) >= 2)
    forms = sorted((r["form"] for r in callbacks.received), key=lambda f: f["phoneNumber"])
    assert set(forms[0]) == {
        "smsId",
        "status",
        "statusText",
        "phoneNumber",
        "receptionDate",
        "campaignId",
    }
    assert {f["campaignId"] for f in forms} == {result.campaign_id}
    updates = [Allmysms.parse_delivery_report(f) for f in forms]
    assert [(u.recipient, u.state) for u in updates] == [
        (FR_FAIL, DeliveryState.FAILED),
        (FR1, DeliveryState.DELIVERED),
    ]
    assert {u.provider_id for u in updates} == {s.provider_id for s in result.submitted}
    datetime.strptime(forms[0]["receptionDate"], "%Y-%m-%d %H:%M:%S")


def test_webhook_set_in_the_constructor() -> None:
    """AllmysmsApp(sandbox, webhooks=…) gives each login's messages its webhook URL."""
    core = Sandbox(SandboxConfig(schedule=FAST_SCHEDULE))
    app = AllmysmsApp(core, webhooks={"demo": "http://hook.example/ack"})
    answer = WsgiClient(app).post(
        "/http/9.0/sendSms",
        data={
            "login": "demo",
            "apiKey": "demo-key",
            "returnformat": "json",
            "smsData": ONE_SMS,
        },
    )
    assert answer.json is not None
    sms_id = answer.json["smsIds"][0]["smsId"]
    assert core.find("allmysms", sms_id)[0].dlr_url == "http://hook.example/ack"
    assert core.callbacks["allmysms"] is not None


def test_parse_delivery_report_refuses_what_is_not_an_ack() -> None:
    """A webhook POST without smsId or with an unknown status is BadInput."""
    update = Allmysms.parse_delivery_report(
        {"smsId": "a", "status": "5", "statusText": "SMS rejected", "phoneNumber": FR1}
    )
    assert (update.state, update.detail) == (DeliveryState.FAILED, "5 SMS rejected")
    assert Allmysms.parse_delivery_report({"smsId": "a", "status": "3"}).state == "Pending"
    for fields in ({"status": "1"}, {"smsId": "a", "status": "9"}, {"smsId": "a"}):
        with pytest.raises(BadInput):
            Allmysms.parse_delivery_report(fields)


# errors -------------------------------------------------------------------------------


def test_bad_credentials_on_every_call(sandbox: SandboxServer) -> None:
    """Status 102 on sends and reads alike is AuthenticationFailed."""
    with Allmysms(api(sandbox), login="demo", api_key="wrong") as c:
        for call in (
            lambda: c.send_feed(feed(FR1)),
            c.get_info,
            lambda: c.get_acks("1"),
            lambda: c.statuses([Submitted(FR1, "x")]),
        ):
            with pytest.raises(AuthenticationFailed) as error:
                call()
            assert error.value.code == 102 and error.value.text == STATUS_TEXTS[102]


def test_credit_exhausted_and_insufficient(client: Allmysms, sandbox: SandboxServer) -> None:
    """103 when nothing is left, 104 with the vendor's "A utiliser / Disponibles" counts."""
    account(sandbox).credits = Decimal(0)
    with pytest.raises(InsufficientCredit) as error:
        client.send_feed(feed(FR1))
    assert error.value.code == 103
    account(sandbox).credits = Decimal(1)
    with pytest.raises(InsufficientCredit) as error:
        client.send_feed(feed(FR1, FR2))
    assert error.value.code == 104
    assert "A utiliser: 2 Crédits, Disponibles: 1 Crédits" in error.value.text
    assert account(sandbox).credits == Decimal(1)


@pytest.mark.parametrize(
    ("data", "code", "error"),
    [
        (feed(FR1, tpoa="1Shop"), 107, InvalidSender),
        (feed(FR1, tpoa="ShopWithALongName"), 107, InvalidSender),
        (feed("123", "0612345678"), 114, InvalidRecipient),
        (feed(FR1, message=""), 110, PermanentFailure),
        (feed(FR1, message="x" * 641), 111, PermanentFailure),
        (feed(FR1, date="2030-02-31 10:00:00"), 115, PermanentFailure),
        (feed(FR1, message="Hi #param_1#"), 112, PermanentFailure),
        (feed(FR1, message="Hi #param_2#", dynamic=1), 112, PermanentFailure),
        (feed(FR1, message="Hi #param_1#", dynamic=1), 109, PermanentFailure),
        (feed(FR1, message="https://e.fr/" + "a" * 80, tracking=Flag.VALUE_1), 117, None),
        (feed(FR1, masteraccount="ghost"), 118, AuthenticationFailed),
    ],
)
def test_feed_errors_map_to_typed_errors(
    shared_client: Allmysms, data: Data, code: int, error: type[PermanentFailure] | None
) -> None:
    """Each documented feed status raises its typed error, carrying the vendor's text."""
    with pytest.raises(error or PermanentFailure) as raised:
        shared_client.send_feed(data)
    assert (raised.value.code, raised.value.text) == (code, STATUS_TEXTS[code])


@pytest.mark.parametrize(
    "tpoa",
    ["Abc", "Abcdefghijk", "Shop2026", "123", "36180", "33612345678", "4917512345678901"],
)
def test_tpoa_names_and_numeric_senders_are_taken(
    client: Allmysms, sandbox: SandboxServer, tpoa: str
) -> None:
    """A name of 3-11 letters and digits, or a number of 3-16 digits, is the sender."""
    result = client.send_feed(feed(FR1, tpoa=tpoa))
    assert result.status == 100
    assert sandbox.sandbox.find("allmysms", result.submitted[0].provider_id)[0].sender == tpoa


@pytest.mark.parametrize(
    "tpoa", ["Ab", "Abcdefghijkl", "1Shop", "12", "12345678901234567", "+33612345678", "Shop-1"]
)
def test_tpoa_outside_the_rule_is_107(shared_client: Allmysms, tpoa: str) -> None:
    """One character short or over either limit, a name opening with a digit, a "+": 107."""
    with pytest.raises(InvalidSender) as raised:
        shared_client.send_feed(feed(FR1, tpoa=tpoa))
    assert raised.value.code == 107


def test_a_long_link_is_fine_without_tracking(client: Allmysms) -> None:
    """117 is about TRACKING: without it a long link is just text."""
    assert client.send_feed(feed(FR1, message="https://e.fr/" + "a" * 80)).status == 100


# raw requests, as the vendor's samples write them -------------------------------------

XML_FEED = (
    "<DATA> <MESSAGE><![CDATA[Envoi de SMS test avec AllMySMS.com]]></MESSAGE> "
    f"<TPOA>allmysms</TPOA> <SMS> <MOBILEPHONE>{FR1}</MOBILEPHONE> </SMS> </DATA>"
)


def sent_xml(campaign: str, credits: int, sms_id: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<RESPONSE>\n  <status>100</status>\n'
        "  <statusText>Le message a été envoyé</statusText>\n  <invalidNumbers/>\n"
        f"  <campaignId>{campaign}</campaignId>\n  <credits>{credits}</credits>\n"
        "  <creditsUsed>1</creditsUsed>\n  <nbContacts>1</nbContacts>\n  <nbSms>1</nbSms>\n"
        f"  <smsIds>\n    <SMS>\n      <phoneNumber>{FR1}</phoneNumber>\n"
        f"      <smsId>{sms_id}</smsId>\n    </SMS>\n  </smsIds>\n</RESPONSE>\n"
    ).encode()


def ids_of(body: bytes) -> tuple[str, str]:
    found = re.search(rb"<campaignId>(\d+)</campaignId>.*<smsId>([^<]+)</smsId>", body, re.S)
    assert found is not None
    return found.group(1).decode(), found.group(2).decode()


def test_raw_php_sample_post(sandbox: SandboxServer, http: httpx.Client) -> None:
    """The PHP sample: form POST to /sendSms/, XML answer by default (exact bytes)."""
    answer = http.post(
        api(sandbox) + "sendSms/",
        data={"login": "demo", "apiKey": "demo-key", "smsData": XML_FEED},
    )
    campaign, sms_id = ids_of(answer.content)
    assert answer.status_code == 200
    assert answer.content == sent_xml(campaign, 999, sms_id)


def test_raw_csharp_sample_get(sandbox: SandboxServer, http: httpx.Client) -> None:
    """The C#/Java samples: GET with the feed in the query string, without trailing slash."""
    url = f"{api(sandbox)}sendSms?login=demo&apiKey=demo-key&smsData={XML_FEED}&typo=1"
    answer = http.get(url)
    campaign, sms_id = ids_of(answer.content)
    assert answer.content == sent_xml(campaign, 999, sms_id)
    assert answer.headers["content-type"].startswith("text/xml")


def test_raw_perl_sample_multipart(sandbox: SandboxServer, http: httpx.Client) -> None:
    """The Perl sample posts multipart/form-data; the fields are read all the same."""
    answer = http.post(
        api(sandbox) + "sendSms/",
        files={"smsData": (None, XML_FEED)},
        data={"login": "demo", "apiKey": "demo-key", "returnformat": "json"},
    )
    assert answer.json()["status"] == 100


def test_raw_windev_sample_json_feed(sandbox: SandboxServer, http: httpx.Client) -> None:
    """The WINDEV sample: JSON feed with a lower-case "date", returnformat=JSON (exact)."""
    now = datetime.now(PARIS).strftime("%Y-%m-%d %H:%M:%S")
    sms_data = (
        f'{{"DATA":{{"MESSAGE":"Votre SMS","SMS":[{{"MOBILEPHONE":"{FR1}"}},'
        f'{{"MOBILEPHONE":"{FR2}"}}],"date":"{now}","TPOA":"Expediteur"}}}}'
    )
    body = f"login=demo&apiKey=demo-key&smsData={sms_data}&returnformat=JSON"
    answer = http.post(
        api(sandbox) + "sendSms/",
        content=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    data = answer.json()
    ids = [entry["smsId"] for entry in data["smsIds"]]
    assert (
        answer.content
        == (
            '{"status":100,"statusText":"Le message a \\u00e9t\\u00e9 envoy\\u00e9",'
            f'"invalidNumbers":"","campaignId":"{data["campaignId"]}","credits":"998",'
            '"creditsUsed":"2","nbContacts":"2","nbSms":"2","smsIds":['
            f'{{"phoneNumber":"{FR1}","smsId":"{ids[0]}"}},'
            f'{{"phoneNumber":"{FR2}","smsId":"{ids[1]}"}}]}}'
        ).encode()
    )


def test_raw_davaxi_json_feed_with_nulls(sandbox: SandboxServer, http: httpx.Client) -> None:
    """davaxi/AllMySMS posts every key, unset ones as null, DYNAMIC as a number."""
    sms_data = (
        '{"DATA":{"MESSAGE":"Bonjour #param_1#","DYNAMIC":1,"FLASH":"0","CAMPAIGN_NAME":null,'
        '"DATE":null,"TPOA":null,"MAIL_NOTIF":"0","SMS":[{"MOBILEPHONE":"%s","PARAM_1":"Ana"}],'
        '"CLIMSGID":null,"MASTERACCOUNT":null}}'
    ).replace("%s", FR1)
    answer = http.post(
        api(sandbox) + "sendSms",
        data={"login": "demo", "apiKey": "demo-key", "smsData": sms_data, "returnformat": "json"},
    ).json()
    assert answer["status"] == 100
    stored = sandbox.sandbox.find("allmysms", answer["smsIds"][0]["smsId"])[0]
    assert (stored.text, stored.sender) == ("Bonjour Ana", "36180")


def test_raw_error_answers(sandbox: SandboxServer, http: httpx.Client) -> None:
    """Errors are HTTP 200 answers carrying status and statusText, XML or JSON."""
    url = api(sandbox) + "sendSms/"
    bad = http.post(url, data={"login": "demo", "apiKey": "nope", "smsData": XML_FEED})
    assert (
        bad.content
        == (
            '<?xml version="1.0" encoding="UTF-8"?>\n<RESPONSE>\n  <status>102</status>\n'
            "  <statusText>Problème de connexion – Aucun compte ne correspond aux clientcode "
            "et passcode spécifiés</statusText>\n</RESPONSE>\n"
        ).encode()
    )
    creds = {"login": "demo", "apiKey": "demo-key", "returnformat": "json"}
    cases = {
        "": 105,
        "   ": 105,
        "<DATA><MESSAGE>x</MESSAGE>": 106,
        "<FEED/>": 106,
        '{"DATA": [1]}': 106,
        "not a feed": 106,
        "<DATA><MESSAGE>x</MESSAGE><FLASH>2</FLASH></DATA>": 106,
        "<DATA><MESSAGE>x</MESSAGE><DYNAMIC>two</DYNAMIC></DATA>": 106,
        "<DATA><CLIENT>OTHER</CLIENT><MESSAGE>x</MESSAGE></DATA>": 108,
        "<DATA><SMS><MOBILEPHONE>33612345678</MOBILEPHONE></SMS></DATA>": 110,
    }
    for sms_data, code in cases.items():
        answer = http.post(url, data={**creds, "smsData": sms_data})
        assert answer.json() == {"status": code, "statusText": STATUS_TEXTS[code]}, sms_data
    assert http.post(url, data=creds).json()["status"] == 105
    assert b'"statusText":"Flux XML Vide"' in http.post(url, data=creds).content
    client_ok = ONE_SMS.replace("<DATA>", "<DATA><CLIENT>DEMO</CLIENT>")
    assert http.post(url, data={**creds, "smsData": client_ok}).json()["status"] == 100
    none = http.post(url, data={**creds, "smsData": "<DATA><MESSAGE>x</MESSAGE></DATA>"})
    assert none.json() == {"status": 114, "statusText": STATUS_TEXTS[114], "invalidNumbers": ""}
    assert http.get(api(sandbox) + "sendMms/").status_code == 404


@pytest.mark.usefixtures("moved_clock")
def test_raw_read_calls(sandbox: SandboxServer, http: httpx.Client) -> None:
    """getInfo, getAckBySmsId, getAcks, deleteCampaign answers, exactly, in JSON."""
    creds = {"login": "demo", "apiKey": "demo-key", "returnformat": "json"}
    info = http.post(api(sandbox) + "getInfo/", data=creds)
    assert info.content == (
        b'{"status":"Active Account","credits":"1000","apiKey":"demo-key",'
        b'"lastName":"","firstName":"","society":"","email":""}'
    )
    sent = http.post(
        api(sandbox) + "sendSms",
        data={
            **creds,
            "smsData": XML_FEED.replace("<TPOA>", f"<DATE>{future_date()}</DATE><TPOA>"),
        },
    ).json()
    assert sent["status"] == 101
    sms_id, campaign = sent["smsIds"][0]["smsId"], sent["campaignId"]
    ack = http.get(api(sandbox) + "getAckBySmsId", params={**creds, "smsId": sms_id})
    assert ack.content == (
        f'{{"phoneNumber":"{FR1}","statut":"","comment":"","receptionDate":""}}'.encode()
    )
    acks = http.post(api(sandbox) + "getAcks/", data={**creds, "campId": campaign})
    assert acks.content == b'{"acks":[],"cliMsgId":""}'
    deleted = http.post(api(sandbox) + "deleteCampaign/", data={**creds, "campId": campaign})
    assert deleted.content == b'{"status":"OK"}'
    again = http.post(api(sandbox) + "deleteCampaign/", data={**creds, "campId": campaign})
    assert again.json() == {"status": "KO", "statusText": "Campagne introuvable"}
    missing = http.post(api(sandbox) + "getAckBySmsId/", data=creds)
    assert missing.json() == {"status": "KO", "statusText": "Paramètre smsId manquant"}
    bad = http.post(api(sandbox) + "getAcks/", data={**creds, "apiKey": "x", "campId": "1"})
    assert bad.json()["status"] == 102


# faults -------------------------------------------------------------------------------


def faulty(make_sandbox: Callable[..., SandboxServer], **faults: object) -> Allmysms:
    server = make_sandbox(
        SandboxConfig(schedule=FAST_SCHEDULE, seed=1).with_faults("allmysms", **faults)
    )
    return Allmysms(api(server), login="demo", api_key="demo-key")


def test_outage_on_reads_is_temporary_after_retries(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    """HTTP 503 on every try: reads raise TemporaryFailure (code 503) after the retries."""
    with faulty(make_sandbox, error_rate=1.0) as c, pytest.raises(TemporaryFailure) as error:
        c.get_info()
    assert error.value.code == 503 and not isinstance(error.value, OutcomeUnknown)


def test_dropped_connection_on_send_is_outcome_unknown(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    """The connection dies after the feed left: OutcomeUnknown, never a blind retry."""
    with faulty(make_sandbox, drop_rate=1.0) as c, pytest.raises(OutcomeUnknown):
        c.send(OutgoingMessage("Shop", [FR1], "x"))


def test_rate_limit_is_rate_limited(make_sandbox: Callable[..., SandboxServer]) -> None:
    """HTTP 429 with Retry-After: RateLimited carrying retry_after."""
    with faulty(make_sandbox, rate_limit=0) as c, pytest.raises(RateLimited) as error:
        c.balance()
    assert error.value.retry_after == 1.0


@pytest.mark.parametrize("answer_format", ["json", "xml"])
def test_garbled_answers(make_sandbox: Callable[..., SandboxServer], answer_format: str) -> None:
    """An unreadable answer: OutcomeUnknown for a send (it may be out), ProviderError for a
    read (neither temporary nor permanent)."""
    with faulty(make_sandbox, malformed_rate=1.0) as c:
        c.answer_format = answer_format  # type: ignore[assignment]
        with pytest.raises(OutcomeUnknown, match="unreadable"):
            c.send_feed(feed(FR1))
        with pytest.raises(ProviderError, match="unreadable") as error:
            c.simulate_campaign(feed(FR1))
        assert type(error.value) is ProviderError
        with pytest.raises(ProviderError, match="unreadable") as error:
            c.get_info()
        assert type(error.value) is ProviderError


# secrets ------------------------------------------------------------------------------


def test_credentials_never_show(
    make_sandbox: Callable[..., SandboxServer], caplog: pytest.LogCaptureFixture
) -> None:
    """The key is in no repr, error message or httpx log line; the login neither."""
    server = make_sandbox()
    account(server).api_key = "s3cret-Key-42"
    caplog.set_level(logging.DEBUG)
    with Allmysms(api(server), login="secret-login", api_key="s3cret-Key-42") as c:
        assert "s3cret" not in repr(c) and "secret-login" not in repr(c)
        with pytest.raises(AuthenticationFailed) as error:
            c.send(OutgoingMessage("Shop", [FR1], "x"))
        assert "s3cret" not in str(error.value) and "secret-login" not in str(error.value)
    with faulty(make_sandbox, drop_rate=1.0) as c, pytest.raises(OutcomeUnknown) as dropped:
        c.send(OutgoingMessage("Shop", [FR1], "x"))
    assert "demo-key" not in str(dropped.value)
    assert "s3cret" not in caplog.text and "demo-key" not in caplog.text
