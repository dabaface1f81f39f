"""The bridge end to end over real HTTP and SOAP: zeep → bridge → sandbox → Delivered."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import pytest
import zeep
from lxml import etree

from smsxml.schedule import ATHENS
from smsxml.server.app import BridgeServer

from ..conftest import wait_for

TNS = "http://smsxml.org/isms/1"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def client(bridge: BridgeServer) -> zeep.Client:
    return zeep.Client(bridge.wsdl_url)


def send(service: object, recipients: list[str], **fields: object) -> str:
    values = {
        "username": "demo",
        "password": "demo",
        "from": "Shop",
        "to": {"recipients": recipients},
        "message": "Hello from smsxml",
        "coding": "GSM",
        "flash": False,
    }
    values.update(fields)
    return service.send(**values)  # type: ignore[attr-defined, no-any-return]


def final_states(service: object, message_id: str, recipients: list[str]) -> list[str]:
    def states() -> list[str] | None:
        got = [service.query("demo", "demo", message_id, r) for r in recipients]  # type: ignore[attr-defined]
        return got if all(s in ("Delivered", "Failed") for s in got) else None

    return wait_for(states, timeout=20)


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("306912345678", "306912345678"),
        ("+306912345678", "306912345678"),
        ("00306912345678", "306912345678"),
        (" +30 691 234 5678 ", "306912345678"),
        ("0030-691-234-5678", "306912345678"),
    ],
)
def test_the_number_formats_a_send_accepts(bridge: BridgeServer, written: str, stored: str) -> None:
    """ "+" or "00" before the country code, spaces or hyphens between digits: the number
    is stored as MSISDN digits and queried in any of those forms."""
    service = client(bridge).service
    message_id = send(service, [written])
    assert final_states(service, message_id, [stored]) == ["Delivered"]
    assert service.query("demo", "demo", message_id, written) == "Delivered"


@pytest.mark.parametrize(
    "written",
    ["-306912345678", "--306912345678", "+-306912345678", "3069123456 78x", "30 691  2345678",
     "+0030691234567", "٣٠٦٩١٢٣٤٥٦٧٨", "３０６９１２３４５６７８", "(30) 6912345678"],
)  # fmt: skip
def test_other_number_formats_are_invalid_recipients(bridge: BridgeServer, written: str) -> None:
    """A sign, letters, doubled separators, other scripts' digits, brackets: refused with
    the contract's InvalidRecipient fault, nothing charged."""
    service = client(bridge).service
    before = bridge.app.store.accounts.get("demo").credits
    with pytest.raises(zeep.exceptions.Fault) as fault:
        send(service, [written])
    assert fault.value.message.startswith("Invalid recipient:")
    assert bridge.app.store.accounts.get("demo").credits == before


def test_send_to_three_recipients_ends_delivered(bridge: BridgeServer) -> None:
    """Three recipients over SOAP: Queued at once, then Delivered (Failed for those ending in 0)."""
    service = client(bridge).service
    recipients = ["306912345678", "33612345678", "306912345670"]
    message_id = send(service, recipients)
    assert len(message_id) == 12
    assert service.query("demo", "demo", message_id, recipients[0]) in (
        "Queued",
        "Pending",
        "Delivered",
    )
    assert final_states(service, message_id, recipients) == ["Delivered", "Delivered", "Failed"]


@pytest.mark.usefixtures("moved_clock")
def test_a_scheduled_send_waits_until_it_is_due(bridge: BridgeServer) -> None:
    """A schedule in the future keeps the message Queued (not sent) until then."""
    service = client(bridge).service
    started = time.monotonic()
    message_id = send(service, ["306912345678"], schedule="+3 seconds")
    time.sleep(1.0)  # an unscheduled send is Pending within milliseconds
    assert service.query("demo", "demo", message_id, "306912345678") == "Queued"
    assert final_states(service, message_id, ["306912345678"]) == ["Delivered"]
    assert time.monotonic() - started >= 2.0


