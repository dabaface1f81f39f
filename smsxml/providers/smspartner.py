"""Client of the SMS Partner API v1 (``https://api.smspartner.fr/v1``).

Vendor facts it encodes (seed ``smspartner-vn-send.fr.txt``, research/providers.md §3):

* POST calls take a JSON body, GET calls a query string; ``apiKey`` is always a parameter;
* ``/send`` takes ``phoneNumbers`` (comma list, at most 500, ``+`` international) and a
  ``sender`` of 3–11 characters; ``/vn/send`` sends from a virtual (long) number ``from``;
  ``/bulk-send`` takes ``SMSList`` [{phoneNumber, message}] and answers per number;
* one ``message_id`` covers every recipient of a send: a status is asked by message id AND
  phone number (``/message-status``, ``/multi-status`` up to 500 pairs);
* answers say ``success`` and ``code`` (200 = success, :data:`ERRORS` otherwise), errors
  come with HTTP 4xx; code 9 lists the fields that failed in ``errors`` (``error`` in
  some SDKs); ``_format=xml`` gives the same values as positional ``<entry>`` elements;
* states are ``Waiting``, ``Delivered``, ``Not delivered`` (:data:`STATES`), under the
  French key ``statut`` in /message-status and ``status`` in /multi-status;
* /me counts credits as SMS of each range and as money (``solde``, EUR).

Decisions (docs/providers/smspartner.md): :meth:`SmsPartner.send` uses ``/send``, or
``/vn/send`` when the sender is one of the client's ``virtual_numbers``; the bulk, /me and
multi-status answers are always read as JSON (their XML nests unnamed entries); a schedule
is sent in Paris time, rounded up to the next 5 minutes; an unreadable answer to a send or
a cancel is :class:`OutcomeUnknown` (it may have acted), to a read a
:class:`TemporaryFailure`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeVar, cast
from zoneinfo import ZoneInfo

import httpx

from smsxml import binding, xmlsafe
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
from smsxml.generated.smspartner import Entry, Result
from smsxml.providers.base import (
    DEFAULT_TIMEOUT,
    Balance,
    HttpProvider,
    OutgoingMessage,
    StatusUpdate,
    Submitted,
)
from smsxml.status import DeliveryState

__all__ = [
    "BASE_URL",
    "ERRORS",
    "FIELD_ERRORS",
    "PARIS",
    "STATES",
    "AccountInfo",
    "BulkItem",
    "BulkSent",
    "MessageStatus",
    "SendResult",
    "SmsPartner",
    "StatusItem",
    "error_for",
]

BASE_URL = "https://api.smspartner.fr/v1"
PARIS = ZoneInfo("Europe/Paris")
AnswerFormat = Literal["json", "xml"]
T = TypeVar("T")

#: ``code`` → (typed error, vendor meaning). 200 is success. 22 and 23 (marketing SMS
#: outside 8h–22h, on Sundays or holidays) are the only codes a later retry can cure; a
#: code not listed is taken as permanent. Code 9 is refined by :data:`FIELD_ERRORS`.
ERRORS: Mapping[int, tuple[type[ProviderError], str]] = MappingProxyType(
    {
        1: (AuthenticationFailed, "API key required"),
        2: (InvalidRecipient, "phone number required"),
        3: (PermanentFailure, "message id required"),
        4: (PermanentFailure, "message not found"),
        9: (PermanentFailure, "constraint violated"),
        10: (AuthenticationFailed, "incorrect API key"),
        11: (InsufficientCredit, "insufficient credit"),
        13: (InvalidRecipient, "no default price for these numbers"),
        14: (InvalidRecipient, "number in the STOP list"),
        15: (PermanentFailure, "number already in the list"),
        20: (AuthenticationFailed, "account deactivated"),
        22: (TemporaryFailure, "marketing SMS only between 8h and 22h"),
        23: (TemporaryFailure, "no marketing SMS on Sundays and holidays"),
        30: (AuthenticationFailed, "account blocked"),
    }
)
#: the field of a code-9 ``elementId`` (``children[sender].data``) → a sharper error
FIELD_ERRORS: Mapping[str, type[ProviderError]] = MappingProxyType(
    {
        "sender": InvalidSender,
        "from": InvalidSender,
        "phoneNumbers": InvalidRecipient,
        "phoneNumber": InvalidRecipient,
        "to": InvalidRecipient,
    }
)
#: the vendor's delivery words; Waiting covers queued and in-flight messages
STATES: Mapping[str, DeliveryState] = MappingProxyType(
    {
        "waiting": DeliveryState.PENDING,
        "delivered": DeliveryState.DELIVERED,
        "not delivered": DeliveryState.FAILED,
    }
)
_FIELD = re.compile(r"children\[([^\]]+)\]")
# positional XML entries, in the JSON answer's key order
_SEND_KEYS = (
    "success",
    "code",
    "message_id",
    "nb_sms",
    "cost",
    "currency",
    "scheduledDeliveryDate",
)
_STATUS_KEYS = (
    *("success", "code", "number", "messageId", "stopSms"),
    *("date", "statut", "cost", "countryCode", "currency"),
)
_CANCEL_KEYS = ("success", "code", "message")


@dataclass(frozen=True)
class SendResult:
    """A /send or /vn/send answer: one id for every recipient of the call."""

    message_id: str
    nb_sms: int  # SMS parts billed, all recipients together
    cost: Decimal
    currency: str
    scheduled: str | None = None  # "2018-08-18 20:00:00", Paris time


@dataclass(frozen=True)
class BulkItem:
    """One line of a /bulk-send answer."""

    phone_number: str
    success: bool
    code: int
    nb_sms: int = 0
    cost: Decimal = Decimal(0)
    text: str = ""  # why the line failed


@dataclass(frozen=True)
class BulkSent:
    message_id: str
    nb_sms: int
    cost: Decimal
    currency: str
    items: tuple[BulkItem, ...]


@dataclass(frozen=True)
class AccountInfo:
    """/me: the user and what is left, in SMS of each range and in money (``solde``)."""

    username: str
    credit_sms: int
    credit_sms_eco: int
    credit_hlr: int
    to_send: int
    solde: Decimal
    currency: str


@dataclass(frozen=True)
class MessageStatus:
    """/message-status: one message for one number."""

    message_id: str
    number: str
    statut: str  # the vendor's word
    state: DeliveryState
    date: str
    cost: Decimal
    currency: str
    country_code: str
    stop_sms: bool


@dataclass(frozen=True)
class StatusItem:
    """One line of /multi-status; ``state`` is None when the provider found no such SMS."""

    message_id: str
    phone_number: str
    status: str  # the vendor's word, or its "not found" text
    state: DeliveryState | None
    date: str = ""


def error_for(answer: Mapping[str, Any]) -> ProviderError:
    """The typed error for a failed answer, its text built from the answer alone."""
    code = _int(answer.get("code"), -1)
    cls = ERRORS.get(code, (PermanentFailure, ""))[0]
    problems = answer.get("errors", answer.get("error"))
    texts = []
    if isinstance(problems, list):
        for problem in problems:
            if not isinstance(problem, Mapping):
                continue
            field = _FIELD.search(str(problem.get("elementId", "")))
            if cls is PermanentFailure and field and field.group(1) in FIELD_ERRORS:
                cls = FIELD_ERRORS[field.group(1)]
            texts.append(str(problem.get("message", "")))
    elif problems:
        texts.append(str(problems))
    text = str(answer.get("message") or "; ".join(texts) or ERRORS.get(code, (None, "error"))[1])
    return cls(text, provider=SmsPartner.name, code=code)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _money(value: Any) -> Decimal:
    return Decimal(str(value))  # InvalidOperation (an ArithmeticError) if it is no amount


def _msisdn(number: str) -> str:
    """An answer's number as an MSISDN: "+33612…" and French "0612…" → "33612…"."""
    digits = re.sub(r"[\s.\-]", "", str(number)).lstrip("+")
    if digits.startswith("00"):
        return digits[2:]
    if len(digits) == 10 and digits.startswith("0"):
        return "33" + digits[1:]
    return digits


