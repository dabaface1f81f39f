"""SOAP 1.2 beside SOAP 1.1 on one address, over real HTTP, on both lanes: zeep through
the WSDL's SOAP 1.2 port, and raw requests written as SOAP 1.2 stacks write them
(``application/soap+xml`` with an ``action`` parameter). A 1.2 request gets a 1.2
answer; its faults have Code, Reason and the contract's Detail, with HTTP 400 for the
sender's faults; a 1.1 request is answered in 1.1 as before."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine
import zeep
from lxml import etree
from sqlalchemy import select
from zeep.plugins import HistoryPlugin
from zeep.wsdl.bindings import Soap12Binding
from zeep.wsse.username import UsernameToken

from smsxml.errors import AuthenticationFailed
from smsxml.ns import WSSE, WSU
from smsxml.server.app import BridgeServer
from smsxml.server.models import Message
from smsxml.server.wssecurity import password_digest
from smsxml.soap import SoapClient

TNS = "http://smsxml.org/isms/1"
ENV11 = "http://schemas.xmlsoap.org/soap/envelope/"
ENV12 = "http://www.w3.org/2003/05/soap-envelope"
WSDL_NS = {
    "wsdl": "http://schemas.xmlsoap.org/wsdl/",
    "soap": "http://schemas.xmlsoap.org/wsdl/soap/",
    "soap12": "http://schemas.xmlsoap.org/wsdl/soap12/",
}
NS = {"env": ENV12, "tns": TNS, "wsse": WSSE, "wsu": WSU}
SEND_ACTION = f"{TNS}/send"
#: a fixed moment, far from today: nothing depends on the date the tests run
NOW = datetime(2031, 5, 4, 12, 0, 0, tzinfo=UTC)

SEND = (
    f'<t:send xmlns:t="{TNS}"><username>{{user}}</username><password>{{password}}</password>'
    "<from>Shop</from><to><recipients>306912345678</recipients></to>"
    "<message>hello</message><coding>GSM</coding><flash>false</flash></t:send>"
)


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    """The wall clock at NOW, ticking (WS-Security's Created is checked against it)."""
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


def soap12(bridge: BridgeServer, plugins: list[object] | None = None) -> zeep.Client:
    """zeep bound to the WSDL's SOAP 1.2 port, picked by name."""
    return zeep.Client(bridge.wsdl_url, plugins=plugins or [])


def service12(client: zeep.Client) -> object:
    return client.bind("SmsService", "SmsPort12")


def send_args(**overrides: object) -> dict[str, object]:
    return {
        "username": "demo",
        "password": "demo",
        "from": "Shop",
        "to": {"recipients": ["306912345678"]},
        "message": "hello",
        "coding": "GSM",
        "flash": False,
    } | overrides


def post12(bridge: BridgeServer, body: str, headers: str = "") -> httpx.Response:
    """A raw SOAP 1.2 request, as SOAP 1.2 stacks send it."""
    header = f"<env:Header>{headers}</env:Header>" if headers else ""
    return httpx.post(
        f"{bridge.url}/soap",
        content=f'<env:Envelope xmlns:env="{ENV12}">{header}<env:Body>{body}</env:Body>'
        "</env:Envelope>",
        headers={"Content-Type": f'application/soap+xml; charset=utf-8; action="{SEND_ACTION}"'},
        timeout=30,
    )


def fault12(answer: httpx.Response) -> dict[str, object]:
    """A SOAP 1.2 fault answer's parts: HTTP status, Code value and Subcode values as
    Clark names, Reason text and its language, and the smsFault detail's code."""
    assert answer.headers["content-type"].startswith("application/soap+xml"), answer.text
    document = etree.fromstring(answer.content)
    assert document.tag == f"{{{ENV12}}}Envelope", answer.text
    fault = document.find("env:Body/env:Fault", NS)
    assert fault is not None, answer.text

    def clark(value: etree._Element | None) -> str:
        assert value is not None and value.text, answer.text
        prefix, _, local = value.text.partition(":")
        return f"{{{value.nsmap[prefix]}}}{local}"

    text = fault.find("env:Reason/env:Text", NS)
    assert text is not None, answer.text
    return {
        "status": answer.status_code,
        "code": clark(fault.find("env:Code/env:Value", NS)),
        "subcodes": [clark(v) for v in fault.iterfind("env:Code//env:Subcode/env:Value", NS)],
        "reason": text.text,
        "lang": text.get("{http://www.w3.org/XML/1998/namespace}lang"),
        "detail": fault.findtext("env:Detail/tns:smsFault/{*}code", namespaces=NS),
    }


def stored(bridge: BridgeServer) -> int:
    """How many sends the store holds."""
    with bridge.app.store.reader.connect() as db:
        return len(db.execute(select(Message.id)).all())


# --- the WSDL -----------------------------------------------------------------------


def test_the_wsdl_has_a_soap12_port_on_the_same_address(bridge: BridgeServer) -> None:
    """The document/literal WSDL offers SmsPort12 (soap12 binding, same operations,
    actions and faults as the 1.1 binding) at /soap, after the 1.1 port."""
    wsdl = etree.fromstring(httpx.get(bridge.wsdl_url, timeout=10).content)
    ports = wsdl.findall("wsdl:service/wsdl:port", WSDL_NS)
    assert [p.get("name") for p in ports] == ["SmsPort", "SmsPort12"]
    assert ports[1].find("soap12:address", WSDL_NS).get("location") == bridge.url + "/soap"
    assert ports[0].find("soap:address", WSDL_NS).get("location") == bridge.url + "/soap"

    def shape(binding: str, prefix: str) -> dict[str, object]:
        node = wsdl.find(f"wsdl:binding[@name='{binding}']", WSDL_NS)
        protocol = node.find(f"{prefix}:binding", WSDL_NS)
        return {
            "binding": (protocol.get("style"), protocol.get("transport")),
            "operations": {
                o.get("name"): (
                    o.find(f"{prefix}:operation", WSDL_NS).get("soapAction"),
                    [b.get("use") for b in o.iterfind(f".//{prefix}:body", WSDL_NS)],
                    [f.get("name") for f in o.iterfind(f".//{prefix}:fault", WSDL_NS)],
                )
                for o in node.iterfind("wsdl:operation", WSDL_NS)
            },
        }

    assert shape("SmsBinding12", "soap12") == shape("SmsBinding", "soap")


# --- zeep through the SOAP 1.2 port ----------------------------------------------------


def test_zeep_sends_and_queries_over_soap12(bridge: BridgeServer) -> None:
    """zeep on SmsPort12 sends application/soap+xml with the action parameter, gets a
    SOAP 1.2 answer, and queries the message it sent."""
    history = HistoryPlugin()
    sms = service12(soap12(bridge, [history]))
    message_id = sms.send(**send_args())  # type: ignore[attr-defined]
    assert len(message_id) == 12
    sent_type = history.last_sent["http_headers"]["Content-Type"]
    assert sent_type.startswith("application/soap+xml") and SEND_ACTION in sent_type
    assert history.last_received["envelope"].tag == f"{{{ENV12}}}Envelope"
    status = sms.query("demo", "demo", message_id, "306912345678")  # type: ignore[attr-defined]
    assert status in ("Queued", "Pending", "Delivered")


def test_zeep_wrong_password_is_a_sender_fault(bridge: BridgeServer) -> None:
    """A wrong password through zeep's 1.2 binding: Code soap:Sender, the contract's
    Reason, the smsFault detail; nothing stored."""
    sms = service12(soap12(bridge))
    with pytest.raises(zeep.exceptions.Fault) as caught:
        sms.send(**send_args(password="wrong"))  # type: ignore[attr-defined]
    fault = caught.value
    assert fault.message == "Authentication error."
    assert fault.code is not None and fault.code.endswith(":Sender"), fault.code
    assert fault.detail.findtext("{*}smsFault/{*}code") == "AuthenticationError"
    assert stored(bridge) == 0


def test_zeep_wssecurity_token_in_a_soap12_envelope(clock: object, bridge: BridgeServer) -> None:
    """zeep's PasswordText and PasswordDigest tokens in a 1.2 envelope send with empty
    body credentials, as in 1.1; a wrong digest is a Sender fault whose Subcode is
    wsse:FailedAuthentication."""
    for token in (
        UsernameToken("demo", "demo"),
        UsernameToken("demo", "demo", use_digest=True, zulu_timestamp=True),
    ):
        sms = service12(zeep.Client(bridge.wsdl_url, wsse=token))
        assert len(sms.send(**send_args(username="", password=""))) == 12  # type: ignore[attr-defined]
    wrong = UsernameToken("demo", "wrong", use_digest=True, zulu_timestamp=True)
    sms = service12(zeep.Client(bridge.wsdl_url, wsse=wrong))
    with pytest.raises(zeep.exceptions.Fault) as caught:
        sms.send(**send_args(username="", password=""))  # type: ignore[attr-defined]
    assert caught.value.message == "Authentication error."
    assert caught.value.subcodes == [etree.QName(WSSE, "FailedAuthentication")]
    assert stored(bridge) == 2


def test_smsxml_client_speaks_soap12_on_request(bridge: BridgeServer) -> None:
    """smsxml's own SoapClient with ``soap12=True`` binds the 1.2 port, sends, queries,
    and maps a Sender fault to the contract's error."""
    with SoapClient(f"{bridge.url}/soap", "demo", "demo", soap12=True) as client:
        sent = client.send("Shop", ["306912345678"], "hello")
        assert client.query(sent.id, "306912345678").status is not None
        assert isinstance(client._bound()._binding, Soap12Binding)  # the port it chose
    with (
        SoapClient(f"{bridge.url}/soap", "demo", "wrong", soap12=True) as client,
        pytest.raises(AuthenticationFailed, match="Authentication error."),
    ):
        client.send("Shop", ["306912345678"], "hello")


# --- raw SOAP 1.2 on the wire ----------------------------------------------------------


def test_raw_soap12_send_is_answered_in_soap12(bridge: BridgeServer) -> None:
    """An unqualified 1.2 request: 200, application/soap+xml, a 1.2 envelope holding
    sendResponse/id in the request's (unqualified) form."""
    answer = post12(bridge, SEND.format(user="demo", password="demo"))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/soap+xml; charset=utf-8"
    document = etree.fromstring(answer.content)
    assert document.tag == f"{{{ENV12}}}Envelope"
    message_id = document.findtext("env:Body/tns:sendResponse/id", namespaces=NS)
    assert message_id is not None and len(message_id) == 12, answer.text


def test_raw_soap12_qualified_send_is_answered_qualified(bridge: BridgeServer) -> None:
    """A qualified 1.2 request (as .NET and JAX-WS write it) gets a qualified tns:id."""
    body = (
        f'<t:send xmlns:t="{TNS}"><t:username>demo</t:username><t:password>demo</t:password>'
        "<t:from>Shop</t:from><t:to><t:recipients>306912345678</t:recipients></t:to>"
        "<t:message>hello</t:message><t:coding>GSM</t:coding><t:flash>false</t:flash></t:send>"
    )
    answer = post12(bridge, body)
    assert answer.status_code == 200, answer.text
    found = etree.fromstring(answer.content).findtext(
        "env:Body/tns:sendResponse/tns:id", namespaces=NS
    )
    assert found is not None and len(found) == 12, answer.text


def test_wrong_password_is_a_soap12_sender_fault(bridge: BridgeServer) -> None:
    """env:Sender, HTTP 400, Reason "Authentication error." in English, Detail smsFault
    AuthenticationError (SOAP 1.2 Part 1 §5.4, Part 2 §7.5.1)."""
    assert fault12(post12(bridge, SEND.format(user="demo", password="wrong"))) == {
        "status": 400,
        "code": f"{{{ENV12}}}Sender",
        "subcodes": [],
        "reason": "Authentication error.",
        "lang": "en",
        "detail": "AuthenticationError",
    }


def test_a_server_fault_is_a_soap12_receiver_fault(
    bridge: BridgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure inside the bridge: env:Receiver, HTTP 500, "Internal error."."""

    def broken(*args: object) -> str:
        raise RuntimeError("the store is on fire")

    monkeypatch.setattr(bridge.app.bridge, "send", broken)
    fault = fault12(post12(bridge, SEND.format(user="demo", password="demo")))
    assert (fault["status"], fault["code"], fault["reason"], fault["detail"]) == (
        500,
        f"{{{ENV12}}}Receiver",
        "Internal error.",
        "ServerError",
    )


def test_wssecurity_faults_carry_the_wsse_subcode(clock: object, bridge: BridgeServer) -> None:
    """A wrong PasswordDigest in a 1.2 Security header: Sender with Subcode
    wsse:FailedAuthentication, the contract's Reason and Detail, nothing stored."""
    nonce, created = b"0123456789abcdef", f"{NOW:%Y-%m-%dT%H:%M:%S}Z"
    token = (
        f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}" env:mustUnderstand="true">'
        "<wsse:UsernameToken><wsse:Username>demo</wsse:Username>"
        '<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-'
        f'username-token-profile-1.0#PasswordDigest">{password_digest(nonce, created, "wrong")}'
        f"</wsse:Password><wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>"
        f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>"
    )
    fault = fault12(post12(bridge, SEND.format(user="", password=""), token))
    assert fault == {
        "status": 400,
        "code": f"{{{ENV12}}}Sender",
        "subcodes": [f"{{{WSSE}}}FailedAuthentication"],
        "reason": "Authentication error.",
        "lang": "en",
        "detail": "AuthenticationError",
    }
    assert stored(bridge) == 0


def test_timestamp_is_answered_in_the_soap12_header(clock: object, bridge: BridgeServer) -> None:
    """A 1.2 request whose Security header carries a Timestamp gets one back, in the
    answer's SOAP 1.2 Header."""
    expires = f"{NOW + timedelta(minutes=5):%Y-%m-%dT%H:%M:%S}Z"
    security = (
        f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsu:Timestamp>'
        f"<wsu:Created>{NOW:%Y-%m-%dT%H:%M:%S}Z</wsu:Created><wsu:Expires>{expires}"
        "</wsu:Expires></wsu:Timestamp><wsse:UsernameToken><wsse:Username>demo"
        "</wsse:Username><wsse:Password>demo</wsse:Password></wsse:UsernameToken>"
        "</wsse:Security>"
    )
    answer = post12(bridge, SEND.format(user="", password=""), security)
    assert answer.status_code == 200, answer.text
    document = etree.fromstring(answer.content)
    stamp = "env:Header/wsse:Security/wsu:Timestamp/wsu:Created"
    assert document.findtext(stamp, namespaces=NS), answer.text
    assert document.find("env:Body/tns:sendResponse", NS) is not None, answer.text


def test_unknown_mandatory_header_is_a_must_understand_fault(bridge: BridgeServer) -> None:
    """A header for us with env:mustUnderstand="true" that we do not know: env:MustUnderstand,
    HTTP 500, a NotUnderstood header naming it (Part 1 §5.4.8); nothing stored. The
    same header for another role is not ours to understand: the send goes through."""
    routing = '<x:Routing xmlns:x="urn:example" env:mustUnderstand="true"/>'
    answer = post12(bridge, SEND.format(user="demo", password="demo"), routing)
    fault = fault12(answer)
    assert (fault["status"], fault["code"]) == (500, f"{{{ENV12}}}MustUnderstand")
    not_understood = etree.fromstring(answer.content).find("env:Header/env:NotUnderstood", NS)
    assert not_understood is not None, answer.text
    prefix, _, local = not_understood.get("qname", "").partition(":")
    assert (not_understood.nsmap[prefix], local) == ("urn:example", "Routing")
    assert stored(bridge) == 0
    elsewhere = routing.replace("/>", ' env:role="urn:example:auditor"/>')
    answer = post12(bridge, SEND.format(user="demo", password="demo"), elsewhere)
    assert answer.status_code == 200, answer.text


def test_unknown_envelope_is_a_version_mismatch_naming_both_versions(
    bridge: BridgeServer,
) -> None:
    """An envelope of neither version: env:VersionMismatch with an Upgrade header listing
    the SOAP 1.2 and 1.1 envelopes (Part 1 §5.4.7)."""
    answer = httpx.post(
        f"{bridge.url}/soap",
        content='<e:Envelope xmlns:e="urn:example:soap"><e:Body/></e:Envelope>',
        headers={"Content-Type": "application/soap+xml; charset=utf-8"},
        timeout=30,
    )
    fault = fault12(answer)
    assert (fault["status"], fault["code"]) == (500, f"{{{ENV12}}}VersionMismatch")
    supported = etree.fromstring(answer.content).findall(
        "env:Header/env:Upgrade/env:SupportedEnvelope", NS
    )
    names = []
    for envelope in supported:
        prefix, _, local = envelope.get("qname", "").partition(":")
        names.append((envelope.nsmap[prefix], local))
    assert names == [(ENV12, "Envelope"), (ENV11, "Envelope")]


def test_unreadable_soap12_request_is_answered_in_soap12(bridge: BridgeServer) -> None:
    """Not even XML, but sent as application/soap+xml: a SOAP 1.2 Sender fault."""
    answer = httpx.post(
        f"{bridge.url}/soap",
        content=b"<env:Envelope",
        headers={"Content-Type": "application/soap+xml"},
        timeout=30,
    )
    fault = fault12(answer)
    assert (fault["status"], fault["code"], fault["detail"]) == (
        400,
        f"{{{ENV12}}}Sender",
        "InvalidRequest",
    )


def test_a_soap11_request_is_still_answered_in_soap11(bridge: BridgeServer) -> None:
    """SOAP 1.1 beside 1.2 on the same address: text/xml, the 1.1 envelope, and its
    faults still Client faults with HTTP 500."""
    envelope = (
        f'<soap:Envelope xmlns:soap="{ENV11}"><soap:Body>{{body}}</soap:Body></soap:Envelope>'
    )
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{SEND_ACTION}"'}
    answer = httpx.post(
        f"{bridge.url}/soap",
        content=envelope.format(body=SEND.format(user="demo", password="demo")),
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/xml; charset=utf-8"
    document = etree.fromstring(answer.content)
    assert document.tag == f"{{{ENV11}}}Envelope"
    assert len(document.findtext(f"{{{ENV11}}}Body/{{{TNS}}}sendResponse/id") or "") == 12
    refused = httpx.post(
        f"{bridge.url}/soap",
        content=envelope.format(body=SEND.format(user="demo", password="wrong")),
        headers=headers,
        timeout=30,
    )
    assert refused.status_code == 500 and refused.headers["content-type"].startswith("text/xml")
    fault = etree.fromstring(refused.content).find(f"{{{ENV11}}}Body/{{{ENV11}}}Fault")
    assert fault is not None, refused.text
    faultcode = fault.find("faultcode")
    assert faultcode is not None and faultcode.text, refused.text
    prefix, _, local = faultcode.text.partition(":")  # soap: or spyne's soap11env:
    assert (faultcode.nsmap[prefix], local) == (ENV11, "Client"), refused.text
    assert fault.findtext("faultstring") == "Authentication error."
