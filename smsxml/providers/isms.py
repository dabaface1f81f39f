"""Client of the iSMS.gr HTTP API (``http://cp.isms.gr/api/http/<call>.php``).

Vendor facts it encodes (seed ``isms-api.el.txt``, research/providers.md §4): every call is a
GET with ``username`` and ``password``; answers are one plain-text line — ``Credits:3948.47``,
``ID:I7I5R4HTAA``, ``Status: Delivered``, ``OK`` — or a documented ``Error: …`` line; one
message id covers every recipient of a send (comma-separated ``to``) and is queried per
(``mid``, ``mobile``); ``schedule`` is read by PHP's ``strtotime``.

Decisions (``docs/providers/isms.md``): refusals come with HTTP 200, as PHP scripts print
them; :data:`ANSWERS` is the Kannel-style table of what each line means; an error's
``code`` is the line without ``Error:`` — exactly the fault string of iSMS's SOAP API — and
its ``text`` the whole line. A line matching no shape is a malformed answer:
:class:`OutcomeUnknown` for a send (the SMS may be out), :class:`TemporaryFailure` for a
read. ``max_batch`` is 250 so that a send fits a GET request line of 8 KB. Text that GSM-7
cannot carry goes out with ``coding=UTF-8``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

import httpx

from smsxml.errors import (
    AuthenticationFailed,
    BadInput,
    InsufficientCredit,
    InvalidRecipient,
    InvalidSender,
    OutcomeUnknown,
    PermanentFailure,
    TemporaryFailure,
)
from smsxml.providers.base import (
    DEFAULT_TIMEOUT,
    Balance,
    HttpProvider,
    OutgoingMessage,
    StatusUpdate,
    Submitted,
)
from smsxml.schedule import ATHENS
from smsxml.status import DeliveryState
from smsxml.text import is_gsm7

__all__ = ["ANSWERS", "DEFAULT_BASE_URL", "HlrResult", "HlrStatus", "Isms"]

#: the vendor's documented host (plain HTTP, as its page writes every example)
DEFAULT_BASE_URL = "http://cp.isms.gr/"

#: Every documented refusal and the error it raises. Nothing iSMS says is temporary:
#: outages show as HTTP 5xx, which :class:`HttpProvider` maps to TemporaryFailure.
ANSWERS: Mapping[str, type[PermanentFailure]] = MappingProxyType(
    {
        "Error: Authentication error.": AuthenticationFailed,
        "Error: No recipients.": InvalidRecipient,
        "Error: Invalid sender identity.": InvalidSender,
        "Error: Insufficient credits.": InsufficientCredit,
        "Error: Invalid scheduling date.": PermanentFailure,
        "Error: No message ID defined.": PermanentFailure,
        "Error: No mobile defined.": PermanentFailure,
        "Error: No such message or recipient.": PermanentFailure,
        "Error: No such message ID or mobile.": PermanentFailure,
        "Error: Mobile number is empty.": InvalidRecipient,
        "Error: Invalid mobile number.": InvalidRecipient,
        "FAILED": PermanentFailure,  # contacts: the page gives no reason
    }
)
#: an undocumented ``Error: <printable text>`` is a refusal too (permanent, like the rest)
_OTHER_ERROR = re.compile(r"Error: [^\x00-\x1f\x7f]+")
_ID = re.compile(r"ID:\s*([A-Za-z0-9]+)")
_CREDITS = re.compile(r"Credits:\s*(-?[0-9]+(?:\.[0-9]+)?)")
_STATUS = re.compile(r"Status:\s*(Queued|Pending|Delivered|Failed)")
#: the page prints the contacts' success as Greek capitals "ΟΚ" (a keyboard slip): take both
_OK = ("OK", "\u039f\u039a")


class HlrStatus(StrEnum):
    """hlrquery.php's words: Queued/Pending while the lookup runs, then one of the others."""

    QUEUED = "Queued"
    PENDING = "Pending"
    FAILED = "Failed"
    DELIVERED = "Delivered"  # the number is live on a network
    UNDELIVERED = "Undelivered"  # known but unreachable (absent, barred, unknown subscriber)
    UNKNOWN = "Unknown"