def _state(word: str) -> DeliveryState:
    try:
        return STATES[word.strip().lower()]
    except KeyError:
        raise BadInput(f"smspartner: unknown delivery status {word!r}") from None


def _schedule(when: datetime) -> dict[str, Any]:
    """``scheduledDeliveryDate``/``time``/``minute`` in Paris time; the API takes minutes in
    steps of 5, so round up: a message may leave a little late, never early. A naive
    datetime is UTC."""
    local = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(PARIS)
    if local.second or local.microsecond or local.minute % 5:
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=5 - local.minute % 5)
    return {
        "scheduledDeliveryDate": f"{local:%d/%m/%Y}",
        "time": local.hour,
        "minute": local.minute,
    }


def _entry_value(entry: Entry) -> str | list[Any]:
    """One positional value: an entry's text (blanks around CDATA dropped), or, when it
    holds entries, the list of their values — a JSON object or list one level down, as
    the code-9 ``errors`` list of ``[elementId, message]`` pairs."""
    if not all(isinstance(part, str | Entry) for part in entry.content):
        raise BadInput("smspartner: an <entry> holds an element other than <entry>")
    nested = [part for part in entry.content if isinstance(part, Entry)]
    text = "".join(part for part in entry.content if isinstance(part, str)).strip()
    if nested and text:
        raise BadInput("smspartner: an <entry> holds both text and entries")
    return [_entry_value(part) for part in nested] if nested else text


