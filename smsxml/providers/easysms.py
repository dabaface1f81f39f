"""Client of easysms, net2sms.gr's legacy HTTP API
(``GET https://www.net2sms.gr/srvauth/index?cmd=easysms&action=…``).

Vendor facts it encodes (seed ``easysms-legacy-api.fr.txt``, research/providers.md §2):

* HTTP Basic auth with the account's username and password; no API key;
* ``action=send_sms`` (``mobile_number``, ``text``, ``originator``, ``flash``,
  ``request_delivery``) answers ``return_code|sms_id|balance``, return code 1 = queued;
* ``action=get_balance&balance=true`` answers the number of SMS left;
* ``action=get_status&get_status=true`` answers the changes since the last call as one
  flat ``id|state|id|state|…`` list, states ``s``/``d``/``f`` (or 1/2/3).

Decisions (docs/providers/easysms.md): a refused send's return code is read with the REST
API's error table (:data:`smsxml.providers.net2sms.ERRORS`, same platform); HTTP 401 is
bad credentials; every send asks for a delivery report, or get_status would never mention
it; one recipient per call and no scheduling: the legacy API has neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import ClassVar

import httpx

from smsxml.errors import AuthenticationFailed, OutcomeUnknown, TemporaryFailure
from smsxml.providers.base import (
    DEFAULT_TIMEOUT,
    Balance,
    HttpProvider,
    OutgoingMessage,
    StatusUpdate,
    Submitted,
)
from smsxml.providers.net2sms import STATES, error_for, state_of

__all__ = ["Easysms", "EasysmsSent"]

_PATH = "srvauth/index"


@dataclass(frozen=True)
class EasysmsSent:
    """send_sms queued one message."""

    sms_id: str
    balance: Decimal


class Easysms(HttpProvider):
    """easysms legacy API: username and password, sent as HTTP Basic auth."""

    name: ClassVar[str] = "easysms"
    max_batch: ClassVar[int] = 1  # mobile_number takes one number

    def __init__(
        self,
        base_url: str = "https://www.net2sms.gr/",
        username: str = "",
        password: str = "",
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not (username and password):
            raise ValueError("easysms needs a username and a password")
        super().__init__(
            base_url, timeout=timeout, transport=transport, basic_auth=(username, password)
        )

    # the Provider interface ------------------------------------------------------------

    def send(self, message: OutgoingMessage) -> list[Submitted]:
        """send_sms to the one recipient, with a delivery report requested."""
        if len(message.recipients) != 1:
            raise ValueError("easysms sends to exactly one recipient per call")
        if message.schedule is not None:
            raise ValueError("easysms cannot schedule a message")
        (recipient,) = message.recipients
        sent = self.send_sms(
            recipient, message.text, originator=message.sender or None, flash=message.flash
        )
        return [Submitted(recipient, sent.sms_id)]

    def balance(self) -> Balance:
        """get_balance: the number of SMS left."""
        return Balance(self.get_balance(), "SMS")

    def statuses(self, submitted: Sequence[Submitted]) -> list[StatusUpdate]:
        """Drain get_status: every change, also of messages not in ``submitted``."""
        recipients = {s.provider_id: s.recipient for s in submitted}
        return [
            replace(update, recipient=recipients.get(update.provider_id))
            for update in self.get_status()
        ]

    # the documented calls --------------------------------------------------------------

    def send_sms(
        self,
        mobile_number: str,
        text: str,
        *,
        originator: str | None = None,
        flash: bool = False,
        request_delivery: bool = True,
    ) -> EasysmsSent:
        """action=send_sms: ``1|sms_id|balance`` when queued; another return code raises."""
        params = {"mobile_number": mobile_number, "text": text}
        if originator:
            params["originator"] = originator
        if flash:
            params["flash"] = "true"
        if request_delivery:
            params["request_delivery"] = "true"
        fields = self._call("send_sms", params, idempotent=False).split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            raise _malformed("not return_code|sms_id|balance", idempotent=False)
        code, sms_id, balance = (field.strip() for field in fields)
        if code != "1":
            raise error_for(code, None, provider=self.name)
        if not sms_id.isdigit():
            raise _malformed("sms_id is not a number", idempotent=False)
        return EasysmsSent(sms_id, _decimal(balance, idempotent=False))

    def get_balance(self) -> Decimal:
        """action=get_balance&balance=true: the number of SMS left."""
        return _decimal(self._call("get_balance", {"balance": "true"}).strip())

    def get_status(self) -> list[StatusUpdate]:
        """action=get_status&get_status=true: the changes since the last call (a drain)."""
        body = self._call("get_status", {"get_status": "true"}).strip()
        fields = [field.strip() for field in body.split("|")] if body else []
        if fields and not fields[-1]:
            fields.pop()  # a trailing "|"
        pairs = list(zip(fields[::2], fields[1::2], strict=False))
        if len(fields) % 2 or any(not i.isdigit() or s not in STATES for i, s in pairs):
            raise _malformed("not id|state pairs", idempotent=True)
        return [StatusUpdate(i, state_of(s), detail=s) for i, s in pairs]

    # plumbing ------------------------------------------------------------------------

    def _call(self, action: str, params: dict[str, str], *, idempotent: bool = True) -> str:
        query = {"cmd": "easysms", "action": action, **params}
        response = self.request(
            "GET",
            _PATH,
            idempotent=idempotent,
            params=query,
            accept_status=lambda code: code in (200, 401),
        )
        if response.status_code == 401:
            raise AuthenticationFailed(
                "HTTP Basic authentication refused", provider=self.name, code=401
            )
        try:
            return response.content.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("not UTF-8 text", idempotent=idempotent) from None


def _malformed(why: str, *, idempotent: bool) -> TemporaryFailure:
    cls = TemporaryFailure if idempotent else OutcomeUnknown
    return cls(f"malformed answer: {why}", provider=Easysms.name)


def _decimal(value: str, *, idempotent: bool = True) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _malformed(f"not a number: {value[:40]!r}", idempotent=idempotent) from None
    if not number.is_finite():
        raise _malformed(f"not a number: {value[:40]!r}", idempotent=idempotent)
    return number