@pytest.mark.usefixtures("moved_clock")
def test_wall_clock_schedules_are_judged_against_the_clock(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """An Athens wall-clock schedule an hour ahead waits Queued; an hour back is refused."""
    service = client(make_bridge()).service
    now = datetime.now(ATHENS)
    later, earlier = (f"{now + timedelta(hours=h):%Y-%m-%d %H:%M:%S}" for h in (1, -1))
    with pytest.raises(zeep.exceptions.Fault, match="Invalid scheduling date."):
        send(service, ["306912345678"], schedule=earlier)
    waiting = send(service, ["306912345678"], schedule=later)
    at_once = send(service, ["306912345671"])
    wait_for(lambda: service.query("demo", "demo", at_once, "306912345671") != "Queued")
    assert service.query("demo", "demo", waiting, "306912345678") == "Queued"


def test_send_charges_parts_times_recipients(bridge: BridgeServer) -> None:
    """A 2-part message to 3 recipients costs 6 credits, recorded in the ledger."""
    service = client(bridge).service
    before = bridge.app.store.accounts.get("demo").credits
    message_id = send(service, ["306912345678", "306912345679", "306912345671"], message="x" * 200)
    assert bridge.app.store.accounts.get("demo").credits == before - 6
    assert bridge.app.store.accounts.ledger("demo")[-1] == (-6, before - 6, "send", message_id)


@pytest.mark.parametrize(
    ("fields", "code", "text"),
    [
        ({"password": "wrong"}, "AuthenticationError", "Authentication error."),
        ({"username": "nobody"}, "AuthenticationError", "Authentication error."),
        ({"to": {"recipients": [""]}}, "NoRecipients", "No recipients."),
        ({"from": "Too long sender"}, "InvalidSender", "Invalid sender identity."),
        ({"from": "12345678901234567"}, "InvalidSender", "Invalid sender identity."),
        ({"from": ""}, "InvalidSender", "Invalid sender identity."),
        ({"from": zeep.xsd.SkipValue}, "InvalidSender", "Invalid sender identity."),
        (
            {"from": zeep.xsd.SkipValue, "coding": "UCS2"},
            "InvalidSender",
            "Invalid sender identity.",
        ),
        ({"coding": "UCS2"}, "InvalidCoding", "Invalid coding: use GSM or UTF-8."),
        (
            {"coding": "UCS2", "password": "wrong"},
            "AuthenticationError",
            "Authentication error.",
        ),
        ({"coding": zeep.xsd.SkipValue}, "InvalidCoding", "Invalid coding: use GSM or UTF-8."),
        (
            {"to": {"recipients": ["301234567890"]}},
            "InvalidRecipient",
            "Invalid recipient: 301234567890.",
        ),
        (
            {"message": "Γειά σου"},
            "InvalidCoding",
            "Message is not GSM-encodable: send it with coding UTF-8.",
        ),
        ({"schedule": "not a date"}, "InvalidSchedule", "Invalid scheduling date."),
        (
            {"dlr_url": "file:///etc/passwd"},
            "InvalidRequest",
            "Invalid dlr_url: give an http or https URL.",
        ),
        ({"dlr_url": "http://"}, "InvalidRequest", "Invalid dlr_url: give an http or https URL."),
        ({"schedule": "2001-01-01 10:00"}, "InvalidSchedule", "Invalid scheduling date."),
    ],
)
def test_send_faults(bridge: BridgeServer, fields: dict[str, object], code: str, text: str) -> None:
    """Each refusal is a SOAP Client fault with the documented faultstring and its code."""
    service = client(bridge).service
    with pytest.raises(zeep.exceptions.Fault) as caught:
        send(service, ["306912345678"], **fields)
    assert caught.value.message == text
    assert caught.value.code.endswith("Client")
    detail = caught.value.detail.find(f"{{{TNS}}}smsFault")
    # zeep reads ?wsdl, whose local elements are qualified: so is the fault's detail
    assert detail.findtext(f"{{{TNS}}}code") == code
    assert detail.findtext(f"{{{TNS}}}message") == text


def test_insufficient_credits_queues_nothing(make_bridge: object) -> None:
    """An account short of credits gets "Insufficient credits." and nothing is stored."""
    bridge = make_bridge(demo_credits=2)  # type: ignore[operator]
    service = client(bridge).service
    with pytest.raises(zeep.exceptions.Fault, match="Insufficient credits."):
        send(service, ["306912345678", "306912345679", "306912345671"])
    assert bridge.app.store.counts() == {}
    assert bridge.app.store.accounts.get("demo").credits == 2


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("demo", "demo", "", "306912345678"), "No message ID defined."),
        (("demo", "demo", "ABC", ""), "No mobile defined."),
        (("demo", "demo", "NOSUCHID", "306912345678"), "No such message or recipient."),
        (("demo", "bad", "ABC", "306912345678"), "Authentication error."),
    ],
)
def test_query_faults(bridge: BridgeServer, args: tuple[str, ...], text: str) -> None:
    """query's documented faults."""
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client(bridge).service.query(*args)
    assert caught.value.message == text


