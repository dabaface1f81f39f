"""The WSDL documents as served: the originals, with the configured address on every port
and sms.xsd inlined in the element form each document's clients need."""

from __future__ import annotations

import pytest
from lxml import etree

from smsxml.ns import WSDL_SOAP, WSDL_SOAP12, XS
from smsxml.server.wsdl import DOCUMENT_WSDL, FORMS, RPC_WSDL, TNS, render

ADDRESS = "https://sms.example.org/soap"


def _addresses(document: bytes) -> list[str]:
    root = etree.fromstring(document)
    found = root.iter(f"{{{WSDL_SOAP}}}address", f"{{{WSDL_SOAP12}}}address")
    return [element.get("location") for element in found]


def test_every_port_names_the_configured_address() -> None:
    """The SOAP 1.1 and 1.2 ports of the document/literal WSDL both name the address it
    was rendered for; the placeholder of the file is gone."""
    document = render(DOCUMENT_WSDL, ADDRESS)
    assert _addresses(document) == [ADDRESS, ADDRESS]
    assert b"localhost:8080" not in document


def test_documents_for_two_addresses_do_not_share_one() -> None:
    """Rendering for a second address leaves the first document as it was (the parsed
    original is copied, never edited in place)."""
    first = render(RPC_WSDL, "https://one.example.org/api/soap/sms.php")
    second = render(RPC_WSDL, "https://two.example.org/api/soap/sms.php")
    assert _addresses(first) == ["https://one.example.org/api/soap/sms.php"]
    assert _addresses(second) == ["https://two.example.org/api/soap/sms.php"]


@pytest.mark.parametrize(
    ("document", "form"), [(DOCUMENT_WSDL, "qualified"), (RPC_WSDL, "unqualified")]
)
def test_the_schema_is_inlined_in_the_form_its_clients_need(document: str, form: str) -> None:
    """A client fetches one document: sms.xsd is in it instead of an xs:import, with
    elementFormDefault qualified for document/literal clients (.NET's svcutil) and
    unqualified for rpc/literal ones."""
    assert FORMS[document] == form
    root = etree.fromstring(render(document, ADDRESS))
    assert root.findall(f".//{{{XS}}}import") == []
    (schema,) = root.iter(f"{{{XS}}}schema")
    assert schema.get("targetNamespace") == TNS
    assert schema.get("elementFormDefault") == form
    assert schema.find(f"{{{XS}}}element[@name='send']") is not None