class SmsPartner(HttpProvider):
    """SMS Partner: one id per send, status per (id, number), JSON or positional XML."""

    name: ClassVar[str] = "smspartner"
    max_batch: ClassVar[int] = 500

    def __init__(
        self,
        base_url: str = BASE_URL,
        api_key: str = "",
        *,
        virtual_numbers: Iterable[str] = (),
        gamme: int = 1,
        answer_format: AnswerFormat = "json",
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        super().__init__(base_url, timeout=timeout, transport=transport)
        self._api_key = api_key
        self.virtual_numbers = frozenset(_msisdn(n) for n in virtual_numbers)
        self.gamme = gamme  # 1 Premium, 2 Low Cost
        self.answer_format = answer_format

    # the common interface ---------------------------------------------------------------

    def send(self, message: OutgoingMessage) -> list[Submitted]:
        """One /send (or /vn/send from a virtual number) for up to 500 recipients.

        The vendor validates the whole call: one bad number refuses it all. ``flash`` has no
        SMS Partner equivalent and is ignored.
        """
        if len(message.recipients) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} recipients per send")
        options: dict[str, Any] = {
            "unicode": message.unicode,
            "scheduled": message.schedule,
            "url_dlr": message.dlr_url,
        }
        if _msisdn(message.sender) in self.virtual_numbers:
            sent = self.vn_send(message.recipients, message.sender, message.text, **options)
        else:
            sender = message.sender or None
            sent = self.send_sms(message.recipients, message.text, sender=sender, **options)
        return [Submitted(recipient, sent.message_id) for recipient in message.recipients]

    def balance(self) -> Balance:
        """The account's money (``solde``), which every range's SMS count derives from."""
        info = self.me()
        return Balance(info.solde, info.currency)

    def statuses(self, submitted: Sequence[Submitted]) -> list[StatusUpdate]:
        """/multi-status by (id, number), 500 pairs a call; SMS it cannot find are left out."""
        updates = []
        for start in range(0, len(submitted), self.max_batch):
            batch = submitted[start : start + self.max_batch]
            for item in self.multi_status([(s.provider_id, s.recipient) for s in batch]):
                if item.state is not None:
                    updates.append(
                        StatusUpdate(item.message_id, item.state, item.phone_number, item.status)
                    )
        return updates

    @staticmethod
    def parse_delivery_report(fields: Mapping[str, Any]) -> StatusUpdate:
        """A ``urlDlr`` callback (JSON): ``messageId``, ``phoneNumber``, ``status``, ``date``,
        ``cost``. Its payload is undocumented: ``statut``/``number``/``message_id`` are taken
        too, the spellings of the vendor's other answers."""
        message_id = fields.get("messageId", fields.get("message_id"))
        number = fields.get("phoneNumber", fields.get("number", fields.get("phone_number")))
        word = fields.get("status", fields.get("statut"))
        if message_id in (None, "") or word is None:
            raise BadInput("smspartner: delivery report without messageId or status")
        recipient = _msisdn(str(number)) if number else None
        return StatusUpdate(str(message_id), _state(str(word)), recipient, str(word))

    # every documented call --------------------------------------------------------------

    def send_sms(
        self,
        phone_numbers: Sequence[str],
        message: str,
        *,
        sender: str | None = None,
        gamme: int | None = None,
        tag: str | None = None,
        scheduled: datetime | None = None,
        stop_sms: bool = False,
        unicode: bool = False,
        url_response: str | None = None,
        url_dlr: str | None = None,
        sandbox: bool = False,
    ) -> SendResult:
        """POST /send: ``message`` to up to 500 MSISDNs (sent as ``+`` international)."""
        body: dict[str, Any] = {
            "phoneNumbers": ",".join("+" + _msisdn(n) for n in phone_numbers),
            "message": message,
            "gamme": gamme or self.gamme,
        }
        body.update(_options(sender=sender, tag=tag, urlResponse=url_response, urlDlr=url_dlr))
        body.update(_flags(isStopSms=stop_sms, isUnicode=unicode, sandbox=sandbox))
        if scheduled is not None:
            body.update(_schedule(scheduled))
        return self._call("POST", "send", body, _sent, acts=True, keys=_SEND_KEYS)

    def vn_send(
        self,
        to: Sequence[str],
        from_: str,
        message: str,
        *,
        tag: str | None = None,
        scheduled: datetime | None = None,
        stop_sms: bool = False,
        unicode: bool = False,
        url_response: str | None = None,
        url_dlr: str | None = None,
        sandbox: bool = False,
    ) -> SendResult:
        """POST /vn/send: from the virtual number ``from_`` (``336xxxxxxxx``). The page says
        it sends "now or later" but lists no schedule nor Unicode field: /send's are used."""
        body: dict[str, Any] = {
            "to": ",".join(_msisdn(n) for n in to),
            "from": _msisdn(from_),
            "message": message,
        }
        body.update(_options(tag=tag, urlResponse=url_response, urlDlr=url_dlr))
        body.update(_flags(isStopSms=stop_sms, isUnicode=unicode, sandbox=sandbox))
        if scheduled is not None:
            body.update(_schedule(scheduled))
        return self._call("POST", "vn/send", body, _sent, acts=True, keys=_SEND_KEYS)

    def bulk_send(
        self,
        messages: Sequence[tuple[str, str]],
        *,
        sender: str | None = None,
        gamme: int | None = None,
        scheduled: datetime | None = None,
        stop_sms: bool = False,
        unicode: bool = False,
        sandbox: bool = False,
    ) -> BulkSent:
        """POST /bulk-send: up to 500 (number, text) pairs, one answer line per number."""
        body: dict[str, Any] = {
            "SMSList": [{"phoneNumber": "+" + _msisdn(n), "message": t} for n, t in messages],
            "gamme": gamme or self.gamme,
        }
        body.update(_options(sender=sender))
        body.update(_flags(isStopSms=stop_sms, isUnicode=unicode, sandbox=sandbox))
        if scheduled is not None:
            body.update(_schedule(scheduled))
        return self._call("POST", "bulk-send", body, _bulk_sent, acts=True, fmt="json")

    def me(self) -> AccountInfo:
        """GET /me: the account and its credits (always read as JSON)."""
        return self._call("GET", "me", {}, _account_info, fmt="json")

    def message_status(self, message_id: str, phone_number: str) -> MessageStatus:
        """GET /message-status of one message for one number."""
        params = {"messageId": message_id, "phoneNumber": "+" + _msisdn(phone_number)}
        return self._call("GET", "message-status", params, _message_status, keys=_STATUS_KEYS)

    def multi_status(self, pairs: Sequence[tuple[str, str]]) -> list[StatusItem]:
        """POST /multi-status for up to 500 (message id, number) pairs (read as JSON)."""
        body = {
            "SMSStatut_List": [
                {"phoneNumber": "+" + _msisdn(number), "messageId": _id(message_id)}
                for message_id, number in pairs
            ]
        }
        return self._call("POST", "multi-status", body, _status_items, fmt="json")

    def message_cancel(self, message_id: str) -> str:
        """GET /message-cancel of a scheduled send (refused less than 5 minutes before it);
        returns the vendor's confirmation text. Not retried: a repeat would be refused."""
        fields = {"messageId": message_id}
        return self._call(
            "GET",
            "message-cancel",
            fields,
            lambda a: str(a["message"]),
            acts=True,
            keys=_CANCEL_KEYS,
        )

    # plumbing ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        fields: Mapping[str, Any],
        read: Callable[[dict[str, Any]], T],
        *,
        acts: bool = False,
        fmt: AnswerFormat | None = None,
        keys: Sequence[str] = (),
    ) -> T:
        """One call: ``read`` turns a successful answer into the result, a failed answer
        raises its typed error, and an answer neither can make sense of is "malformed"."""
        fmt = fmt or self.answer_format
        payload: dict[str, Any] = {"apiKey": self._api_key, **fields}
        if fmt == "xml":
            payload["_format"] = "xml"
        if method == "GET":
            response = self.request(method, path, idempotent=not acts, params=payload)
        else:
            response = self.request(method, path, idempotent=not acts, json=payload)
        try:
            answer = _decode(response.content, fmt, keys)
            if answer["success"] in (True, "true") and _int(answer.get("code"), 200) == 200:
                return read(answer)
            error = error_for(answer)
        except (BadInput, LookupError, TypeError, ValueError, ArithmeticError, AttributeError):
            # a send or a cancel may have acted: never retry it blindly; a read may be
            cls = OutcomeUnknown if acts else TemporaryFailure
            why = f"unreadable answer (HTTP {response.status_code})"
            raise cls(why, provider=self.name, code="malformed") from None
        raise error


