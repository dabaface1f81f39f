"""allmysms.com HTTP API v9 client (https://api.allmysms.com/http/9.0/).

Vendor facts it encodes (seed allmysms-http-api-v9.fr.txt, research/providers.md §5):

- every call is a form POST (GET works too) carrying ``login`` and ``apiKey``; POST keeps
  the key out of URLs, hence out of access logs;
- ``sendSms`` takes one feed, ``smsData``: XML ``<DATA>`` or JSON ``{"DATA": {...}}``,
  one message to many ``<SMS>`` recipients, ``#param_n#`` placeholders filled per
  recipient from ``PARAM_n``;
- its answer's ``status`` is 100 (sent), 101 (scheduled) or an error code 102–118; 113
  is a partial success (the numbers in ``invalidNumbers``, ``|``-separated, are skipped
  and the others sent); ``smsIds`` lists one id per sent SMS, in recipient order;
- acknowledgements: ``statut`` 1 delivered, 2 not delivered, 3 transmitted to the
  operator, 4 message rejected, 5 SMS rejected; the webhook POSTs the same as ``status``.

Decisions (docs/providers/allmysms.md): feeds go out as XML unless ``feed_format="json"``;
send answers are asked for as JSON unless ``answer_format="xml"``; read calls always ask
for JSON (their XML shape is undocumented). An unreadable send answer is
:class:`~smsxml.errors.OutcomeUnknown` (the feed may have gone out); an unreadable read
answer is a plain :class:`~smsxml.errors.ProviderError`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

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
)
from smsxml.feeds import feed_to_json, feed_to_xml
from smsxml.generated.allmysms import Data, Flag, Recipient, Response, SmsId, SmsIds
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
    "ACK_STATES",
    "BASE_URL",
    "PERMANENT",
    "SUCCESS",
    "TEMPORARY",
    "AccountInfo",
    "Ack",
    "Allmysms",
    "CampaignAcks",
    "SendResult",
    "Simulation",
]

log = logging.getLogger(__name__)

BASE_URL = "https://api.allmysms.com/http/9.0/"
#: allmysms is French: DATE in a feed and receptionDate in acks are Paris local time
PARIS = ZoneInfo("Europe/Paris")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

# The send status table, Kannel generic-relay style: success / temporary / permanent.
#: 113 = some numbers refused, the others sent
SUCCESS = frozenset({100, 101, 113})
#: allmysms documents no "try again later" status; outages come as HTTP 5xx
TEMPORARY: frozenset[int] = frozenset()
PERMANENT: Mapping[int, type[PermanentFailure]] = {
    102: AuthenticationFailed,  # no account matches login/apiKey
    103: InsufficientCredit,  # credit exhausted
    104: InsufficientCredit,  # not enough credit for this feed
    105: PermanentFailure,  # empty feed
    106: PermanentFailure,  # invalid feed after <DATA>
    107: InvalidSender,  # invalid feed after <TPOA> (sandbox decision)
    108: PermanentFailure,  # wrong CLIENT code in the feed
    109: PermanentFailure,  # invalid feed after <SMS>
    110: PermanentFailure,  # empty message
    111: PermanentFailure,  # message over 640 characters
    112: PermanentFailure,  # invalid feed after <DYNAMIC>
    114: InvalidRecipient,  # no valid phone number
    115: PermanentFailure,  # bad DATE
    117: PermanentFailure,  # link over 80 characters (TRACKING)
    118: AuthenticationFailed,  # the MASTERACCOUNT does not exist
}

#: acknowledgement ``statut`` → the common vocabulary; no ack yet means Queued
ACK_STATES: Mapping[int, DeliveryState] = {
    1: DeliveryState.DELIVERED,
    2: DeliveryState.FAILED,
    3: DeliveryState.PENDING,
    4: DeliveryState.FAILED,
    5: DeliveryState.FAILED,
}


@dataclass(frozen=True)
class SendResult:
    """What sendSms answered for one feed."""

    status: int
    status_text: str
    campaign_id: str
    submitted: tuple[Submitted, ...]  # one per SMS sent, in recipient order
    invalid_numbers: tuple[str, ...] = ()
    credits: Decimal | None = None  # left on the account
    credits_used: Decimal | None = None
    nb_contacts: int | None = None
    nb_sms: int | None = None

    @property
    def scheduled(self) -> bool:
        return self.status == 101


@dataclass(frozen=True)
class Simulation:
    """What simulateCampaign says a feed would cost; nothing is sent."""

    status: int
    status_text: str
    nb_credits: Decimal
    nb_contacts: int
    nb_sms: int
    invalid_numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccountInfo:
    """getInfo, without the apiKey it echoes."""

    status: str  # e.g. "Active Account"
    credits: Decimal
    last_name: str = ""
    first_name: str = ""
    society: str = ""
    email: str = ""


@dataclass(frozen=True)
class Ack:
    """One delivery acknowledgement; ``statut`` is None while none has come back."""

    phone_number: str
    statut: int | None
    comment: str = ""
    reception_date: datetime | None = None  # Paris local time, naive
    sms_id: str = ""  # known when asked by smsId; getAcks does not say

    @property
    def state(self) -> DeliveryState:
        return DeliveryState.QUEUED if self.statut is None else ACK_STATES[self.statut]


@dataclass(frozen=True)
class CampaignAcks:
    """getAcks: the acknowledgements of one campaign, and its CLIMSGID."""

    acks: tuple[Ack, ...]
    cli_msg_id: str = ""


class Allmysms(HttpProvider):
    """Client of the allmysms HTTP API v9; send/balance/statuses plus every v9 call."""

    name: ClassVar[str] = "allmysms"
    #: recipients per feed; the vendor states no limit, large feeds are split upstream
    max_batch: ClassVar[int] = 1000

    def __init__(
        self,
        base_url: str = BASE_URL,
        *,
        login: str,
        api_key: str,
        feed_format: Literal["xml", "json"] = "xml",
        answer_format: Literal["json", "xml"] = "json",
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if feed_format not in ("xml", "json") or answer_format not in ("xml", "json"):
            raise ValueError("feed_format and answer_format are 'xml' or 'json'")
        super().__init__(base_url, timeout=timeout, transport=transport)
        self._login = login
        self._api_key = api_key
        self.feed_format = feed_format
        self.answer_format = answer_format

    # the Provider interface -----------------------------------------------------------

    def send(self, message: OutgoingMessage) -> list[Submitted]:
        """One feed for all recipients; numbers allmysms refuses (113) get no Submitted.

        ``unicode`` is not sent: allmysms picks the encoding from the text itself.
        ``dlr_url`` is not sent either: the webhook is set in the customer area.
        """
        if len(message.recipients) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} recipients per allmysms feed")
        feed = Data(
            message=message.text,
            tpoa=message.sender or None,
            date=_paris(message.schedule) if message.schedule else None,
            flash=Flag.VALUE_1 if message.flash else None,
            sms=[Recipient(mobilephone=number) for number in message.recipients],
        )
        return list(self.send_feed(feed).submitted)

    def balance(self) -> Balance:
        return Balance(self.get_info().credits, "credits")

    def statuses(self, submitted: Sequence[Submitted]) -> list[StatusUpdate]:
        """getAckBySmsId for each id; ids allmysms does not know are skipped."""
        updates = []
        for item in submitted:
            try:
                ack = self.get_ack_by_sms_id(item.provider_id)
            except PermanentFailure as error:
                if error.code != "KO":
                    raise
                log.debug("allmysms does not know smsId %s: %s", item.provider_id, error.text)
                continue
            updates.append(
                StatusUpdate(
                    item.provider_id,
                    ack.state,
                    ack.phone_number or item.recipient,
                    f"{ack.statut} {ack.comment}".strip() if ack.statut else "",
                )
            )
        return updates

    # the v9 calls ---------------------------------------------------------------------

    def send_feed(self, feed: Data) -> SendResult:
        """sendSms with a feed built from the generated classes."""
        answer = self._feed_call("sendSms/", feed, idempotent=False)
        return SendResult(
            status=answer.status,
            status_text=answer.status_text,
            campaign_id=answer.campaign_id or "",
            submitted=tuple(
                Submitted(entry.phone_number, entry.sms_id)
                for entry in (answer.sms_ids.sms if answer.sms_ids else [])
            ),
            invalid_numbers=_split_numbers(answer.invalid_numbers),
            credits=_decimal(answer.credits if answer.credits is not None else answer.balance),
            credits_used=_decimal(answer.credits_used),
            nb_contacts=_int(answer.nb_contacts),
            nb_sms=_int(answer.nb_sms),
        )

    def simulate_campaign(self, feed: Data) -> Simulation:
        """simulateCampaign: the cost of ``feed``, refused like sendSms would refuse it."""
        answer = self._feed_call("simulateCampaign/", feed, idempotent=True)
        return Simulation(
            status=answer.status,
            status_text=answer.status_text,
            nb_credits=_decimal(answer.nb_credits) or Decimal(0),
            nb_contacts=_int(answer.nb_contacts) or 0,
            nb_sms=_int(answer.nb_sms) or 0,
            invalid_numbers=_split_numbers(answer.invalid_numbers),
        )

    def get_info(self, sub_account: str | None = None) -> AccountInfo:
        """getInfo: the account (or a sub-account) and its credits."""
        data = self._read("getInfo/", subAccount=sub_account)
        return AccountInfo(
            status=str(data.get("status", "")),
            credits=_decimal(data.get("credits")) or Decimal(0),
            last_name=str(data.get("lastName") or ""),
            first_name=str(data.get("firstName") or ""),
            society=str(data.get("society") or ""),
            email=str(data.get("email") or ""),
        )

    def get_acks(self, campaign_id: str) -> CampaignAcks:
        """getAcks: the acknowledgements received so far for a campaign."""
        data = self._read("getAcks/", campId=campaign_id)
        acks = data.get("acks") or []
        if not isinstance(acks, list):
            raise ProviderError("malformed getAcks answer", provider=self.name)
        return CampaignAcks(
            tuple(self._ack(entry) for entry in acks), str(data.get("cliMsgId") or "")
        )

    def get_ack_by_sms_id(self, sms_id: str) -> Ack:
        """getAckBySmsId: the acknowledgement of one SMS (statut None: none yet)."""
        return self._ack(self._read("getAckBySmsId/", smsId=sms_id), sms_id)

    def delete_campaign(self, campaign_id: str) -> None:
        """deleteCampaign: cancel a scheduled campaign (its credits come back)."""
        self._read("deleteCampaign/", campId=campaign_id)

    @classmethod
    def parse_delivery_report(cls, fields: Mapping[str, Any]) -> StatusUpdate:
        """The webhook's form fields (smsId, status, statusText, phoneNumber,
        receptionDate, campaignId) as a StatusUpdate; BadInput if they make no sense."""
        sms_id = str(fields.get("smsId") or "")
        status = _int(fields.get("status"))
        state = ACK_STATES.get(status) if status is not None else None
        if not sms_id or state is None:
            raise BadInput(f"not an allmysms acknowledgement: smsId={sms_id!r} status={status!r}")
        text = str(fields.get("statusText") or "")
        return StatusUpdate(
            sms_id,
            state,
            str(fields.get("phoneNumber") or "") or None,
            f"{status} {text}".strip(),
        )

    # plumbing -------------------------------------------------------------------------

    def _credentials(self) -> dict[str, str]:
        return {"login": self._login, "apiKey": self._api_key}

    def _feed_call(self, path: str, feed: Data, *, idempotent: bool) -> Response:
        sms_data = (
            feed_to_xml(feed).decode("utf-8")
            if self.feed_format == "xml"
            else feed_to_json(feed, indent=None)
        )
        form = {**self._credentials(), "smsData": sms_data}
        if self.answer_format == "json":
            form["returnformat"] = "json"
        response = self.request("POST", path, idempotent=idempotent, data=form)
        try:
            answer = (
                _response_from_json(response.content)
                if self.answer_format == "json"
                else binding.from_xml(response.content, Response)
            )
        except (BadInput, ValueError, TypeError, KeyError) as error:
            # The request arrived and something came back that we cannot read: for a send
            # the SMS may be out, which only OutcomeUnknown says.
            cls = ProviderError if idempotent else OutcomeUnknown
            raise cls(f"unreadable answer ({type(error).__name__})", provider=self.name) from None
        self._raise_for(answer.status, answer.status_text)
        return answer

    def _raise_for(self, status: int, text: str) -> None:
        if status in SUCCESS:
            return
        cls = PERMANENT.get(status, PermanentFailure)  # an unknown code: the API refused
        raise cls(text, provider=self.name, code=status)

    def _read(self, path: str, **params: str | None) -> dict[str, Any]:
        form = {**self._credentials(), "returnformat": "json"}
        form.update({k: v for k, v in params.items() if v is not None})
        response = self.request("POST", path, idempotent=True, data=form)
        try:
            data = json.loads(response.content)
        except ValueError:
            raise ProviderError("unreadable answer (not JSON)", provider=self.name) from None
        if not isinstance(data, dict):
            raise ProviderError("unreadable answer (not a JSON object)", provider=self.name)
        status = data.get("status")
        text = str(data.get("statusText") or "")
        if status == "KO":
            raise PermanentFailure(text or "refused", provider=self.name, code="KO")
        code = _int(status)
        if code is not None:  # the send table's codes, 102 for bad credentials
            self._raise_for(code, text)
        return data

    def _ack(self, data: Mapping[str, Any], sms_id: str = "") -> Ack:
        statut = _int(data.get("statut"))
        if statut is not None and statut not in ACK_STATES:
            raise ProviderError(f"unknown acknowledgement statut {statut}", provider=self.name)
        date = str(data.get("receptionDate") or "")
        try:
            reception = datetime.strptime(date, DATE_FORMAT) if date else None
        except ValueError:
            reception = None
        return Ack(
            str(data.get("phoneNumber") or ""),
            statut,
            str(data.get("comment") or ""),
            reception,
            sms_id,
        )


# answers ------------------------------------------------------------------------------

#: JSON answer keys → fields of the generated Response (the XML answer's class)
_JSON_FIELDS = {
    "statusText": "status_text",
    "invalidNumbers": "invalid_numbers",
    "campaignId": "campaign_id",
    "credits": "credits",
    "creditsUsed": "credits_used",
    "nbCredits": "nb_credits",
    "nbContacts": "nb_contacts",
    "nbSms": "nb_sms",
    "balance": "balance",
}


def _response_from_json(content: bytes) -> Response:
    """A JSON send answer as the same generated class the XML answer binds to."""
    data = json.loads(content)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    values = {
        field: str(data[key]) for key, field in _JSON_FIELDS.items() if data.get(key) is not None
    }
    ids = data.get("smsIds")
    sms_ids = (
        SmsIds(sms=[SmsId(phone_number=str(e["phoneNumber"]), sms_id=str(e["smsId"])) for e in ids])
        if isinstance(ids, list)
        else None
    )
    return Response(
        status=int(data["status"]),
        status_text=values.pop("status_text", ""),
        sms_ids=sms_ids,
        **values,
    )


def _split_numbers(value: str | None) -> tuple[str, ...]:
    return tuple(number for number in (value or "").split("|") if number)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _paris(moment: datetime) -> str:
    """A DATE value: Paris local time. Naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(PARIS).strftime(DATE_FORMAT)
