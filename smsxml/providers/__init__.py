"""Typed clients of the five HTTP SMS providers, behind one interface.

Every client is a :class:`~smsxml.providers.base.Provider` (send, balance, statuses)
with its provider's other calls as methods; :func:`build` makes one from a name, a
base URL and the client's own options (what the SOAP bridge's configuration holds).
"""

from __future__ import annotations

from typing import Any

from smsxml.providers.allmysms import Allmysms
from smsxml.providers.base import (
    Balance,
    OutgoingMessage,
    Provider,
    StatusUpdate,
    Submitted,
)
from smsxml.providers.easysms import Easysms
from smsxml.providers.isms import Isms
from smsxml.providers.net2sms import Net2sms
from smsxml.providers.smspartner import SmsPartner
from smsxml.soap import SoapClient

__all__ = [
    "CLIENTS",
    "Allmysms",
    "Balance",
    "Easysms",
    "Isms",
    "Net2sms",
    "OutgoingMessage",
    "Provider",
    "SmsPartner",
    "StatusUpdate",
    "Submitted",
    "build",
]

#: provider kind → client class
CLIENTS: dict[str, type[Provider]] = {
    "net2sms": Net2sms,
    "easysms": Easysms,
    "smspartner": SmsPartner,
    "isms": Isms,
    "allmysms": Allmysms,
    "isms-soap": SoapClient,
}


def build(kind: str, base_url: str | None = None, **options: Any) -> Provider:
    """A client of provider ``kind`` (see :data:`CLIENTS`) at ``base_url`` (default: the
    vendor's), with the client's own keyword options (credentials…)."""
    try:
        cls = CLIENTS[kind]
    except KeyError:
        raise ValueError(f"unknown provider kind {kind!r}; known: {', '.join(CLIENTS)}") from None
    if base_url is not None:
        options["base_url"] = base_url
    return cls(**options)
