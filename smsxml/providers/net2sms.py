"""Client of the net2sms.gr REST SMS API v2 (``https://net2sms.gr/api/``).

Vendor facts it encodes (seed ``net2sms-api-v2.fr.txt``, research/providers.md §1):

* every call is ``GET <base>/<call>?…&type=v2|json|xml``: one answer in three shapes;
* the API key replaces username/password on every call but key/get and key/reset
  (username/password are still accepted everywhere);
* answers say ``status`` "1" (success) or "0" with an ``error`` code and ``remarks``, with
  HTTP 200 either way (:data:`ERRORS`);
* message states are the letters ``s`` sent, ``d`` delivered, ``f`` failed (the legacy
  platform also writes 1/2/3): :data:`STATES`;
* status/get is a drain: each status change is returned once, for any message of the account;
* the balance counts SMS, not money.

Decisions (docs/providers/net2sms.md): answers are read as ``type=json`` (or ``xml``,
bound to :class:`smsxml.generated.net2sms.Response`), never ``v2``, whose failure bodies are
undocumented; sms/bulk and mobile/check are always read as JSON, because the XML schema has
no element for the recipient of each bulk id nor for the number details; sms/bulk is POSTed
as a form (500 recipients make too long a URL); a text GSM-7 cannot carry is sent with
``ucs=true`` even when the message does not ask for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeVar

import httpx

from smsxml import binding
from smsxml.errors import (
    AuthenticationFailed,
    BadInput,
    InsufficientCredit,
    InvalidRecipient,
    InvalidSender,
    OutcomeUnknown,
    PermanentFailure,
    ProviderError,
    TemporaryFailure,
)
from smsxml.generated.net2sms import Response
from smsxml.providers.base import (
    DEFAULT_TIMEOUT,
    Balance,
    HttpProvider,
    OutgoingMessage,
    StatusUpdate,
    Submitted,
)
from smsxml.status import DeliveryState
from smsxml.text import is_gsm7

__all__ = [
    "ERRORS",
    "STATES",
    "BulkSent",
    "Cancelled",
    "MobileInfo",
    "Net2sms",
    "SentSms",
    "SmsReport",
    "error_for",
    "state_of",
]

AnswerFormat = Literal["json", "xml"]
T = TypeVar("T")

#: ``error`` code → (typed error, the vendor's ``remarks``). Success is ``status`` "1" (and
#: ``error`` "0"); every code here is a failure. 106 ("couldn't be sent") is the only one
#: worth retrying later; a code not listed is taken as permanent. 40 (invalid sender) is
#: seen in a single client only: the sandbox uses it, a decision (docs/providers/net2sms.md).
ERRORS: Mapping[str, tuple[type[ProviderError], str]] = MappingProxyType(
    {
        "40": (InvalidSender, "Error: Parameter [from] is invalid"),
        "101": (AuthenticationFailed, "Invalid API key"),
        "102": (InvalidRecipient, "Error: Parameter [to] is missing"),
        "103": (InvalidRecipient, "Error: Parameter [to] cannot be parsed"),
        "104": (PermanentFailure, "Error: Parameter [text] is missing"),
        "105": (InsufficientCredit, "Error: You dont have enough sms"),
        "106": (TemporaryFailure, "Error: Message couldnt be sent"),
        "107": (PermanentFailure, "Error: Parameter smsId is missing"),
        "108": (PermanentFailure, "Error: Parameter smsId cannot be parsed"),
        "109": (PermanentFailure, "Error: Message cannot be found"),
        "110": (PermanentFailure, "Error: Message already delivered or canceled"),
        "111": (PermanentFailure, "Error: Message couldnt be canceled"),
        "201": (InvalidRecipient, "Error: Parameter [mobile] cannot be parsed"),
        "205": (InvalidRecipient, "Error: No [mobile] parameter"),
    }
)

#: the vendor's message states, legacy digits included, in the common vocabulary
STATES: Mapping[str, DeliveryState] = MappingProxyType(
    {
        "s": DeliveryState.PENDING,
        "1": DeliveryState.PENDING,
        "d": DeliveryState.DELIVERED,
        "2": DeliveryState.DELIVERED,
        "f": DeliveryState.FAILED,
        "3": DeliveryState.FAILED,
    }
)

_XML_SCALARS = ("status", "key", "id", "cost", "balance", "mcc", "mnc", "total", "remarks", "error")


def error_for(code: str | None, remarks: str | None, *, provider: str = "net2sms") -> ProviderError:
    """The typed error for a failure answer; its message is the vendor's remarks."""
    cls, known = ERRORS.get(code or "", (PermanentFailure, "unknown error"))
    return cls(remarks or known, provider=provider, code=code or None)


