"""smsxml.ns: the namespaces of SOAP and its neighbours, as the other SOAP stacks and our
own WSDL spell them."""

from __future__ import annotations

import spyne.const.xml as spyne_ns
import zeep.ns as zeep_ns
from lxml import etree

from smsxml import ns
from tests.conftest import ROOT


def test_zeep_and_spyne_spell_them_the_same() -> None:
    """Each namespace is spelt as zeep and spyne spell it (a typo would strand our peers)."""
    assert (ns.SOAP_ENV, ns.SOAP12_ENV) == (zeep_ns.SOAP_ENV_11, zeep_ns.SOAP_ENV_12)
    assert (ns.WSDL_SOAP, ns.WSDL_SOAP12) == (zeep_ns.SOAP_11, zeep_ns.SOAP_12)
    assert (ns.XS, ns.XSI) == (zeep_ns.XSD, zeep_ns.XSI)
    assert (ns.WSSE, ns.WSU) == (zeep_ns.WSSE, zeep_ns.WSU)
    assert ns.SOAP_ENC == spyne_ns.NS_SOAP11_ENC
    assert (ns.SOAP_ENV, ns.SOAP12_ENV) == (spyne_ns.NS_SOAP11_ENV, spyne_ns.NS_SOAP12_ENV)
    assert (ns.WSDL_SOAP, ns.WSDL_SOAP12) == (
        spyne_ns.NS_WSDL11_SOAP,
        spyne_ns.NS_WSDL11_SOAP12,
    )


def test_every_name_is_exported_and_distinct() -> None:
    """__all__ lists every namespace of the module, and no two share a URI."""
    names = [name for name in vars(ns) if name.isupper()]
    assert sorted(ns.__all__) == sorted(names)
    assert len({getattr(ns, name) for name in names}) == len(names)


def test_the_published_wsdl_binds_with_these_namespaces() -> None:
    """schemas/isms/sms.wsdl declares its SOAP 1.1, SOAP 1.2 and XSD prefixes with them."""
    wsdl = etree.parse(str(ROOT / "schemas" / "isms" / "sms.wsdl")).getroot()
    assert {wsdl.nsmap["soap"], wsdl.nsmap["soap12"], wsdl.nsmap["xs"]} == {
        ns.WSDL_SOAP,
        ns.WSDL_SOAP12,
        ns.XS,
    }