def _sent(answer: Mapping[str, Any]) -> SendResult:
    return SendResult(
        message_id=str(answer["message_id"]),
        nb_sms=_int(answer.get("nb_sms")),
        cost=_money(answer.get("cost", 0)),
        currency=str(answer.get("currency", "")),
        scheduled=answer.get("scheduledDeliveryDate") or None,
    )


def _bulk_sent(answer: Mapping[str, Any]) -> BulkSent:
    items = tuple(
        BulkItem(
            phone_number=_msisdn(item.get("phoneNumber", "")),
            success=item.get("success") is True,
            code=_int(item.get("code")),
            nb_sms=_int(item.get("nbSms")),
            cost=_money(item.get("cost", 0)),
            text=str(item.get("message", "")),
        )
        for item in answer.get("SMSResponse_List", [])
    )
    return BulkSent(
        str(answer["message_id"]),
        _int(answer.get("nbSMS")),
        _money(answer.get("cost", 0)),
        str(answer.get("currency", "")),
        items,
    )


def _account_info(answer: Mapping[str, Any]) -> AccountInfo:
    credits, user = answer["credits"], answer.get("user", {})
    return AccountInfo(
        username=str(user.get("username", "")),
        credit_sms=_int(credits.get("creditSms")),
        credit_sms_eco=_int(credits.get("creditSmsECO", credits.get("creditSmsLowCost"))),
        credit_hlr=_int(credits.get("creditHlr")),
        to_send=_int(credits.get("toSend")),
        solde=_money(credits.get("solde", credits.get("balance"))),
        currency=str(credits.get("currency", "EUR")),
    )