def state_of(letter: str) -> DeliveryState:
    """A vendor state letter in the common vocabulary; a letter we do not know is taken as
    not final (Pending), so that a later report can still settle the message."""
    return STATES.get(letter, DeliveryState.PENDING)


@dataclass(frozen=True)
class SentSms:
    """sms/send accepted one message."""

    id: str
    balance: Decimal | None
    remarks: str


@dataclass(frozen=True)
class BulkSent:
    """sms/bulk: one id per accepted recipient; refused recipients are only counted."""

    submitted: tuple[Submitted, ...]
    accepted: int
    rejected: int
    cost: Decimal | None
    balance: Decimal | None
    remarks: str


@dataclass(frozen=True)
class SmsReport:
    """status/sms: the last report of one message."""

    id: str
    state: DeliveryState
    letter: str
    cost: Decimal | None
    ttd: str | None  # "time to deliver", as the vendor writes it


@dataclass(frozen=True)
class Cancelled:
    """sms/cancel purged a scheduled message; its cost is back on the balance."""

    id: str
    balance: Decimal | None
    remarks: str


@dataclass(frozen=True)
class MobileInfo:
    """mobile/check: what the vendor knows of a number."""

    msisdn: str
    national: str
    country: str
    country_code: int
    gsm_code: str
    number: str
    mcc: str
    mnc: str
    cost: Decimal | None


