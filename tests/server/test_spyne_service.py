"""One service, two readers: the operations are declared once, in spyne (SmsService), and
the fast lane reads requests into the very arguments spyne makes and calls the same
functions. Here both lanes answer the same requests, in process, over one bridge: every
form a client writes (unqualified, qualified, SOAP-encoded, xsi-typed, SOAP 1.2, a
WS-Security header) gives the same arguments, the same answer and the same fault, byte for
byte, and the same metrics. The rest of the suite runs the fast lane only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from spyne import Integer
from werkzeug.test import Client

from smsxml.server.app import BridgeApp
from smsxml.server.bridge import SendRequest
from smsxml.server.settings import LoginSettings
from smsxml.server.soap import SoapEndpoint
from smsxml.server.spyne_service import OPERATIONS, SmsService, _reader, xs_boolean

from .conftest import bridge_settings

TNS = "http://smsxml.org/isms/1"
ENV11 = "http://schemas.xmlsoap.org/soap/envelope/"
ENV12 = "http://www.w3.org/2003/05/soap-envelope"
ENC = "http://schemas.xmlsoap.org/soap/encoding/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TO = "306912345678"
LANES = ("fast", "spyne")


class Lanes:
    """Both lanes over one bridge, each with its own metrics."""

    def __init__(self, app: BridgeApp) -> None:
        self.bridge = app.bridge
        self.endpoints = {
            lane: SoapEndpoint(app.bridge, fast_lane=lane == "fast") for lane in LANES
        }

    def post(
        self, lane: str, body: str, version: str, encoding: str = "utf-8"
    ) -> tuple[int, str, str]:
        """The status, content type and body of ``lane``'s answer to ``body``."""
        media = "text/xml" if version == "1.1" else "application/soap+xml"
        answer = Client(self.endpoints[lane]).post(
            "/soap", data=body.encode(encoding), content_type=f"{media}; charset={encoding}"
        )
        return answer.status_code, answer.headers["Content-Type"], answer.get_data(as_text=True)

    def both(
        self, body: str, version: str = "1.1", encoding: str = "utf-8"
    ) -> tuple[int, str, str]:
        """The one answer both lanes give to ``body`` (the parts that differ by design, a
        new message id and the Security Timestamp's moments, made equal); the lanes'
        request and fault counts stay equal too."""
        answers = []
        for lane in LANES:
            status, media, text = self.post(lane, body, version, encoding)
            text = re.sub(r"id>[A-Z2-7]{12}</", "id>ID</", text)
            text = re.sub(r"(Created|Expires)>[^<]+<", r"\1>T<", text)
            answers.append((status, media, text))
        assert answers[0] == answers[1], f"fast lane: {answers[0]}\nspyne: {answers[1]}"
        assert self.counted("fast") == self.counted("spyne")
        return answers[0]

    def counted(self, lane: str) -> dict[tuple[str, str], float]:
        """``lane``'s requests and faults by operation (and code), from its metrics."""
        names = ("smsxml_soap_request_seconds_count", "smsxml_soap_faults_total")
        return {
            (sample.name, str(sorted(sample.labels.items()))): sample.value
            for metric in self.endpoints[lane].metrics.registry.collect()
            for sample in metric.samples
            if sample.name in names
        }


@pytest.fixture(scope="module")
def lanes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lanes]:
    """Both lanes over one in-process bridge (nothing dispatches), the demo account never
    slowed down by the failed logins of the fault cases."""
    logins = LoginSettings(free_failures=10_000, account_lockout=10_000, address_lockout=10_000)
    app = BridgeApp(bridge_settings(tmp_path_factory.mktemp("lanes"), logins=logins))
    yield Lanes(app)
    app.stop()


@pytest.fixture(scope="module")
def message_id(lanes: Lanes) -> str:
    """A message to TO, for the queries."""
    status, _, text = lanes.post("fast", envelope(send_body()), "1.1")
    lanes.post("spyne", envelope(send_body()), "1.1")  # the lanes' counts stay equal
    found = re.search(r"id>([A-Z2-7]{12})</", text)
    assert status == 200 and found, text
    return found[1]


