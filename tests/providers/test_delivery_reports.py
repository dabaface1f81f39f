"""Every provider's delivery-report parser, fuzzed: whatever a callback carries, the
parser gives a StatusUpdate or refuses it with BadInput (the bridge's 400), never
another exception (a 500 and a traceback)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsxml.errors import BadInput
from smsxml.providers import Allmysms, Isms, SmsPartner
from smsxml.providers.base import StatusUpdate

#: the field names each parser reads, and a few it does not
KEYS = [
    "mid", "mobile", "status", "timestamp", "messageId", "message_id", "phoneNumber",
    "number", "phone_number", "statut", "date", "smsId", "statusText", "receptionDate",
    "campaignId", "other",
]  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()  # lone surrogates, control characters and non-ASCII digits included
    | st.sampled_from(["Delivered", "Failed", "1", "2", "+33612345678", "-306900000000"])
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner)
)
PARSERS: dict[str, Callable[[Mapping[str, Any]], StatusUpdate]] = {
    "isms": Isms.parse_delivery_report,
    "smspartner": SmsPartner.parse_delivery_report,
    "allmysms": Allmysms.parse_delivery_report,
}


@pytest.mark.parametrize("provider", sorted(PARSERS))
@settings(max_examples=100, deadline=None)
@given(fields=st.dictionaries(st.sampled_from(KEYS), VALUES))
def test_a_report_parses_or_is_refused_with_bad_input(
    provider: str, fields: dict[str, Any]
) -> None:
    """Any fields: a StatusUpdate naming a provider id, or BadInput."""
    try:
        update = PARSERS[provider](fields)
    except BadInput:
        return
    assert isinstance(update, StatusUpdate)
    assert update.provider_id.strip()