class Net2sms(HttpProvider):
    """net2sms.gr REST API v2. Give ``key`` (recommended), or ``username`` and ``password``
    (needed anyway for :meth:`get_key` and :meth:`reset_key`).

    ``base_url`` is the host (a sandbox's ``url_for("net2sms")``); calls go to
    ``<base_url>/api/<call>``, and a base_url that already ends in ``/api`` is taken as is.
    """

    name: ClassVar[str] = "net2sms"
    #: recipients per sms/bulk call: the vendor states no limit; 500 keeps a form body small
    max_batch: ClassVar[int] = 500

    def __init__(
        self,
        base_url: str = "https://net2sms.gr/",
        key: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        answer_format: AnswerFormat = "json",
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not key and not (username and password):
            raise ValueError("net2sms needs an API key, or a username and a password")
        if answer_format not in ("json", "xml"):
            raise ValueError("answer_format must be 'json' or 'xml'")
        root = base_url.rstrip("/").removesuffix("/api")
        super().__init__(root + "/api/", timeout=timeout, transport=transport)
        self._key = key
        self._username = username
        self._password = password
        self.answer_format: AnswerFormat = answer_format

    # the Provider interface ------------------------------------------------------------

    def send(self, message: OutgoingMessage) -> list[Submitted]:
        """One recipient: sms/send; several (up to :attr:`max_batch`): one sms/bulk call.

        ``message.dlr_url`` is not used: delivery news comes from the status/get drain."""
        recipients = list(message.recipients)
        if not recipients:
            raise ValueError("a message needs at least one recipient")
        if len(recipients) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} recipients per net2sms call")
        sender, text, flash = message.sender or None, message.text, message.flash
        ucs, when = message.unicode or not is_gsm7(text), message.schedule
        if len(recipients) == 1:
            sent = self.send_sms(
                recipients[0], text, sender=sender, flash=flash, ucs=ucs, timestamp=when
            )
            return [Submitted(recipients[0], sent.id)]
        bulk = self.send_bulk(recipients, text, sender=sender, flash=flash, ucs=ucs, timestamp=when)
        return list(bulk.submitted)

    def balance(self) -> Balance:
        """balance/get: the number of SMS left."""
        return self._call("balance/get", {}, _balance)

    def statuses(self, submitted: Sequence[Submitted]) -> list[StatusUpdate]:
        """Drain status/get. Every change is returned, also of messages not in ``submitted``
        (the drain does not return them twice); known ids get their recipient back."""
        recipients = {s.provider_id: s.recipient for s in submitted}
        return [
            replace(update, recipient=recipients.get(update.provider_id))
            for update in self.status_get()
        ]

    # every documented call -------------------------------------------------------------

    def get_key(self) -> str:
        """key/get: the account's API key (needs username and password)."""
        return self._key_call("key/get")

    def reset_key(self) -> str:
        """key/reset: a new API key, which this client uses from now on; the old one stops
        working."""
        self._key = self._key_call("key/reset")
        return self._key

    def send_sms(
        self,
        to: str,
        text: str,
        *,
        sender: str | None = None,
        flash: bool = False,
        ucs: bool = False,
        timestamp: datetime | int | None = None,
    ) -> SentSms:
        """sms/send to one MSISDN; ``timestamp`` schedules it (a naive datetime is UTC)."""
        params = {"to": to, "text": text} | _options(sender, flash, ucs, timestamp)
        return self._call("sms/send", params, _sent, idempotent=False)

    def send_bulk(
        self,
        recipients: Sequence[str],
        text: str,
        *,
        sender: str | None = None,
        flash: bool = False,
        ucs: bool = False,
        timestamp: datetime | int | None = None,
    ) -> BulkSent:
        """sms/bulk: one text to several MSISDNs, POSTed. The call succeeds when at least one
        is accepted; the others are only counted in ``rejected``."""
        params = {"to": ",".join(recipients), "text": text}
        params |= _options(sender, flash, ucs, timestamp)
        return self._call("sms/bulk", params, _bulk, idempotent=False, post=True, fmt="json")

    def me_balance(self) -> Balance:
        """me/balance, the newer name of balance/get."""
        return self._call("me/balance", {}, _balance)

    def status_get(self) -> list[StatusUpdate]:
        """status/get: every status changed since the previous call (a drain)."""
        return self._call("status/get", {}, _updates)

    def status_sms(self, sms_id: str) -> SmsReport | None:
        """status/sms: the report of one message; None while there is none yet."""
        return self._call("status/sms", {"smsId": sms_id}, _report)

    def cancel(self, sms_id: str) -> Cancelled:
        """sms/cancel: purge a scheduled message that has not gone out yet."""
        return self._call("sms/cancel", {"smsId": sms_id}, _cancelled, idempotent=False)

    def mobile_check(self, mobile: str) -> MobileInfo:
        """mobile/check: country and network of a number (free of charge)."""
        return self._call("mobile/check", {"mobile": mobile}, _mobile, fmt="json")

    # plumbing ------------------------------------------------------------------------

    def _key_call(self, call: Literal["key/get", "key/reset"]) -> str:
        if not (self._username and self._password):
            raise ValueError(f"{call} needs the username and password")
        credentials = {"username": self._username, "password": self._password}
        idempotent = call == "key/get"  # a repeated reset changes the key again
        return self._call(
            call, credentials, lambda a: _required(a, "key"), idempotent=idempotent, auth=False
        )

    def _call(
        self,
        call: str,
        params: Mapping[str, str],
        read: Callable[[dict[str, Any]], T],
        *,
        idempotent: bool = True,
        post: bool = False,
        fmt: AnswerFormat | None = None,
        auth: bool = True,
    ) -> T:
        """One call. The answer, as the JSON object (an XML answer is turned into the same
        shape), goes to ``read``; a failure answer raises its typed error; an unreadable
        one a TemporaryFailure, or for a call that may have acted, an OutcomeUnknown."""
        fmt = fmt or self.answer_format
        values = (self._credentials() if auth else {}) | dict(params) | {"type": fmt}
        response = self.request(
            "POST" if post else "GET",
            call,
            idempotent=idempotent,
            params=None if post else values,
            data=values if post else None,
            accept_status=lambda code: code == 200,
        )
        try:
            answer = _answer(response.content, fmt)
            if answer.get("status") != "1":
                raise error_for(_text(answer.get("error")), _text(answer.get("remarks")))
            return read(answer)
        except _Malformed as error:
            cls = TemporaryFailure if idempotent else OutcomeUnknown
            raise cls(f"malformed answer: {error}", provider=self.name) from None

    def _credentials(self) -> dict[str, str]:
        if self._key:
            return {"key": self._key}
        return {"username": self._username or "", "password": self._password or ""}


class _Malformed(Exception):
    """An answer that does not say what the vendor's answers say."""


def _options(
    sender: str | None, flash: bool, ucs: bool, timestamp: datetime | int | None
) -> dict[str, str]:
    options = {}
    if sender:
        options["from"] = sender
    if flash:
        options["flash"] = "true"
    if ucs:
        options["ucs"] = "true"
    if timestamp is not None:
        options["timestamp"] = str(_epoch(timestamp))
    return options


def _epoch(when: datetime | int) -> int:
    if isinstance(when, int):
        return when
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