# requests ------------------------------------------------------------------------------------


def send_body(qualified: bool = False, **fields: str | None) -> str:
    """A send, ``fields`` replacing the text of elements (None: leaving one out; a value
    starting with ``<name``: the whole element)."""
    values: dict[str, str | None] = {
        "username": "demo",
        "password": "demo",
        "from": "Shop",
        "to": f"<recipients>{TO}</recipients>",
        "message": "Hello",
        "coding": "GSM",
        "flash": "false",
    }
    return operation("send", values | fields, qualified)


def query_body(known: str, qualified: bool = False, **fields: str | None) -> str:
    """A query of the message ``known`` (``fields`` as in :func:`send_body`)."""
    values = {"username": "demo", "password": "demo", "message_id": known, "mobile": TO}
    return operation("query", values | fields, qualified)


def operation(name: str, values: dict[str, str | None], qualified: bool) -> str:
    """The operation's element, its children unqualified or (as the document/literal WSDL
    says) qualified."""
    inner = "".join(
        value if value.startswith(f"<{key}") else f"<{key}>{value}</{key}>"
        for key, value in values.items()
        if value is not None
    )
    if qualified:  # every element inside gets the operation's prefix
        inner = re.sub(r"<(/?)(\w+)", r"<\1t:\2", inner)
    return f'<t:{name} xmlns:t="{TNS}">{inner}</t:{name}>'


def envelope(body: str, version: str = "1.1", header: str = "") -> str:
    namespace = ENV11 if version == "1.1" else ENV12
    headers = f"<soap:Header>{header}</soap:Header>" if header else ""
    typed = "xsi:" in body or "enc:" in body  # the prefixes of the encoded forms
    prefixes = f' xmlns:xsi="{XSI}" xmlns:enc="{ENC}" xmlns:xsd="{XSD}"' if typed else ""
    return (
        f'<soap:Envelope xmlns:soap="{namespace}"{prefixes}>{headers}<soap:Body>{body}'
        "</soap:Body></soap:Envelope>"
    )


