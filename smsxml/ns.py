"""The XML namespaces of SOAP and its neighbours, written once (zeep keeps its own the
same way, in ``zeep/ns.py``); the service's own namespace is the WSDL's (server/wsdl.py)."""

__all__ = [
    "SOAP_ENC",
    "SOAP_ENV",
    "SOAP12_ENV",
    "WSDL_SOAP",
    "WSDL_SOAP12",
    "WSSE",
    "WSU",
    "XS",
    "XSI",
]

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"  # SOAP 1.1
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"  # SOAP 1.1 section 5 encoding
XS = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"  # the WSDL 1.1 binding of SOAP 1.1
WSDL_SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
