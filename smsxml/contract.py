"""The iSMS SOAP contract's faults, once: for each code of the schema (the generated
:class:`~smsxml.generated.isms.FaultCode`, from ``schemas/isms/sms.xsd``), the faultstring
iSMS documents (seed ``isms-api.el.txt``; research/providers.md §4), whose fault it is
(the client's request, or the server), and the error the SOAP client raises for it.

The bridge answers with these codes and texts, the SOAP client reads them back into
:mod:`smsxml.errors`; ``tests/test_contract.py`` fails when the schema gains a code this
table lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from smsxml.errors import (
    AuthenticationFailed,
    InsufficientCredit,
    InvalidRecipient,
    InvalidSender,
    PermanentFailure,
    ProviderError,
    TemporaryFailure,
)
from smsxml.generated.isms import FaultCode

__all__ = ["FAULTS", "Fault", "fault_of_text"]


@dataclass(frozen=True)
class Fault:
    """One fault of the contract."""

    code: FaultCode
    text: str  # the documented faultstring
    error: type[ProviderError]  # what a client raises for it
    client: bool = True  # soap:Client (the request is at fault) or soap:Server


FAULTS: Mapping[FaultCode, Fault] = MappingProxyType(
    {
        fault.code: fault
        for fault in (
            Fault(FaultCode.AUTHENTICATION_ERROR, "Authentication error.", AuthenticationFailed),
            Fault(FaultCode.NO_RECIPIENTS, "No recipients.", InvalidRecipient),
            Fault(FaultCode.INVALID_SENDER, "Invalid sender identity.", InvalidSender),
            Fault(FaultCode.INSUFFICIENT_CREDITS, "Insufficient credits.", InsufficientCredit),
            Fault(FaultCode.INVALID_SCHEDULE, "Invalid scheduling date.", PermanentFailure),
            Fault(FaultCode.NO_MESSAGE_ID, "No message ID defined.", PermanentFailure),
            Fault(FaultCode.NO_MOBILE, "No mobile defined.", PermanentFailure),
            Fault(FaultCode.NO_SUCH_MESSAGE, "No such message or recipient.", PermanentFailure),
            # not in iSMS's documentation: the bridge's own, for what iSMS leaves unsaid
            Fault(FaultCode.INVALID_CODING, "Invalid coding.", PermanentFailure),
            Fault(FaultCode.INVALID_RECIPIENT, "Invalid recipient.", InvalidRecipient),
            Fault(FaultCode.INVALID_REQUEST, "Invalid request.", PermanentFailure),
            Fault(FaultCode.SERVER_ERROR, "Internal error.", TemporaryFailure, client=False),
        )
    }
)

_CODE_OF_TEXT = {fault.text: code for code, fault in FAULTS.items()}


def fault_of_text(text: str) -> FaultCode | None:
    """The code of a documented faultstring: what an endpoint whose faults carry no
    detail (the real iSMS) says."""
    return _CODE_OF_TEXT.get(text.strip())