ITEMS = f'<item xsi:type="xsd:string">{TO}</item><item xsi:type="xsd:string">306912345679</item>'
ARRAY = 'xsi:type="enc:Array" enc:arrayType="xsd:string[2]"'
#: a send in each form clients write it, with values at the edges of their types
SENDS = {
    "plain": send_body(),
    "qualified": send_body(qualified=True),
    "optional-parts": send_body(schedule="+1 day", dlr_url=" https://example.org/dlr "),
    "empty-optional-parts": send_body(schedule="<schedule/>", dlr_url="<dlr_url></dlr_url>"),
    "xs-boolean-collapsed": send_body(flash=" true "),
    "xs-boolean-1": send_body(flash="1"),
    "texts-kept-as-written": send_body(
        **{"from": " Shop ", "message": "a&#13;b &lt;c&gt; &#x3A9;", "password": " demo"}
    ),
    "recipients-written-loosely": send_body(
        to=f"<recipients> +30 691 234 5678 </recipients><!-- a comment --><recipients/>"
        f"<recipients>{TO}</recipients>"
    ),
    "encoded-array": send_body(to=f"<to {ARRAY}>{ITEMS}</to>"),
    "encoded-struct": send_body(
        to=f'<to xsi:type="enc:Struct"><recipients {ARRAY}>{ITEMS}</recipients></to>'
    ),
    "xsi-typed-and-nil": send_body(
        username='<username xsi:type="xsd:string">demo</username>',
        flash='<flash xsi:type="xsd:boolean">true</flash>',
        schedule='<schedule xsi:nil="true"/>',
    ),
}


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("form", list(SENDS))
def test_both_lanes_call_send_with_the_same_arguments(
    lanes: Lanes, monkeypatch: pytest.MonkeyPatch, form: str, version: str
) -> None:
    """Whatever form a send is written in, the fast lane hands the bridge exactly the
    request spyne does (read by the same declaration, made by the same function)."""
    calls: list[SendRequest] = []

    def send(request: SendRequest) -> str:
        calls.append(request)
        return "ABCDEFGHIJKL"

    monkeypatch.setattr(lanes.bridge, "send", send)
    status, _, text = lanes.both(envelope(SENDS[form], version), version)
    assert status == 200, text
    assert len(calls) == 2 and calls[0] == calls[1]


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_both_lanes_read_a_utf16_request_alike(
    lanes: Lanes, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    """A UTF-16 body (with a BOM), xsi-typed: a byte search cannot see the annotations,
    so both readers look in the tree, and the prefix they name (``xsd:``) must reach
    spyne too."""
    calls: list[SendRequest] = []

    def send(request: SendRequest) -> str:
        calls.append(request)
        return "ABCDEFGHIJKL"

    monkeypatch.setattr(lanes.bridge, "send", send)
    typed = send_body(flash='<flash xsi:type="xsd:boolean">true</flash>')
    body = '<?xml version="1.0" encoding="UTF-16"?>' + envelope(typed, version)
    status, _, text = lanes.both(body, version, "utf-16")
    assert status == 200, text
    assert len(calls) == 2 and calls[0] == calls[1] and calls[0].flash is True


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_an_argument_sent_as_nil_is_absent_whatever_the_encoding(
    lanes: Lanes, monkeypatch: pytest.MonkeyPatch, encoding: str
) -> None:
    """PHP SoapClient's ``<schedule xsi:nil="true"/>`` in a body a raw byte search cannot
    read (UTF-16 with or without a BOM, UTF-32): the argument is absent, as in UTF-8."""
    calls: list[SendRequest] = []

    def send(request: SendRequest) -> str:
        calls.append(request)
        return "ABCDEFGHIJKL"

    monkeypatch.setattr(lanes.bridge, "send", send)
    nil = send_body(schedule='<schedule xsi:nil="true"/>', dlr_url='<dlr_url xsi:nil="true"/>')
    declared = encoding.split("-le")[0].upper()
    body = f'<?xml version="1.0" encoding="{declared}"?>' + envelope(nil, "1.1")
    status, _, text = lanes.both(body, "1.1", encoding)
    assert status == 200, text
    assert len(calls) == 2 and calls[0] == calls[1]
    assert calls[0].schedule is None and calls[0].dlr_url is None


def test_the_arguments_are_the_ones_the_contract_means(
    lanes: Lanes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What both lanes read from a loosely written send: recipients in order, the empty
    one kept (the bridge drops it), texts as written, xs:boolean and xs:anyURI whitespace
    collapsed as the schema says."""
    calls: list[SendRequest] = []

    def send(request: SendRequest) -> str:
        calls.append(request)
        return "ABCDEFGHIJKL"

    monkeypatch.setattr(lanes.bridge, "send", send)
    body = send_body(
        **{"from": " Shop ", "flash": " true ", "dlr_url": " https://example.org/dlr "},
        to="<recipients> +30 691 234 5678 </recipients><!-- c --><recipients/>",
    )
    lanes.both(envelope(body))
    assert (
        calls[0]
        == calls[1]
        == SendRequest(
            username="demo",
            password="demo",
            sender=" Shop ",
            recipients=[" +30 691 234 5678 ", ""],
            message="Hello",
            coding="GSM",
            flash=True,
            schedule=None,
            dlr_url="https://example.org/dlr",
        )
    )


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("qualified", [False, True], ids=["unqualified", "qualified"])
@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, None),
        ({"password": "wrong"}, "AuthenticationError"),
        ({"to": "<recipients/>"}, "NoRecipients"),
        ({"from": "Too long sender"}, "InvalidSender"),
        ({"to": "<recipients>301234567890</recipients>"}, "InvalidRecipient"),
        ({"message": "Γειά σου"}, "InvalidCoding"),
        ({"schedule": "not a date"}, "InvalidSchedule"),
        ({"dlr_url": "file:///etc/passwd"}, "InvalidRequest"),
        # refused by the schema: the operation's own fault first, in the bridge's order
        ({"from": None, "coding": "UCS2"}, "InvalidSender"),
        ({"coding": "UCS2"}, "InvalidCoding"),
        ({"coding": None, "password": "wrong"}, "AuthenticationError"),
        ({"flash": "maybe"}, "InvalidRequest"),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else str(value),
)
def test_both_lanes_answer_a_send_alike(
    lanes: Lanes, fields: dict[str, str | None], code: str | None, qualified: bool, version: str
) -> None:
    """An answer or a fault, in SOAP 1.1 or 1.2, qualified or not: byte for byte the same
    from both lanes (one template, one fault writer), and counted alike."""
    status, _, text = lanes.both(envelope(send_body(qualified, **fields), version), version)
    assert (status == 200) == (code is None), text
    assert code is None or f"code>{code}</" in text, text


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("qualified", [False, True], ids=["unqualified", "qualified"])
@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, None),
        ({"password": "wrong"}, "AuthenticationError"),
        ({"message_id": " "}, "NoMessageId"),
        ({"mobile": " "}, "NoMobile"),
        ({"message_id": "NOSUCHMESSAGE"}, "NoSuchMessage"),
        ({"mobile": None}, "NoMobile"),  # refused by the schema
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else str(value),
)
def test_both_lanes_answer_a_query_alike(
    lanes: Lanes,
    message_id: str,
    fields: dict[str, str | None],
    code: str | None,
    qualified: bool,
    version: str,
) -> None:
    """A query's status or fault: the same from both lanes."""
    _, _, text = lanes.both(envelope(query_body(message_id, qualified, **fields), version), version)
    assert ("status>Queued</" if code is None else f"code>{code}</") in text, text


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_both_lanes_answer_an_internal_error_alike(
    lanes: Lanes, monkeypatch: pytest.MonkeyPatch, message_id: str, version: str
) -> None:
    """A failure inside the bridge: the contract's ServerError from both, nothing of it
    shown."""

    def broken(*args: object) -> str:
        raise RuntimeError("the store is on fire")

    monkeypatch.setattr(lanes.bridge, "query", broken)
    status, _, text = lanes.both(envelope(query_body(message_id), version), version)
    assert status == 500 and "code>ServerError</" in text and "fire" not in text


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("password", ["demo", "wrong"])
def test_both_lanes_answer_a_wssecurity_request_alike(
    lanes: Lanes, version: str, password: str
) -> None:
    """A PasswordText token and a Timestamp, empty body credentials: the same answer
    (with its Timestamp) or the same wsse fault from both lanes."""
    now = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}Z"
    header = (
        f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}">'
        f"<wsu:Timestamp><wsu:Created>{now}</wsu:Created></wsu:Timestamp>"
        "<wsse:UsernameToken><wsse:Username>demo</wsse:Username>"
        f"<wsse:Password>{password}</wsse:Password></wsse:UsernameToken></wsse:Security>"
    )
    body = envelope(send_body(username="", password=""), version, header)
    status, _, text = lanes.both(body, version)
    assert (status == 200 and "Timestamp" in text) == (password == "demo"), text


def test_the_operations_are_the_declared_ones() -> None:
    """The fast lane's table is spyne's declaration: the same functions and the answers'
    element names, nothing of its own."""
    declared = SmsService.public_methods
    assert set(OPERATIONS) == set(declared) == {"send", "query"}
    for name, operation in OPERATIONS.items():
        assert operation.call is declared[name].function
    assert (OPERATIONS["send"].answer, OPERATIONS["query"].answer) == ("id", "status")


def test_a_type_the_fast_lane_cannot_read_fails_at_once() -> None:
    """A parameter of a spyne type without a reader here fails when the table is made, not
    as a silent difference between the lanes."""
    with pytest.raises(TypeError, match="cannot read Integer"):
        _reader(Integer)


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("1", True), (" true\n", True), ("false", False), ("0", False), (None, False)],
)
def test_xs_boolean_collapses_whitespace(text: str | None, value: bool) -> None:
    """xs:boolean as the schema reads it, in both lanes (spyne alone reads " true " as False)."""
    assert xs_boolean(text) is value
