"""The forms one ``send`` or ``query`` arrives in, read into the one form ``sms.xsd``
checks, and the form to answer in.

Clients of the same contract write it in four ways, all of them correct for the WSDL
or the habits they were made from:

- **unqualified** local elements (``<username>``): rpc/literal clients (the parts are
  unqualified by WS-I BP R2735) and every client made from our WSDLs before they
  were served qualified;
- **qualified** local elements (``<tns:username>``): clients made from the
  document/literal WSDL, which says ``elementFormDefault="qualified"`` (server/wsdl.py);
  they expect the answer's children qualified too, and an unqualified ``<id>`` reads as
  null in .NET and JAXB, so the answer follows the request's form;
- **SOAP-encoded** (rpc/encoded, the habit of PHP, Axis 1 and code written for the real
  iSMS): ``<to xsi:type="SOAP-ENC:Array" SOAP-ENC:arrayType="xsd:string[2]">`` with
  ``<item>`` children, or ``to`` as a struct whose ``recipients`` is such an array, and
  ``SOAP-ENC``/``encodingStyle`` attributes the literal schema does not allow;
- **nil** for an argument left out (PHP SoapClient sends ``<schedule xsi:nil="true"/>``
  for the optional rpc parts a positional call does not give): read as absent.

Around all four, the envelope is SOAP 1.1 or SOAP 1.2 (:data:`SOAP11`, :data:`SOAP12`):
the operations are the same, only the envelope, its media type and the fault's shape
differ, so the version is read once and the answer is written in it.

:func:`read` rewrites the payload in place into the unqualified literal form; the raw
body is searched first, so the common request pays for none of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from lxml import etree

from smsxml.ns import SOAP12_ENV, SOAP_ENC, SOAP_ENV, XSI

__all__ = ["SOAP11", "SOAP12", "Envelope", "Reading", "may_use", "qualify", "read"]

_ENC_ATTRIBUTE = f"{{{SOAP_ENC}}}"
_ENCODING_STYLE = f"{{{SOAP_ENV}}}encodingStyle"
_ARRAY_TYPE = f"{{{SOAP_ENC}}}arrayType"
_XSI_TYPE = f"{{{XSI}}}type"
_XSI_NIL = f"{{{XSI}}}nil"
#: the repeated child of Recipients, whatever an encoded array called its items
RECIPIENT = "recipients"


@dataclass(frozen=True)
class Envelope:
    """One SOAP version, as far as the endpoint needs to know it."""

    namespace: str
    media_type: str  # of requests and answers in this version
    #: the header attribute naming whom a block is for (SOAP 1.1 actor, SOAP 1.2 role)
    target: str
    #: the targets the endpoint plays: none said (the ultimate receiver), "next", and in
    #: SOAP 1.2 the ultimate receiver by name (Part 1 §5.2.2)
    ours: tuple[str | None, ...]

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; charset=utf-8"

    def tag(self, local: str) -> str:
        """``local`` (Envelope, Header, Body, Fault …) in this version's namespace."""
        return f"{{{self.namespace}}}{local}"


SOAP11 = Envelope(
    SOAP_ENV,
    "text/xml",
    f"{{{SOAP_ENV}}}actor",
    (None, "", "http://schemas.xmlsoap.org/soap/actor/next"),
)
#: SOAP 1.2 over HTTP is ``application/soap+xml`` (RFC 3902); its ``action`` parameter
#: replaces SOAPAction and, like it, is not needed: the body element names the operation
SOAP12 = Envelope(
    SOAP12_ENV,
    "application/soap+xml",
    f"{{{SOAP12_ENV}}}role",
    (None, "", f"{SOAP12_ENV}/role/next", f"{SOAP12_ENV}/role/ultimateReceiver"),
)


@dataclass
class Reading:
    """What :func:`read` learnt of a request: its form and (the endpoint says) the
    envelope version to answer in."""

    qualified: bool = False
    envelope: Envelope = SOAP11


