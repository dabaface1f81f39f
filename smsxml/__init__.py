"""smsxml: a SOAP/XML protocol toolkit for SMS gateways.

Schema-first: the XSDs and the WSDL in ``schemas/`` are the source of truth, the
dataclasses in ``smsxml.generated`` are generated from them, and every XML document
is parsed by the hardened parser of :mod:`smsxml.xmlsafe`.
"""

from smsxml.errors import (
    BadInput,
    Problem,
    SmsxmlError,
)

__version__ = "0.1.0"

__all__ = ["BadInput", "Problem", "SmsxmlError", "__version__"]
