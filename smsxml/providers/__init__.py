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
    pooled_transport,
)
from smsxml.providers.easysms import Easysms
from smsxml.providers.isms import Isms
from smsxml.providers.net2sms import Net2sms
from smsxml.providers.smspartner import SmsPartner

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

#: provider kind → client class ("isms-soap", smsxml.soap.SoapClient, joins on first use)
CLIENTS: dict[str, type[Provider]] = {
    "net2sms": Net2sms,
    "easysms": Easysms,
    "smspartner": SmsPartner,
    "isms": Isms,
    "allmysms": Allmysms,
}


def build(
    kind: str, base_url: str | None = None, *, connections: int | None = None, **options: Any
) -> Provider:
    """A client of provider ``kind`` (see :data:`CLIENTS`) at ``base_url`` (default: the
    vendor's), with the client's own keyword options (credentials…); ``connections``
    sizes an HTTP client's keep-alive pool (one per call in flight)."""
    if kind == "isms-soap" and kind not in CLIENTS:
        # smsxml.soap is itself a Provider (it imports this package): registered on
        # first use, not at import, so that either module can be imported first
        from smsxml.soap import SoapClient

        CLIENTS[kind] = SoapClient
    try:
        cls = CLIENTS[kind]
    except KeyError:
        known = ", ".join([*CLIENTS, "isms-soap"] if "isms-soap" not in CLIENTS else CLIENTS)
        raise ValueError(f"unknown provider kind {kind!r}; known: {known}") from None
    if base_url is not None:
        options["base_url"] = base_url
    if connections is not None and issubclass(cls, HttpProvider):
        options.setdefault("transport", pooled_transport(connections))
    return cls(**options)