def test_query_of_another_accounts_message_is_no_such_message(bridge: BridgeServer) -> None:
    """An account cannot read another account's messages."""
    bridge.app.store.accounts.add("other", "secret", 10)
    service = client(bridge).service
    message_id = send(service, ["306912345678"])
    with pytest.raises(zeep.exceptions.Fault, match="No such message or recipient."):
        service.query("other", "secret", message_id, "306912345678")


def _post(bridge: BridgeServer, body: str, action: str | None = '""') -> httpx.Response:
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if action is not None:
        headers["SOAPAction"] = action
    return httpx.post(bridge.url + "/soap", content=body.encode(), headers=headers, timeout=10)


QUERY = (
    f'<soap:Envelope xmlns:soap="{ENV}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    ' xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
    f'<soap:Body><t:query xmlns:t="{TNS}"><username>demo</username><password>demo</password>'
    "<message_id>NOPE</message_id><mobile>306912345678</mobile></t:query></soap:Body></soap:Envelope>"
)


@pytest.mark.parametrize("action", ['"*"', '""', None, '"http://smsxml.org/isms/1/query"'])
def test_dispatch_is_on_the_body_element(bridge: BridgeServer, action: str | None) -> None:
    """Whatever SOAPAction says ("*", empty, none), the body element picks the operation."""
    answer = _post(bridge, QUERY, action)
    assert answer.status_code == 500
    assert "<faultstring>No such message or recipient.</faultstring>" in answer.text


def test_comments_and_an_xml_declaration_are_accepted(bridge: BridgeServer) -> None:
    """Comments anywhere and the XML declaration are not processing instructions."""
    body = '<?xml version="1.0" encoding="utf-8"?><!-- sent by a test -->' + QUERY.replace(
        "<username>", "<!-- who --><username>"
    )
    assert "No such message or recipient." in _post(bridge, body).text


def test_xsi_type_annotations_are_accepted(bridge: BridgeServer) -> None:
    """Values annotated with xsi:type (as SOAP-encoding-minded clients send) are read."""
    body = QUERY.replace("<username>demo", '<username xsi:type="xsd:string">demo').replace(
        "<mobile>", '<mobile xsi:type="xsd:string">'
    )
    assert "No such message or recipient." in _post(bridge, body).text


SEND = (
    f'<soap:Envelope xmlns:soap="{ENV}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
    ' xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/">'
    f'<soap:Body><t:send xmlns:t="{TNS}">'
    '<username xsi:type="xsd:string">demo</username>'
    '<password xsi:type="xsd:string">demo</password><from xsi:type="xsd:string">Shop</from>'
    '<to xsi:type="SOAP-ENC:Struct"><recipients xsi:type="xsd:string">306912345678</recipients>'
    '<recipients xsi:type="xsd:string">306912345679</recipients></to>'
    '<message xsi:type="xsd:string">Hello</message><coding xsi:type="xsd:string">GSM</coding>'
    '<flash xsi:type="xsd:boolean">false</flash></t:send></soap:Body></soap:Envelope>'
)


