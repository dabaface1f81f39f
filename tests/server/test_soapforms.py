"""The four forms one send arrives in (unqualified, qualified, SOAP-encoded, with nil
arguments), each read into the one literal form sms.xsd checks; answers qualified when
asked so."""

from __future__ import annotations

from lxml import etree

from smsxml.ns import SOAP12_ENV, SOAP_ENC, SOAP_ENV, XSI
from smsxml.server.soapforms import SOAP11, SOAP12, Reading, qualify, read
from smsxml.server.wsdl import TNS

ENVELOPE = f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>{{}}</soap:Body></soap:Envelope>'
#: the declarations of an rpc/encoded operation element
ENCODED = (
    f'xmlns:t="{TNS}" xmlns:enc="{SOAP_ENC}" xmlns:xsi="{XSI}"'
    ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
)
NUMBERS = ["306912345678", "306912345679"]


def _read(payload: str, before: list[bytes] | None = None) -> tuple[etree._Element, Reading]:
    """Read the operation element of an envelope around ``payload``, as the endpoint does
    (appending the element as it was to ``before``)."""
    body = ENVELOPE.format(payload).encode()
    operation = etree.fromstring(body)[0][0]
    if before is not None:
        before.append(etree.tostring(operation))
    reading = Reading()
    read(body, operation, TNS, reading)
    return operation, reading


def _literal(operation: etree._Element) -> list[tuple[str, str | None]]:
    """The operation's children and grandchildren: (tag, text), depth first."""
    return [(str(e.tag), e.text) for e in operation.iterdescendants()]


def test_an_unqualified_literal_request_is_left_as_it_came() -> None:
    """The common form is read as it came, and the answer will be unqualified too."""
    payload = (
        f'<t:send xmlns:t="{TNS}"><username>demo</username>'
        f"<to><recipients>{NUMBERS[0]}</recipients></to></t:send>"
    )
    before: list[bytes] = []
    operation, reading = _read(payload, before)
    assert not reading.qualified
    assert before == [etree.tostring(operation)]


def test_qualified_elements_are_read_unqualified_and_answered_qualified() -> None:
    """Clients of the document/literal WSDL qualify every element, recipients included;
    the reading says so, for the answer to follow their form."""
    operation, reading = _read(
        f'<t:send xmlns:t="{TNS}"><t:username>demo</t:username><t:to>'
        + "".join(f"<t:recipients>{n}</t:recipients>" for n in NUMBERS)
        + "</t:to></t:send>"
    )
    assert reading.qualified
    assert _literal(operation) == [
        ("username", "demo"),
        ("to", None),
        ("recipients", NUMBERS[0]),
        ("recipients", NUMBERS[1]),
    ]


def test_a_soap_encoded_array_becomes_recipients_and_nil_arguments_go() -> None:
    """PHP's and Axis 1's rpc/encoded form: an array of items becomes repeated recipients,
    the encoding's attributes go, and an argument sent as xsi:nil is absent."""
    items = "".join(f"<item>{n}</item>" for n in NUMBERS)
    operation, reading = _read(
        f'<t:send {ENCODED} soap:encodingStyle="{SOAP_ENC}">'
        '<username xsi:type="xsd:string">demo</username>'
        f'<to xsi:type="enc:Array" enc:arrayType="xsd:string[2]">{items}</to>'
        '<schedule xsi:nil="true"/></t:send>'
    )
    assert not reading.qualified
    assert _literal(operation) == [
        ("username", "demo"),
        ("to", None),
        ("recipients", NUMBERS[0]),
        ("recipients", NUMBERS[1]),
    ]
    for element in operation.iter():
        assert not [name for name in element.attrib if SOAP_ENC in name or SOAP_ENV in name]


def test_an_encoded_array_inside_the_to_struct_becomes_its_recipients() -> None:
    """``to`` as a struct whose ``recipients`` member is an encoded array: the array's
    items take its place, in order."""
    items = "".join(f"<item>{n}</item>" for n in NUMBERS)
    operation, _ = _read(
        f'<t:send {ENCODED}><to><recipients enc:arrayType="xsd:string[2]">{items}'
        "</recipients></to></t:send>"
    )
    assert _literal(operation) == [
        ("to", None),
        ("recipients", NUMBERS[0]),
        ("recipients", NUMBERS[1]),
    ]


def test_qualify_puts_an_answers_children_in_its_namespace() -> None:
    """sendResponse's id, for clients that read it qualified (.NET, JAXB read an
    unqualified id as null)."""
    answer = etree.fromstring(f'<t:sendResponse xmlns:t="{TNS}"><id>ABC</id></t:sendResponse>')
    qualify(answer)
    assert [child.tag for child in answer] == [f"{{{TNS}}}id"]


def test_each_soap_version_has_its_own_media_type_and_namespace() -> None:
    """SOAP 1.1 is text/xml, SOAP 1.2 application/soap+xml (RFC 3902); their elements
    are in their own namespaces."""
    assert SOAP11.content_type == "text/xml; charset=utf-8"
    assert SOAP12.content_type == "application/soap+xml; charset=utf-8"
    assert SOAP12.tag("Fault") == f"{{{SOAP12_ENV}}}Fault"
    assert SOAP11.tag("Fault") == f"{{{SOAP_ENV}}}Fault"
