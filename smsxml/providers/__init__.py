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
    HttpProvider,
    OutgoingMessage,
    Provider,
    StatusUpdate,
    Submitted,
    shared_ssl_context,
)
from smsxml.providers.easysms import Easysms
from smsxml.providers.isms import Isms
from smsxml.providers.isms_soap import SoapClient
from smsxml.providers.net2sms import Net2sms
from smsxml.providers.smspartner import SmsPartner
from smsxml.providers.transport import KeepAliveTransport

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
    "SoapClient",
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
    "isms-soap": SoapClient,  # an iSMS-compatible SOAP endpoint: iSMS, or another bridge
    "allmysms": Allmysms,
}


def build(
    kind: str, base_url: str | None = None, *, threaded: bool = False, **options: Any
) -> Provider:
    """A client of provider ``kind`` (see :data:`CLIENTS`) at ``base_url`` (default: the
    vendor's), with the client's own keyword options (credentials…). ``threaded``: many
    threads will call it at once (the dispatcher's senders): an HTTP client then keeps a
    connection per thread (:class:`~smsxml.providers.transport.KeepAliveTransport`)."""
    try:
        cls = CLIENTS[kind]
    except KeyError:
        known = ", ".join(CLIENTS)
        raise ValueError(f"unknown provider kind {kind!r}; known: {known}") from None
    if base_url is not None:
        options["base_url"] = base_url
    if threaded and issubclass(cls, HttpProvider):
        options.setdefault("transport", KeepAliveTransport(shared_ssl_context()))
    return cls(**options)