def test_xsi_typed_send_and_query_are_answered(bridge: BridgeServer) -> None:
    """A send and a query with xsi:type on every value, as PHP SoapClient and Axis write
    them (SOAP-ENC:Struct, xsd:string for an enumeration, xsd:boolean), are answered."""
    answer = _post(bridge, SEND)
    assert answer.status_code == 200, answer.text
    message_id = etree.fromstring(answer.content).findtext(f".//{{{TNS}}}sendResponse/id")
    assert len(message_id) == 12
    query = QUERY.replace("NOPE", message_id)
    for field in ("username", "password", "message_id", "mobile"):
        query = query.replace(f"<{field}>", f'<{field} xsi:type="xsd:string">')
    answer = _post(bridge, query)
    assert answer.status_code == 200, answer.text
    status = etree.fromstring(answer.content).findtext(f".//{{{TNS}}}queryResponse/status")
    assert status in ("Queued", "Pending", "Delivered")


def _qualified(body: str) -> str:
    """``body`` with every local element of the operation in the target namespace, as a
    client made from the qualified document/literal WSDL writes it."""
    names = ("username", "password", "from", "to", "recipients", "message", "coding", "flash")
    for name in (*names, "message_id", "mobile"):
        body = body.replace(f"<{name}>", f"<t:{name}>").replace(f"</{name}>", f"</t:{name}>")
    return body


PLAIN_SEND = (
    f'<soap:Envelope xmlns:soap="{ENV}"><soap:Body><t:send xmlns:t="{TNS}">'
    "<username>demo</username><password>demo</password><from>Shop</from>"
    "<to><recipients>306912345678</recipients></to><message>Hello</message>"
    "<coding>GSM</coding><flash>false</flash></t:send></soap:Body></soap:Envelope>"
)


@pytest.mark.parametrize("qualified", [True, False], ids=["qualified", "unqualified"])
def test_both_element_forms_are_answered_in_their_form(
    bridge: BridgeServer, qualified: bool
) -> None:
    """Local elements qualified (the document/literal WSDL's form) or not (the rpc WSDL's)
    are both read; the answer and the fault detail come back in the request's form, the
    only one a client made from that WSDL reads."""
    form = _qualified if qualified else (lambda body: body)
    local = f"{{{TNS}}}" if qualified else ""
    answer = _post(bridge, form(PLAIN_SEND))
    assert answer.status_code == 200, answer.text
    message_id = etree.fromstring(answer.content).findtext(f".//{{{TNS}}}sendResponse/{local}id")
    assert message_id is not None and len(message_id) == 12, answer.text
    answer = _post(bridge, form(QUERY.replace("NOPE", message_id)))
    assert answer.status_code == 200, answer.text
    status = etree.fromstring(answer.content).findtext(f".//{local}status")
    assert status in ("Queued", "Pending", "Delivered"), answer.text
    refused = _post(bridge, form(PLAIN_SEND.replace("<from>Shop<", "<from>Bad sender!<")))
    detail = etree.fromstring(refused.content).find(f".//detail/{{{TNS}}}smsFault")
    assert detail.findtext(f"{local}code") == "InvalidSender", refused.text
    assert detail.findtext(f"{local}message") == "Invalid sender identity."


ENCODED = (
    f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{ENV}" xmlns:ns1="{TNS}"'
    ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    ' xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/"'
    ' SOAP-ENV:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><SOAP-ENV:Body>'
    '<ns1:send><username xsi:type="xsd:string">demo</username>'
    '<password xsi:type="xsd:string">demo</password><from xsi:type="xsd:string">Shop</from>'
    "{to}"
    '<message xsi:type="xsd:string">Hello</message><coding xsi:type="xsd:string">GSM</coding>'
    '<flash xsi:type="xsd:boolean">false</flash>'
    '<schedule xsi:nil="true"/><dlr_url xsi:nil="true"/>'
    "</ns1:send></SOAP-ENV:Body></SOAP-ENV:Envelope>"
)
ITEMS = (
    '<item xsi:type="xsd:string">306912345678</item><item xsi:type="xsd:string">306912345679</item>'
)


