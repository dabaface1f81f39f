"""WS-I Basic Profile 1.1 assertions of the two WSDLs, as the bridge serves them over HTTP.

No maintained Python tool checks the profile (the WS-I testing tools are Java and C#, and
unmaintained), so these are the assertions that matter for a SOAP 1.1 document/literal
and rpc/literal service, written out: each check's docstring is its reason, the
interop trap it keeps us out of. A check returns what it finds wrong, so a failure names
the element.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from lxml import etree

from smsxml import xmlsafe
from smsxml.server.app import RPC_WSDL_PATH, BridgeServer

from .conftest import bridge_settings

WSDL = "http://schemas.xmlsoap.org/wsdl/"
NS = {"wsdl": WSDL, "soap": "http://schemas.xmlsoap.org/wsdl/soap/"}
XS = "http://www.w3.org/2001/XMLSchema"
SOAP_HTTP = "http://schemas.xmlsoap.org/soap/http"
SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
Check = Callable[[etree._Element], list[str]]


def soap11_only(wsdl: etree._Element) -> etree._Element:
    """``wsdl`` without its SOAP 1.2 bindings and their ports: Basic Profile 1.1 speaks of
    SOAP 1.1 only (its R2401 even allows no other binding), so the 1.2 twins of the
    document/literal binding are out of its scope; tests/server/test_soap12.py checks
    them against the 1.1 binding instead."""
    soap12 = {
        b.get("name")
        for b in wsdl.iterfind("wsdl:binding", NS)
        if b.find(f"{{{SOAP12}}}binding") is not None
    }
    for binding in wsdl.findall("wsdl:binding", NS):
        if binding.get("name") in soap12:
            wsdl.remove(binding)
    for port in wsdl.findall("wsdl:service/wsdl:port", NS):
        if _local(port.get("binding")) in soap12:
            port.getparent().remove(port)
    return wsdl


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, etree._Element]]:
    """Both WSDLs, fetched from one running bridge, as far as BP 1.1 speaks of them."""
    bridge = BridgeServer(bridge_settings(tmp_path_factory.mktemp("wsi"))).start()
    try:
        yield {
            "document": soap11_only(xmlsafe.parse(httpx.get(bridge.wsdl_url, timeout=10).content)),
            "rpc": soap11_only(
                xmlsafe.parse(httpx.get(bridge.url + RPC_WSDL_PATH, timeout=10).content)
            ),
        }
    finally:
        bridge.stop()


def _local(qname: str | None) -> str:
    return (qname or "").rpartition(":")[2]


def _messages(wsdl: etree._Element) -> dict[str, etree._Element]:
    return {m.get("name"): m for m in wsdl.iterfind("wsdl:message", NS)}


def _style(wsdl: etree._Element) -> str:
    return wsdl.find("wsdl:binding/soap:binding", NS).get("style", "document")


def _body_messages(wsdl: etree._Element) -> Iterator[etree._Element]:
    """The input and output messages of the port type's operations."""
    messages = _messages(wsdl)
    for direction in ("input", "output"):
        for node in wsdl.iterfind(f"wsdl:portType/wsdl:operation/wsdl:{direction}", NS):
            yield messages[_local(node.get("message"))]


def r2201_r2210_one_part_in_a_document_body(wsdl: etree._Element) -> list[str]:
    """R2201/R2210: a document-literal body holds at most one part, and a soap:body without
    ``parts`` lists them all; with two, the body has two children and no generator can
    wrap or unwrap it."""
    if _style(wsdl) != "document":
        return []
    wrong = [m.get("name") for m in _body_messages(wsdl) if len(m) != 1]
    named = [b.get("parts") for b in wsdl.iterfind(".//soap:body", NS) if b.get("parts")]
    return wrong + named


def r2204_document_parts_use_element(wsdl: etree._Element) -> list[str]:
    """R2204: document-literal parts name an ``element``; a ``type`` part leaves the body
    element's name to each stack's guess."""
    if _style(wsdl) != "document":
        return []
    return [m.get("name") for m in _body_messages(wsdl) if m.find("wsdl:part", NS).get("type")]


