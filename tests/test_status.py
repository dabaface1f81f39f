"""smsxml.status: the one delivery-status vocabulary, iSMS's words."""

from __future__ import annotations

import pytest

from smsxml.generated.isms import Status
from smsxml.status import DeliveryState


def test_the_states_are_the_isms_words() -> None:
    """The states are the iSMS schema's Status words, in the order a message lives them."""
    assert [state.value for state in DeliveryState] == ["Queued", "Pending", "Delivered", "Failed"]
    assert [state.value for state in DeliveryState] == [status.value for status in Status]


@pytest.mark.parametrize(
    ("state", "final"),
    [
        (DeliveryState.QUEUED, False),
        (DeliveryState.PENDING, False),
        (DeliveryState.DELIVERED, True),
        (DeliveryState.FAILED, True),
    ],
)
def test_only_delivered_and_failed_are_final(state: DeliveryState, final: bool) -> None:
    """A final state never changes again: only Delivered and Failed are."""
    assert state.final is final


def test_a_state_is_its_word() -> None:
    """A state is its word: it compares, formats and parses as plain text (a StrEnum)."""
    assert DeliveryState("Delivered") is DeliveryState.DELIVERED
    assert DeliveryState.FAILED == "Failed" and f"{DeliveryState.PENDING}" == "Pending"
    with pytest.raises(ValueError):
        DeliveryState("delivered")