@pytest.mark.parametrize(
    "to",
    [
        f'<to xsi:type="SOAP-ENC:Array" SOAP-ENC:arrayType="xsd:string[2]">{ITEMS}</to>',
        '<to xsi:type="SOAP-ENC:Struct"><recipients xsi:type="SOAP-ENC:Array"'
        f' SOAP-ENC:arrayType="xsd:string[2]">{ITEMS}</recipients></to>',
    ],
    ids=["to-array", "recipients-array"],
)
def test_soap_encoded_arrays_are_recipients(bridge: BridgeServer, to: str) -> None:
    """rpc/encoded requests (PHP without a WSDL, Axis 1): ``to`` as a SOAP-ENC array, or a
    struct whose ``recipients`` is one, gives every item as a recipient; nil optional parts
    are absent parts."""
    answer = _post(bridge, ENCODED.format(to=to))
    assert answer.status_code == 200, answer.text
    message_id = etree.fromstring(answer.content).findtext(f".//{{{TNS}}}sendResponse/id")
    assert message_id is not None and len(message_id) == 12, answer.text
    for mobile in ("306912345678", "306912345679"):
        query = QUERY.replace("NOPE", message_id).replace("306912345678", mobile)
        answer = _post(bridge, query)
        assert answer.status_code == 200, answer.text  # "No such message…" otherwise


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        ("<soap:Envelope", "Invalid request"),
        (
            QUERY.replace("<mobile>306912345678</mobile>", "<mobile>1</mobile><extra/>"),
            "Invalid request: Element 'extra'",
        ),
        (QUERY.replace("t:query", "t:delete_message"), "Unknown operation: delete_message."),
        (  # SOAP 1.2 is answered (tests/server/test_soap12.py); an unknown version is not
            QUERY.replace(ENV, "urn:example:soap-envelope"),
            "not a SOAP 1.1 or SOAP 1.2 envelope",
        ),
        (QUERY.replace("<message_id>NOPE</message_id>", ""), "No message ID defined."),
        ('<?xml-stylesheet href="x.xsl"?>' + QUERY, "processing instructions are not allowed"),
        (QUERY.replace("<username>", "<?php echo 1; ?><username>"), "processing instructions"),
        (QUERY + "<?trailing pi?>", "processing instructions are not allowed"),
    ],
)
def test_bad_requests_are_client_faults_never_tracebacks(
    bridge: BridgeServer, body: str, fault: str
) -> None:
    """Malformed, unknown or schema-invalid requests, and processing instructions (SOAP
    1.1 §3) in the prolog, the body or after the envelope, get a clear Client fault."""
    answer = _post(bridge, body)
    assert answer.status_code == 500
    root = etree.fromstring(answer.content)
    assert fault in root.findtext(f".//{{{ENV}}}Fault/faultstring")
    assert "Traceback" not in answer.text


def test_hostile_requests_are_refused(bridge: BridgeServer) -> None:
    """An entity-bearing request is refused before anything reads it."""
    body = '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + QUERY.replace("NOPE", "&e;")
    answer = _post(bridge, body)
    assert "DOCTYPE is not allowed" in answer.text and "root:" not in answer.text


