"""The one delivery-status vocabulary every provider's states map onto.

It is the iSMS model (research/providers.md §4): a message is ``Queued`` until handed to
a provider, ``Pending`` once the provider accepted it, and ends ``Delivered`` or
``Failed``. Each provider module maps its own words (net2sms ``s``/``d``/``f``, SMS
Partner ``Waiting``/``Delivered``/``Not delivered``, allmysms ``statut`` 1–5) onto it.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DeliveryState"]


class DeliveryState(StrEnum):
    """Where one message stands for one recipient."""

    QUEUED = "Queued"
    PENDING = "Pending"
    DELIVERED = "Delivered"
    FAILED = "Failed"

    @property
    def final(self) -> bool:
        """Delivered and Failed never change again."""
        return self in (DeliveryState.DELIVERED, DeliveryState.FAILED)