def may_use(body: bytes, namespace: str) -> bool:
    """Whether ``body`` may use ``namespace``: a byte search that spares the common
    request a search of its tree. In UTF-16 or UTF-32 (a body that begins with a zero
    byte in its first four, or with neither ``<``, whitespace nor UTF-8's BOM) a name's
    bytes are interleaved with zeros, so only the tree can tell: True."""
    if namespace.encode() in body:
        return True
    ascii_compatible = body[:1] in (b"<", b" ", b"\t", b"\r", b"\n", b"\xef")
    return not ascii_compatible or b"\x00" in body[:4]


def read(body: bytes, payload: etree._Element, tns: str, reading: Reading) -> None:
    """Rewrite ``payload`` (the body's operation element, in ``tns``) into the
    unqualified literal form; ``reading`` says what it found."""
    prefix = f"{{{tns}}}"
    # The casts below say what the isinstance filters proved (mypy does not carry that
    # through a list): str tags only, no comments or processing instructions.
    children = [c for c in payload if isinstance(c.tag, str)]
    if any(cast(str, c.tag).startswith(prefix) for c in children):
        reading.qualified = True
    for child in children:
        tag = cast(str, child.tag)
        if tag.startswith(prefix):
            child.tag = tag[len(prefix) :]
        grandchildren = [g for g in child if isinstance(g.tag, str)]
        # a list of recipients is written in one form: the first item says which
        if grandchildren and cast(str, grandchildren[0].tag).startswith(prefix):
            for grandchild in grandchildren:
                tag = cast(str, grandchild.tag)
                if tag.startswith(prefix):
                    grandchild.tag = tag[len(prefix) :]
    if may_use(body, XSI):
        for child in children:
            if child.get(_XSI_NIL) in ("true", "1"):
                payload.remove(child)
    if may_use(body, SOAP_ENC):
        _decode(payload)


def _is_array(element: etree._Element) -> bool:
    """A SOAP-encoded array: ``SOAP-ENC:arrayType``, or ``xsi:type`` naming SOAP-ENC:Array."""
    if element.get(_ARRAY_TYPE) is not None:
        return True
    declared = element.get(_XSI_TYPE)
    if not declared:
        return False
    prefix, _, local = declared.rpartition(":")
    return local == "Array" and element.nsmap.get(prefix or None) == SOAP_ENC


def _items_as_recipients(array: etree._Element) -> list[etree._Element]:
    items = [item for item in array if isinstance(item.tag, str)]
    for item in items:
        item.tag = RECIPIENT
    return items


def _decode(payload: etree._Element) -> None:
    """SOAP encoding (SOAP 1.1 §5) into the literal form: arrays of recipients become
    repeated ``recipients``, and the encoding's own attributes go."""
    to = payload.find("to")
    if to is not None:
        if _is_array(to):
            _items_as_recipients(to)
        else:
            for inner in [c for c in to if isinstance(c.tag, str) and _is_array(c)]:
                index = to.index(inner)
                to.remove(inner)
                for offset, item in enumerate(_items_as_recipients(inner)):
                    to.insert(index + offset, item)
    for element in payload.iter():
        if not isinstance(element.tag, str):
            continue
        for name in [n for n in element.attrib if n.startswith(_ENC_ATTRIBUTE)]:
            del element.attrib[name]
        element.attrib.pop(_ENCODING_STYLE, None)


def qualify(wrapper: etree._Element) -> None:
    """Put the children of ``wrapper`` (an answer's ``sendResponse`` or ``queryResponse``,
    or a fault's ``smsFault``) in its namespace: the qualified form."""
    namespace = etree.QName(wrapper).namespace
    for child in wrapper:
        if isinstance(child.tag, str) and not child.tag.startswith("{"):
            child.tag = f"{{{namespace}}}{child.tag}"