def test_the_raw_request_never_reaches_the_logs(
    bridge: BridgeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A malformed request carrying a password leaves no trace of it in any log."""
    caplog.set_level("DEBUG")
    _post(bridge, "<soap:Envelope><password>hunter2-secret</password>")
    _post(bridge, QUERY.replace("<password>demo", "<password>hunter2-secret"))
    assert "hunter2-secret" not in caplog.text


def test_wsdl_uses_the_configured_address_not_the_host_header(make_bridge: object) -> None:
    """?wsdl publishes the configured public URL, whatever Host the request carried."""
    bridge = make_bridge(public_url="https://sms.example.org/gateway")  # type: ignore[operator]
    answer = httpx.get(bridge.url + "/soap?wsdl", headers={"Host": "evil.example"})
    root = etree.fromstring(answer.content)
    location = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location")
    assert location == "https://sms.example.org/gateway/soap"
    assert b"evil.example" not in answer.content
    assert root.find(".//{http://www.w3.org/2001/XMLSchema}import") is None  # XSD inlined


def test_health_and_metrics(bridge: BridgeServer) -> None:
    """/healthz reports the database and queue; /metrics counts requests, faults, the
    queue, provider calls (with their time) and their outcomes."""
    service = client(bridge).service
    with pytest.raises(zeep.exceptions.Fault):
        service.query("demo", "nope", "X", "306912345678")
    recipients = ["306912345678", "306912345679"]
    assert final_states(service, send(service, recipients), recipients) == ["Delivered"] * 2
    health = httpx.get(bridge.url + "/healthz").json()
    assert health["status"] == "ok" and health["database"] == "ok"
    assert health["deliveries"] == {"Delivered": 2}
    metrics = httpx.get(bridge.url + "/metrics").text.splitlines()
    for line in (
        'smsxml_soap_faults_total{code="AuthenticationError",operation="query"} 1.0',
        'smsxml_soap_request_seconds_count{operation="send"} 1.0',
        'smsxml_deliveries{state="Delivered"} 2.0',
        'smsxml_deliveries{state="Queued"} 0.0',
        'smsxml_dispatch_seconds_count{provider="isms"} 1.0',  # one call for both
        'smsxml_provider_outcomes_total{outcome="accepted",provider="isms"} 1.0',
        "smsxml_dispatching 1.0",
    ):
        assert line in metrics, line


def test_delivery_callbacks_need_the_route_token(bridge: BridgeServer) -> None:
    """A delivery callback without the right token is refused (404), with it accepted."""
    token = bridge.app.tracker.token("isms")
    wrong = httpx.post(
        f"{bridge.url}/dlr/isms/{'0' * 32}", data={"mid": "X", "mobile": "1", "status": "Delivered"}
    )
    assert wrong.status_code == 404
    other_route = httpx.post(f"{bridge.url}/dlr/net2sms/{token}", data={})
    assert other_route.status_code == 404
    right = httpx.post(
        f"{bridge.url}/dlr/isms/{token}",
        data={"mid": "UNKNOWN", "mobile": "306912345678", "status": "Delivered", "timestamp": "0"},
    )
    assert right.status_code == 200 and right.text == "OK"


def test_client_delivery_reports_stay_off_private_addresses(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """By default a dlr_url on loopback is not POSTed to (a client must not make the bridge
    probe its network); the rows are settled all the same."""
    from ..conftest import CallbackReceiver

    bridge = make_bridge(dlr_private_addresses=False)
    with CallbackReceiver() as receiver:
        service = client(bridge).service
        recipients = ["306912345678", "306912345670"]
        message_id = send(
            service, recipients, dlr_url=receiver.url.replace("127.0.0.1", "localhost")
        )
        assert final_states(service, message_id, recipients) == ["Delivered", "Failed"]
        wait_for(lambda: bridge.app.store.reports.unnotified(10) == [], timeout=20)
    assert receiver.received == []


def test_client_delivery_reports_reach_dlr_url(bridge: BridgeServer) -> None:
    """A send with dlr_url gets a POST per recipient when it reaches a final state."""
    from ..conftest import CallbackReceiver

    with CallbackReceiver() as receiver:
        service = client(bridge).service
        message_id = send(service, ["306912345678", "306912345670"], dlr_url=receiver.url)
        reports = wait_for(
            lambda: receiver.received if len(receiver.received) >= 2 else None, timeout=20
        )
    got = sorted(
        (r["form"]["mobile"], r["form"]["status"], r["form"]["message_id"]) for r in reports
    )
    assert got == [
        ("306912345670", "Failed", message_id),
        ("306912345678", "Delivered", message_id),
    ]