def _message_status(answer: Mapping[str, Any]) -> MessageStatus:
    statut = str(answer["statut"])
    return MessageStatus(
        message_id=str(answer.get("messageId", "")),
        number=str(answer.get("number", "")),
        statut=statut,
        state=_state(statut),
        date=str(answer.get("date", "")),
        cost=_money(answer.get("cost", 0)),
        currency=str(answer.get("currency", "")),
        country_code=str(answer.get("countryCode", "")),
        stop_sms=answer.get("stopSms") in (True, "true", "1", 1),
    )


def _status_items(answer: Mapping[str, Any]) -> list[StatusItem]:
    return [
        StatusItem(
            message_id=str(item.get("messageId", "")),
            phone_number=_msisdn(item.get("phoneNumber", "")),
            status=str(item.get("status", "")),
            state=_state(str(item.get("status", ""))) if item.get("success") is True else None,
            date=str(item.get("date", "")),
        )
        for item in answer.get("StatutResponse_List", [])
    ]


def _decode(content: bytes, fmt: AnswerFormat, keys: Sequence[str]) -> dict[str, Any]:
    """The answer as a dict; XML positions are named by ``keys`` (errors by their own)."""
    if fmt == "json":
        answer = json.loads(content, parse_float=Decimal)
        if not isinstance(answer, dict):
            raise BadInput("smspartner: the answer is not a JSON object")
        return answer
    root = xmlsafe.parse(content)
    if root.tag != "result":
        tag = cast(str, root.tag)  # parsed: a str tag (types-lxml allows bytes, QName)
        raise BadInput(f"smspartner: unexpected XML root <{tag}>")
    values = [_entry_value(entry) for entry in binding.bind(root, Result).entry]
    if values and values[0] == "false":
        detail = values[2] if len(values) > 2 else ""
        if isinstance(detail, list):  # code 9: [[elementId, message], …]
            errors = [dict(zip(("elementId", "message"), e, strict=False)) for e in detail]
            return {"success": False, "code": values[1], "errors": errors}
        return {"success": False, "code": values[1], "message": detail}
    return dict(zip(keys, values, strict=False))


def _options(**values: str | None) -> dict[str, str]:
    return {name: value for name, value in values.items() if value}


def _flags(**values: bool) -> dict[str, int]:
    return {name: 1 for name, value in values.items() if value}


def _id(message_id: str) -> int | str:
    """Message ids are integers in the vendor's requests and answers."""
    return int(message_id) if str(message_id).isdigit() else message_id