_HLR_WORDS = frozenset(status.value for status in HlrStatus)


@dataclass(frozen=True)
class HlrResult:
    """One number's HLR lookup: the status alone until it is final, then every field."""

    status: HlrStatus
    country: str = ""
    operator: str = ""
    imsi: str = ""
    serving_msc: str = ""
    error_code: str = ""

    @property
    def final(self) -> bool:
        return self.status not in (HlrStatus.QUEUED, HlrStatus.PENDING)


class Isms(HttpProvider):
    """iSMS.gr over HTTP: send, credits, query, HLR lookups and contacts."""

    name = "isms"
    #: 250 MSISDNs of 12–15 digits, comma-encoded, take ~4 KB: half of the 8 KB request line
    #: common servers accept, the rest left for the text
    max_batch = 250
    status_call_per_message = True  # query.php asks about one recipient of one message

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        username: str = "",
        password: str = "",
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, timeout=timeout, transport=transport)
        self._username = username
        self._password = password

    # the Provider interface -----------------------------------------------------------

    def send(self, message: OutgoingMessage) -> list[Submitted]:
        """One send.php call for every recipient; they share the message id."""
        if len(message.recipients) > self.max_batch:
            raise ValueError(f"{len(message.recipients)} recipients, at most {self.max_batch}")
        unicode = message.unicode or not is_gsm7(message.text)
        message_id = self.submit(
            message.sender,
            message.recipients,
            message.text,
            coding="UTF-8" if unicode else "GSM",
            flash=message.flash,
            schedule=message.schedule,
            dlr_url=message.dlr_url,
        )
        return [Submitted(recipient, message_id) for recipient in message.recipients]

    def balance(self) -> Balance:
        return Balance(self.credits(), "credits")

    def statuses(self, submitted: Sequence[Submitted]) -> list[StatusUpdate]:
        """One query.php call per (message id, recipient).

        "No such message or recipient." means iSMS never took that recipient (we assume it
        drops invalid numbers from a send, as the sandbox does): reported as Failed, with
        that line as the detail.
        """
        updates = []
        for item in submitted:
            try:
                state = self.query(item.provider_id, item.recipient)
            except PermanentFailure as error:
                if error.text != "Error: No such message or recipient.":
                    raise
                updates.append(
                    StatusUpdate(item.provider_id, DeliveryState.FAILED, item.recipient, error.text)
                )
            else:
                updates.append(StatusUpdate(item.provider_id, state, item.recipient, state.value))
        return updates

    # every documented call ---------------------------------------------------------------

    def submit(
        self,
        sender: str,
        recipients: Sequence[str],
        text: str,
        *,
        coding: Literal["GSM", "UTF-8"] = "GSM",
        flash: bool = False,
        schedule: str | datetime | None = None,
        dlr_url: str | None = None,
    ) -> str:
        """send.php; the message id. ``schedule``: a datetime (sent as Athens wall-clock
        time) or any ``strtotime`` text, passed as is (``"+1 day"``, ``"next Thursday"``)."""
        params: dict[str, str] = {
            "from": sender,
            "to": ",".join(recipients),
            "message": text,
            "coding": coding,
            "flash": "1" if flash else "0",
        }
        if schedule is not None:
            params["schedule"] = schedule if isinstance(schedule, str) else _wall_clock(schedule)
        if dlr_url:
            params["dlr-url"] = dlr_url
        return self._match(_ID, self._call("send.php", params, idempotent=False), sending=True)

    def credits(self) -> Decimal:
        """credits.php: the account's credits (decimal, e.g. 3948.47)."""
        return Decimal(self._match(_CREDITS, self._call("credits.php", {}, idempotent=True)))

    def query(self, message_id: str, mobile: str) -> DeliveryState:
        """query.php: where message ``message_id`` stands for recipient ``mobile``."""
        line = self._call("query.php", {"mid": message_id, "mobile": mobile}, idempotent=True)
        return DeliveryState(self._match(_STATUS, line))

    def hlr(self, mobiles: Sequence[str]) -> str:
        """hlr.php: start a lookup of ``mobiles`` (charged, so never retried); its id."""
        line = self._call("hlr.php", {"mobiles": ",".join(mobiles)}, idempotent=False)
        return self._match(_ID, line, sending=True)

    def hlr_query(self, lookup_id: str, mobile: str) -> HlrResult:
        """hlrquery.php: the lookup's status for ``mobile``, with its details once final."""
        line = self._call("hlrquery.php", {"mid": lookup_id, "mobile": mobile}, idempotent=True)
        fields = line.split(";")
        if len(fields) not in (1, 6) or fields[0] not in _HLR_WORDS:
            raise self._malformed(line, sending=False)
        result = HlrResult(HlrStatus(fields[0]), *fields[1:])
        if result.final != (len(fields) == 6):
            raise self._malformed(line, sending=False)
        return result

    def save_contact(
        self, mobile: str, *, surname: str = "", name: str = "", comments: str = ""
    ) -> None:
        """savecontact.php: add the contact, or update the one with that mobile."""
        params = {"surname": surname, "name": name, "mobile": mobile, "comments": comments}
        self._expect_ok(self._call("savecontact.php", params, idempotent=True))

    def delete_contact(self, mobile: str) -> None:
        """deletecontact.php. Not retried: a repeat of a delete that worked says FAILED."""
        self._expect_ok(self._call("deletecontact.php", {"mobile": mobile}, idempotent=False))

    @staticmethod
    def parse_delivery_report(fields: Mapping[str, Any]) -> StatusUpdate:
        """The form iSMS POSTs to ``dlr-url``: ``mid``, ``mobile``, ``status`` (a query.php
        word), ``timestamp``. Lists (parse_qs output) are read by their first value."""

        def field(name: str) -> str:
            value = fields.get(name)
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            if value is None or not str(value).strip():
                raise BadInput(f"iSMS delivery report without {name!r}")
            return str(value).strip()

        status = field("status")
        states = {state.value.lower(): state for state in DeliveryState}
        if status.lower() not in states:
            raise BadInput(f"iSMS delivery report with unknown status {status[:40]!r}")
        return StatusUpdate(field("mid"), states[status.lower()], field("mobile"), status)

    # answers ---------------------------------------------------------------------------

    def _call(self, script: str, params: Mapping[str, str], *, idempotent: bool) -> str:
        """The answer line of ``script``, or the typed error of a documented refusal."""
        response = self.request(
            "GET",
            f"api/http/{script}",
            idempotent=idempotent,
            params={"username": self._username, "password": self._password, **params},
            accept_status=lambda status: status < 400,
        )
        line = response.text.strip()
        error = ANSWERS.get(line)
        if error is None and _OTHER_ERROR.fullmatch(line):
            error = PermanentFailure
        if error is not None:
            raise error(line, provider=self.name, code=line.removeprefix("Error: "))
        return line

    def _match(self, pattern: re.Pattern[str], line: str, *, sending: bool = False) -> str:
        match = pattern.fullmatch(line)
        if match is None:
            raise self._malformed(line, sending=sending)
        return match.group(1)

    def _expect_ok(self, line: str) -> None:
        if line not in _OK:
            raise self._malformed(line, sending=False)

    def _malformed(self, line: str, *, sending: bool) -> TemporaryFailure:
        """A line of no known shape: a proxy's garbage, or a changed API. After a charged
        call the outcome is unknown; a read can simply be repeated later."""
        cls = OutcomeUnknown if sending else TemporaryFailure
        return cls(f"malformed answer {line[:60]!r}", provider=self.name, code="malformed")


def _wall_clock(moment: datetime) -> str:
    """``moment`` as iSMS's ``strtotime`` reads it: Athens time; naive means Athens already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(ATHENS)
    return moment.strftime("%Y-%m-%d %H:%M:%S")
