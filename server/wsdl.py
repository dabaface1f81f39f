"""The WSDL documents the bridge serves: the originals from ``schemas/isms/``, not
spyne's, with two changes made at serving time:

- the service address is the configured public URL (never the request's Host header,
  which a client or a proxy controls), on every port (SOAP 1.1 and 1.2);
- ``sms.xsd`` is inlined in place of its ``xs:import``, so a client fetches one document
  (wsimport, wsdl.exe and zeep with external fetches forbidden all cope with that);
- the inlined schema gets the element form its document's clients need (:data:`FORMS`).
"""

from __future__ import annotations

import copy
from functools import cache
from typing import cast

from lxml import etree

from smsxml import xmlsafe
from smsxml.ns import WSDL_SOAP, WSDL_SOAP12, XS

__all__ = ["DOCUMENT_WSDL", "FORMS", "RPC_WSDL", "TNS", "render"]

TNS = "http://smsxml.org/isms/1"
DOCUMENT_WSDL = "isms/sms.wsdl"
RPC_WSDL = "isms/sms-rpc.wsdl"

#: elementFormDefault of the inlined sms.xsd, per document. Qualified for the
#: document/literal WSDL: from unqualified local elements .NET's svcutil falls back to
#: XmlSerializer message contracts (``sendResponse send(send send)``) without defining
#: them, and the proxy does not compile. Unqualified for the rpc/literal WSDL: what its
#: clients sent and read before, and the form rpc/literal gives its parts anyway. The
#: endpoint reads both and answers in the form it was asked in (server/soap.py).
FORMS = {DOCUMENT_WSDL: "qualified", RPC_WSDL: "unqualified"}


def _load(relative: str) -> etree._Element:
    return xmlsafe.parse_file(xmlsafe.SCHEMAS_DIR / relative)


@cache
def render(document: str, address: str) -> bytes:
    """``document`` (a path under schemas/) served for the endpoint at ``address``."""
    root = copy.deepcopy(_load(document))
    # every port, SOAP 1.1 and 1.2 alike: one address answers both versions
    for location in root.iter(f"{{{WSDL_SOAP}}}address", f"{{{WSDL_SOAP12}}}address"):
        location.set("location", address)
    for schema in root.iter(f"{{{XS}}}schema"):
        for imported in schema.findall(f"{{{XS}}}import"):
            included = _load(f"isms/{imported.get('schemaLocation')}")
            included.set("elementFormDefault", FORMS[document])
            parent = cast(etree._Element, schema.getparent())  # a schema is in wsdl:types
            parent.replace(schema, included)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