def r2203_rpc_parts_use_type(wsdl: etree._Element) -> list[str]:
    """R2203: rpc-literal parts name a ``type``: the part is the accessor element, and an
    ``element`` part would nest a second element in it."""
    if _style(wsdl) != "rpc":
        return []
    return [
        f"{m.get('name')}/{p.get('name')}"
        for m in _body_messages(wsdl)
        for p in m.iterfind("wsdl:part", NS)
        if p.get("element") or not p.get("type")
    ]


def r2205_fault_parts_use_element(wsdl: etree._Element) -> list[str]:
    """R2205: a fault message's part names an ``element``, the detail's child, from which
    every stack makes its typed fault class."""
    messages = _messages(wsdl)
    wrong = []
    for fault in wsdl.iterfind("wsdl:portType/wsdl:operation/wsdl:fault", NS):
        parts = messages[_local(fault.get("message"))].findall("wsdl:part", NS)
        if len(parts) != 1 or not parts[0].get("element"):
            wrong.append(fault.get("message"))
    return wrong


def r2706_literal_only(wsdl: etree._Element) -> list[str]:
    """R2706: use="literal" on every soap:body, soap:fault and soap:header: SOAP encoding
    is outside the profile and .NET and JAX-WS generate nothing usable from it."""
    return [
        etree.QName(node).localname
        for tag in ("body", "fault", "header")
        for node in wsdl.iterfind(f".//soap:{tag}", NS)
        if node.get("use") != "literal"
    ]


def r2701_r2702_http_transport(wsdl: etree._Element) -> list[str]:
    """R2701/R2702: soap:binding names its transport, SOAP over HTTP; without it wsimport
    and svcutil refuse the binding."""
    return [
        str(b.get("transport"))
        for b in wsdl.iterfind("wsdl:binding/soap:binding", NS)
        if b.get("transport") != SOAP_HTTP
    ]


def r2705_one_style_per_binding(wsdl: etree._Element) -> list[str]:
    """R2705: a binding is all rpc-literal or all document-literal; a mix makes some
    stacks pick one style for every operation."""
    style = _style(wsdl)
    return [
        o.get("style")
        for o in wsdl.iterfind("wsdl:binding/wsdl:operation/soap:operation", NS)
        if o.get("style", style) != style
    ]


def r2716_no_namespace_in_document_literal(wsdl: etree._Element) -> list[str]:
    """R2716: document-literal soap:body, soap:header and soap:fault carry no
    ``namespace``: the element's own namespace is the one on the wire."""
    if _style(wsdl) != "document":
        return []
    return [
        etree.QName(n).localname
        for tag in ("body", "header", "fault")
        for n in wsdl.iterfind(f".//soap:{tag}", NS)
        if n.get("namespace") is not None
    ]


def r2717_rpc_body_namespace(wsdl: etree._Element) -> list[str]:
    """R2717: rpc-literal soap:body names an absolute namespace URI: the wrapper element's
    namespace, which stacks would otherwise leave empty."""
    if _style(wsdl) != "rpc":
        return []
    return [
        str(b.get("namespace"))
        for b in wsdl.iterfind(".//soap:body", NS)
        if not urlsplit(b.get("namespace") or "").scheme
    ]


def r2726_no_namespace_on_rpc_faults(wsdl: etree._Element) -> list[str]:
    """R2726: rpc-literal soap:fault and soap:header carry no ``namespace``: the detail is
    an element in its own namespace."""
    if _style(wsdl) != "rpc":
        return []
    return [
        etree.QName(n).localname
        for tag in ("fault", "header", "headerfault")
        for n in wsdl.iterfind(f".//soap:{tag}", NS)
        if n.get("namespace") is not None
    ]


def r2710_unique_wire_signatures(wsdl: etree._Element) -> list[str]:
    """R2710: each operation has its own body element on the wire (the wrapper element for
    document-literal, the operation name for rpc): the service dispatches on it."""
    messages = _messages(wsdl)
    signatures = []
    for operation in wsdl.iterfind("wsdl:portType/wsdl:operation", NS):
        if _style(wsdl) == "rpc":
            signatures.append(operation.get("name"))
        else:
            message = messages[_local(operation.find("wsdl:input", NS).get("message"))]
            signatures.append(message.find("wsdl:part", NS).get("element"))
    return [s for s in signatures if signatures.count(s) > 1]


