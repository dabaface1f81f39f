"""The iSMS SOAP client under its public name (``from smsxml.soap import SoapClient``); it
lives beside the other provider clients, in :mod:`smsxml.providers.isms_soap`."""

from smsxml.providers.isms_soap import (
    DEFAULT_TIMEOUT,
    FAULT_ERRORS,
    MAX_ANSWER_BYTES,
    MAX_WSDL_BYTES,
    PROVIDER,
    SoapClient,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "FAULT_ERRORS",
    "MAX_ANSWER_BYTES",
    "MAX_WSDL_BYTES",
    "PROVIDER",
    "SoapClient",
]
