"""The iSMS contract's table (smsxml/contract.py) against the schema's enumerations: a code,
coding or status added to ``schemas/isms/sms.xsd`` fails here until the code handles it."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsxml.contract import FAULTS, fault_of_text
from smsxml.errors import PermanentFailure, TemporaryFailure
from smsxml.generated.isms import Coding, FaultCode, Status
from smsxml.server.bridge import Bridge, SendRequest, SmsFault
from smsxml.server.store import Store
from smsxml.soap import FAULT_ERRORS
from smsxml.status import DeliveryState


def test_every_fault_code_of_the_schema_has_its_text_and_error() -> None:
    """Each FaultCode of sms.xsd is in the table, with a faultstring and an error; the
    SOAP client maps every one of them."""
    assert set(FAULTS) == set(FaultCode)
    for code, fault in FAULTS.items():
        assert fault.code is code and fault.text.endswith(".")
        assert issubclass(fault.error, PermanentFailure if fault.client else TemporaryFailure)
        assert FAULT_ERRORS[code.value] is fault.error
        assert fault_of_text(f" {fault.text} ") is code


def test_every_status_of_the_schema_is_a_delivery_state() -> None:
    """query answers the schema's Status words: they are the states the store keeps."""
    assert {status.value for status in Status} == {state.value for state in DeliveryState}


@pytest.mark.parametrize("coding", list(Coding))
def test_every_coding_of_the_schema_is_accepted(tmp_path: Path, coding: Coding) -> None:
    """send takes each Coding of the schema (none is refused as InvalidCoding)."""
    store = Store(f"sqlite:///{tmp_path / 'contract.sqlite3'}")
    try:
        store.accounts.add("acme", "pw", 10)
        request = SendRequest(
            "acme", "pw", "Acme", ["306912345678"], "hello", coding.value, flash=False
        )
        assert Bridge(store).send(request)
        with pytest.raises(SmsFault) as refused:
            Bridge(store).send(
                SendRequest("acme", "pw", "Acme", ["306912345678"], "hi", "X", False)
            )
        assert refused.value.code == FaultCode.INVALID_CODING.value
    finally:
        store.close()