# reading answers -----------------------------------------------------------------------


def _answer(content: bytes, fmt: AnswerFormat) -> dict[str, Any]:
    try:
        answer = (
            _xml_answer(binding.from_xml(content, Response))
            if fmt == "xml"
            else json.loads(content)
        )
    except (BadInput, ValueError) as error:
        raise _Malformed(str(error)) from None
    if not isinstance(answer, dict):
        raise _Malformed("not a JSON object")
    return answer


def _xml_answer(response: Response) -> dict[str, Any]:
    """A ``<response>`` in the JSON answer's shape: scalars as strings, ``<sms>`` items under
    "0", "1", … as status/get writes them in JSON."""
    answer: dict[str, Any] = {}
    for name in _XML_SCALARS:
        value = getattr(response, name)
        if value is not None:
            answer[name] = str(value)
    for index, sms in enumerate(response.sms):
        item = {"id": sms.id, "smsId": sms.sms_id, "status": sms.status.value}
        item |= {"cost": sms.cost, "ttd": sms.ttd}
        answer[str(index)] = {k: v for k, v in item.items() if v is not None}
    return answer


def _sent(answer: dict[str, Any]) -> SentSms:
    remarks = str(answer.get("remarks", ""))
    return SentSms(_required(answer, "id"), _decimal(answer.get("balance")), remarks)


def _bulk(answer: dict[str, Any]) -> BulkSent:
    items = answer.get("sms")
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise _Malformed("no sms list")
    submitted = tuple(Submitted(_required(item, "msisdn"), _id(item)) for item in items)
    return BulkSent(
        submitted,
        _integer(answer.get("accepted", len(submitted))),
        _integer(answer.get("rejected", 0)),
        _decimal(answer.get("cost")),
        _decimal(answer.get("balance")),
        str(answer.get("remarks", "")),
    )


def _balance(answer: dict[str, Any]) -> Balance:
    amount = _decimal(answer.get("balance"))
    if amount is None:
        raise _Malformed("no balance")
    return Balance(amount, "SMS")


def _updates(answer: dict[str, Any]) -> list[StatusUpdate]:
    updates = []
    for item in _items(answer):
        letter = _required(item, "status")
        updates.append(StatusUpdate(_id(item), state_of(letter), detail=letter))
    return updates


def _report(answer: dict[str, Any]) -> SmsReport | None:
    items = _items(answer)
    if not items:
        return None  # "Info: No report"
    letter = _required(items[0], "status")
    cost, ttd = _decimal(items[0].get("cost")), items[0].get("ttd")
    return SmsReport(_id(items[0]), state_of(letter), letter, cost, _text(ttd))


def _cancelled(answer: dict[str, Any]) -> Cancelled:
    remarks = str(answer.get("remarks", ""))
    return Cancelled(_id(answer), _decimal(answer.get("balance")), remarks)


def _mobile(answer: dict[str, Any]) -> MobileInfo:
    info = answer.get("mobile")
    if not isinstance(info, dict):
        raise _Malformed("no mobile object")
    return MobileInfo(
        msisdn=_required(info, "msisdn"),
        national=str(info.get("national", "")),
        country=str(info.get("country", "")),
        country_code=_integer(info.get("countryCode", 0)),
        gsm_code=str(info.get("gsmCode", "")),
        number=str(info.get("number", "")),
        mcc=str(info.get("mcc", "")),
        mnc=str(info.get("mnc", "")),
        cost=_decimal(info.get("cost")),
    )


def _items(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The numbered items "0", "1", … of a status answer, in order."""
    items: list[dict[str, Any]] = []
    while isinstance(item := answer.get(str(len(items))), dict):
        items.append(item)
    if "total" in answer and _integer(answer["total"]) != len(items):
        raise _Malformed("total does not match the items")
    return items


def _id(item: Mapping[str, Any]) -> str:
    """A message's id: ``smsId`` where the answer has one, else ``id`` (the same value)."""
    return str(item.get("smsId") or _required(item, "id"))


def _required(answer: Mapping[str, Any], name: str) -> str:
    value = answer.get(name)
    if value in (None, ""):
        raise _Malformed(f"no {name}")
    return str(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _Malformed(f"not a number: {str(value)[:40]!r}") from None
    if not number.is_finite():
        raise _Malformed(f"not a number: {str(value)[:40]!r}")
    return number


def _integer(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise _Malformed(f"not an integer: {str(value)[:40]!r}") from None