def r2754_fault_names_match(wsdl: etree._Element) -> list[str]:
    """R2754: soap:fault's name is its wsdl:fault's, the only link from a binding's fault
    to the message it carries."""
    return [
        f"{f.get('name')}≠{f.find('soap:fault', NS).get('name')}"
        for f in wsdl.iterfind("wsdl:binding/wsdl:operation/wsdl:fault", NS)
        if f.find("soap:fault", NS) is None or f.find("soap:fault", NS).get("name") != f.get("name")
    ]


def r2718_binding_matches_port_type(wsdl: etree._Element) -> list[str]:
    """R2718/R2304: the binding has exactly the port type's operations, none overloaded."""
    declared = [o.get("name") for o in wsdl.iterfind("wsdl:portType/wsdl:operation", NS)]
    bound = [o.get("name") for o in wsdl.iterfind("wsdl:binding/wsdl:operation", NS)]
    return [] if sorted(declared) == sorted(bound) == sorted(set(declared)) else bound


def soap_action_per_operation(wsdl: etree._Element) -> list[str]:
    """R2744 with BP 1.1's soapAction advice: every operation has its own absolute
    soapAction, which .NET and JAX-WS send quoted (the service dispatches on the body)."""
    actions = [
        o.get("soapAction") or ""
        for o in wsdl.iterfind("wsdl:binding/wsdl:operation/soap:operation", NS)
    ]
    return [a for a in actions if not urlsplit(a).scheme or actions.count(a) > 1]


def r2101_references_resolve(wsdl: etree._Element) -> list[str]:
    """R2101/R2102: every QName a part names is declared in the served document (the
    schema is inlined) or is an XML Schema built-in: a client fetches nothing else."""
    tns = wsdl.get("targetNamespace")
    declared = {
        (tns, node.get("name"))
        for schema in wsdl.iterfind(f"wsdl:types/{{{XS}}}schema", NS)
        for node in schema
        if isinstance(node.tag, str)
    }
    missing = []
    for part in wsdl.iterfind("wsdl:message/wsdl:part", NS):
        reference = part.get("element") or part.get("type") or ""
        prefix, _, name = reference.rpartition(":")
        namespace = part.nsmap.get(prefix or None)
        if namespace != XS and (namespace, name) not in declared:
            missing.append(reference)
    return missing


CHECKS: list[Check] = [
    r2201_r2210_one_part_in_a_document_body,
    r2204_document_parts_use_element,
    r2203_rpc_parts_use_type,
    r2205_fault_parts_use_element,
    r2706_literal_only,
    r2701_r2702_http_transport,
    r2705_one_style_per_binding,
    r2716_no_namespace_in_document_literal,
    r2717_rpc_body_namespace,
    r2726_no_namespace_on_rpc_faults,
    r2710_unique_wire_signatures,
    r2754_fault_names_match,
    r2718_binding_matches_port_type,
    soap_action_per_operation,
    r2101_references_resolve,
]


@pytest.mark.parametrize("which", ["document", "rpc"])
@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_basic_profile(served: dict[str, etree._Element], which: str, check: Check) -> None:
    """The served WSDL meets the Basic Profile 1.1 assertion ``check`` stands for."""
    assert check(served[which]) == [], check.__doc__


def test_the_checks_can_fail(served: dict[str, etree._Element]) -> None:
    """Each WSDL style trips the checks of the other's rules when given its details."""
    document = served["document"]
    body = document.find(".//soap:body", NS)
    body.set("namespace", "http://smsxml.org/isms/1")
    body.set("use", "encoded")
    assert r2716_no_namespace_in_document_literal(document)
    assert r2706_literal_only(document)
    rpc = served["rpc"]
    rpc.find("wsdl:message/wsdl:part", NS).set("element", "tns:send")
    assert r2203_rpc_parts_use_type(rpc)
    del rpc.find("wsdl:binding/soap:binding", NS).attrib["transport"]
    assert r2701_r2702_http_transport(rpc)
