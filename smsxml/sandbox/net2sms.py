"""Sandboxes of net2sms.gr: the REST API v2 (:class:`Net2smsApp`, ``/api/<call>``) and its
legacy sibling easysms (:class:`EasysmsApp`, ``/srvauth/index?cmd=easysms``).

Both answer like the vendor pages write it (seeds ``net2sms-api-v2.fr.txt`` and
``easysms-legacy-api.fr.txt``) and like the SDKs of the same platform read it
(research/providers.md §1–2). Each has its own accounts (``sandbox.accounts["net2sms"]``,
``["easysms"]``) and messages. Both take GET, and POST forms (url-encoded or multipart, as
PHP's curl sends an array), and ignore unknown parameters. Where the sources are silent:
docs/providers/net2sms.md and docs/providers/easysms.md.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import phonenumbers
from phonenumbers import geocoder
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response as HttpResponse

from smsxml import binding
from smsxml.generated.net2sms import MessageState, Response, SmsStatus
from smsxml.numbers import InvalidNumber, normalize
from smsxml.providers.net2sms import ERRORS
from smsxml.sandbox.core import Account, Sandbox, SandboxMessage
from smsxml.status import DeliveryState
from smsxml.text import Encoding, count_parts, encoding_for, split

__all__ = ["DEFAULT_SENDER", "LETTERS", "Net2smsApp", "Refused"]

Params = MultiDict[str, str]

#: the common states in the vendor's letters; Queued is not reported (nothing happened yet)
LETTERS = {
    DeliveryState.PENDING: "s",
    DeliveryState.DELIVERED: "d",
    DeliveryState.FAILED: "f",
}
#: the sender when ``from``/``originator`` is left out (the account's default, a decision)
DEFAULT_SENDER = "net2sms"
#: mobile/check's MCC by country calling code; a simulator cannot know the network (MNC)
_MCC = {30: "202", 357: "280", 33: "208", 49: "262", 44: "234", 39: "222", 34: "214", 1: "310"}
_SENDER = re.compile(r"\d{1,16}|(?=.*[A-Za-z])[A-Za-z0-9 .&_-]{1,11}")
_TRUE = frozenset({"true", "1", "yes", "on"})


class Refused(Exception):
    """A failure answer with a vendor error code (:data:`smsxml.providers.net2sms.ERRORS`)."""

    def __init__(self, code: str, account: Account | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.account = account


@dataclass
class _Answer:
    """One answer in its three shapes: the JSON object (vendor key order), the v2 text, and
    the ``<sms>`` items of the XML form (the JSON object carries them its own way)."""

    fields: dict[str, Any]
    v2: str
    sms: list[dict[str, str]] = field(default_factory=list)
    xml_fields: dict[str, Any] | None = None  # when the XML form differs beyond <sms>

    def render(self, answer_type: str) -> HttpResponse:
        if answer_type == "json":
            body = json.dumps(self.fields, ensure_ascii=False, separators=(",", ":"))
            return HttpResponse(body, content_type="application/json; charset=utf-8")
        if answer_type == "xml":
            return HttpResponse(binding.to_xml(self._xml()), content_type="application/xml")
        return HttpResponse(self.v2, content_type="text/plain; charset=utf-8")

    def _xml(self) -> Response:
        fields = self.fields if self.xml_fields is None else self.xml_fields
        scalars = {
            name: fields[name]
            for name in ("status", "key", "id", "cost", "balance", "mcc", "mnc", "remarks", "error")
            if isinstance(fields.get(name), str)
        }
        total = fields.get("total")
        items = [
            SmsStatus(
                id=item["id"],
                sms_id=item.get("smsId"),
                status=MessageState(item["status"]),
                cost=item.get("cost"),
                ttd=item.get("ttd"),
            )
            for item in self.sms
        ]
        return Response(**scalars, total=None if total is None else int(total), sms=items)


def amount(value: Decimal) -> str:
    """A balance as the vendor writes it: ``1234``, never ``1234.00``."""
    return str(int(value)) if value == value.to_integral_value() else str(value.normalize())


def msisdn(raw: str) -> str | None:
    """The MSISDN in ``raw`` (``+`` or ``00`` allowed; a Greek mobile ``69…`` without the
    country code is read as +30, as the platform's SDKs send it), or None."""
    digits = raw.strip().removeprefix("+")
    if digits.startswith("00"):
        digits = digits[2:]
    if len(digits) == 10 and digits.startswith("69"):
        digits = "30" + digits
    ok = digits.isascii() and digits.isdigit() and 7 <= len(digits) <= 15
    return digits if ok and not digits.startswith("0") else None


def sender_ok(sender: str) -> bool:
    """Alphanumeric up to 11 characters, or up to 16 digits."""
    return _SENDER.fullmatch(sender) is not None


def flag(value: str | None) -> bool:
    """Whether a flag is set: ``true`` (any case; the page says 'True'), ``1``, ``yes``, ``on``."""
    return (value or "").strip().lower() in _TRUE


def parts_of(text: str, ucs: bool) -> int:
    """SMS parts billed: UCS-2 when asked or when GSM-7 cannot carry the text."""
    return split(text, Encoding.UCS2).parts if ucs else count_parts(text)


def params_of(request: Request) -> Params:
    return CombinedMultiDict([request.args, request.form])


class Net2smsApp:
    """``/api/<call>``: key/get, key/reset, sms/send, sms/bulk, sms/cancel, balance/get,
    me/balance, status/get, status/sms, mobile/check; ``type`` = v2 (default), json, xml."""

    provider = "net2sms"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.calls: dict[str, Callable[[Params], _Answer]] = {
            "key/get": self.key_get,
            "key/reset": self.key_reset,
            "sms/send": self.sms_send,
            "sms/bulk": self.sms_bulk,
            "sms/cancel": self.sms_cancel,
            "balance/get": self.balance_get,
            "me/balance": self.me_balance,
            "status/get": self.status_get,
            "status/sms": self.status_sms,
            "mobile/check": self.mobile_check,
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        call = request.path.strip("/").removeprefix("api/")
        handler = self.calls.get(call)
        if handler is None or not request.path.startswith("/api/"):
            return HttpResponse("Not Found", 404)(environ, start_response)
        params = params_of(request)
        try:
            answer = handler(params)
        except Refused as refused:
            answer = self._failure(call, refused)
        return answer.render(params.get("type", "v2"))(environ, start_response)

    # authentication ------------------------------------------------------------------

    def _account(self, params: Params, *, key_allowed: bool = True) -> Account:
        """The key wins; username/password are accepted on every call (and the only way
        for key/get and key/reset)."""
        key = params.get("key") if key_allowed else None
        if key:
            account = self.sandbox.by_key(self.provider, key)
        else:
            username, password = params.get("username"), params.get("password")
            account = self.sandbox.login(self.provider, username, password)
        if account is None:
            raise Refused("101")
        return account

    def _failure(self, call: str, refused: Refused) -> _Answer:
        """Failure bodies keep the call's shape with zeros (as the SDK fixtures show)."""
        remarks = ERRORS[refused.code][1]
        balance = amount(refused.account.credits) if refused.account else "0"
        head: dict[str, Any] = {"status": "0"}
        if call == "sms/send":
            head |= {"id": "0", "cost": "0", "balance": balance, "mcc": "", "mnc": ""}
        elif call == "sms/bulk":
            head |= {"id": ["0"], "sms": [], "balance": balance, "cost": "0"}
            head |= {"accepted": "0", "rejected": "0"}
        elif call == "sms/cancel":
            head |= {"id": "0", "smsId": "0", "balance": balance}
        return _Answer(head | {"remarks": remarks, "error": refused.code}, remarks)

    # calls ---------------------------------------------------------------------------

    def key_get(self, params: Params) -> _Answer:
        account = self._account(params, key_allowed=False)
        return self._key_answer(account.api_key)

    def key_reset(self, params: Params) -> _Answer:
        account = self._account(params, key_allowed=False)
        with self.sandbox.lock:
            account.api_key = f"{self.sandbox.random.getrandbits(56):014x}"
        return self._key_answer(account.api_key)

    @staticmethod
    def _key_answer(key: str) -> _Answer:
        return _Answer({"status": "1", "key": key, "remarks": "Success"}, key)

    def sms_send(self, params: Params) -> _Answer:
        account = self._account(params)
        to = params.get("to", "").strip()
        if not to:
            raise Refused("102", account)
        recipient = msisdn(to)
        if recipient is None:
            raise Refused("103", account)
        (message,) = self._submit(account, params, [recipient])
        fields = {"status": "1", "id": message.id, "balance": amount(account.credits)}
        return _Answer(fields | {"remarks": "Success"}, message.id)

    def sms_bulk(self, params: Params) -> _Answer:
        account = self._account(params)
        given = [n for raw in params.getlist("to") for n in raw.split(",")]
        given = [n.strip() for n in given + params.getlist("to[]") if n.strip()]
        if not given:
            raise Refused("102", account)
        recipients = [r for r in map(msisdn, given) if r is not None]
        if not recipients:
            raise Refused("103", account)
        messages = self._submit(account, params, recipients)
        rejected = len(given) - len(messages)
        remarks = "Success"
        if rejected:
            remarks += (
                f": Accepted for delivery: {len(messages)}, Not accepted for delivery: {rejected}"
            )
        items = [{"id": m.id, "smsId": m.id, "msisdn": m.recipient} for m in messages]
        fields = {
            "status": "1",
            "id": [m.id for m in messages],
            "sms": items,
            "balance": amount(account.credits),
            "cost": amount(sum((m.cost for m in messages), Decimal(0))),
            "accepted": str(len(messages)),
            "rejected": str(rejected),
            "remarks": remarks,
            "error": "0",
        }
        v2 = "|\n".join(f"{m.id}|{m.recipient}" for m in messages)
        xml_items = [{"id": m.id, "smsId": m.id, "status": "s"} for m in messages]
        return _Answer(fields, v2, xml_items)

    def _submit(
        self, account: Account, params: Params, recipients: list[str]
    ) -> list[SandboxMessage]:
        """Check text, sender and time; charge every part of every message; store them."""
        text = params.get("text", "")
        if not text:
            raise Refused("104", account)
        sender = params.get("from", "").strip() or DEFAULT_SENDER
        if not sender_ok(sender):
            raise Refused("40", account)
        now = time.time()
        try:
            send_at = max(now, float(params.get("timestamp") or now))
        except ValueError:
            raise Refused("106", account) from None
        ucs = flag(params.get("ucs"))
        parts = parts_of(text, ucs)
        if not self.sandbox.charge(account, Decimal(parts * len(recipients))):
            raise Refused("105", account)
        return [
            self.sandbox.add(
                SandboxMessage(
                    provider=self.provider,
                    id=self.sandbox.new_id("digits"),
                    username=account.username,
                    sender=sender,
                    recipient=recipient,
                    text=text,
                    parts=parts,
                    cost=Decimal(parts),
                    unicode=ucs or encoding_for(text) is Encoding.UCS2,
                    flash=flag(params.get("flash")),
                    send_at=send_at,
                )
            )
            for recipient in recipients
        ]

    def balance_get(self, params: Params) -> _Answer:
        balance = amount(self._account(params).credits)
        return _Answer({"status": "1", "balance": balance, "remarks": "Success"}, balance)

    def me_balance(self, params: Params) -> _Answer:
        """The newer name of balance/get; its SDK fixture also carries ``error``."""
        answer = self.balance_get(params)
        answer.fields["error"] = "0"
        return answer

    def status_get(self, params: Params) -> _Answer:
        account = self._account(params)
        items = [
            {"id": message.id, "status": LETTERS[state]}
            for message, state in self.sandbox.drain(self.provider, account.username)
        ]
        fields: dict[str, Any] = {str(i): item for i, item in enumerate(items)}
        fields |= {"status": "1", "total": str(len(items))}
        fields["remarks"] = "Success" if items else "Info: No pending reports"
        v2 = "|\n".join(f"{item['id']}|{item['status']}" for item in items)
        return _Answer(fields, v2, items)

    def _message(self, account: Account, params: Params) -> SandboxMessage:
        sms_id = params.get("smsId", "").strip()
        if not sms_id:
            raise Refused("107", account)
        if not sms_id.isdigit():
            raise Refused("108", account)
        found = [
            m for m in self.sandbox.find(self.provider, sms_id) if m.username == account.username
        ]
        if not found:
            raise Refused("109", account)
        return found[0]

    def status_sms(self, params: Params) -> _Answer:
        account = self._account(params)
        message = self._message(account, params)
        state = self.sandbox.state(message)
        if state is DeliveryState.QUEUED:
            return _Answer({"status": "1", "remarks": "Info: No report", "error": "0"}, "")
        ttd = int(self.sandbox.config.schedule.final_after) if state.final else 0
        item = {"id": message.id, "smsId": message.id, "status": LETTERS[state]}
        item |= {"cost": amount(message.cost), "ttd": str(ttd)}
        fields = {"0": item, "sms": item, "status": "1", "remarks": "Success", "error": "0"}
        return _Answer(fields, f"{message.id}|{item['status']}", [item])

    def sms_cancel(self, params: Params) -> _Answer:
        account = self._account(params)
        message = self._message(account, params)
        with self.sandbox.lock:
            if message.cancelled or self.sandbox.state(message).final:
                raise Refused("110", account)
            if message.send_at <= time.time():
                raise Refused("111", account)
            self.sandbox.cancel(message)
            account.credits += message.cost
        fields = {"status": "1", "id": message.id, "smsId": message.id}
        fields |= {"balance": amount(account.credits), "remarks": "Success: Message purged"}
        return _Answer(fields | {"error": "0"}, message.id)

    def mobile_check(self, params: Params) -> _Answer:
        """Free and open to all (no key): the number's country from phonenumbers."""
        raw = params.get("mobile", "").strip()
        if not raw:
            raise Refused("205")
        try:
            full = normalize(raw, "GR")
        except InvalidNumber:
            raise Refused("201") from None
        number = phonenumbers.parse("+" + full)
        national = full[len(str(number.country_code)) :]
        mcc = _MCC.get(number.country_code or 0, "")
        mobile = {
            "msisdn": full,
            "national": national,
            "country": geocoder.country_name_for_number(number, "en").upper(),
            "countryCode": number.country_code,
            "gsmCode": national[:3],
            "number": national[3:],
            "mcc": mcc,
            "mnc": "",
            "cost": 1,
        }
        fields = {"status": "1", "remarks": "Success", "error": "0", "total": 1, "mobile": mobile}
        # <response> has no element for the number's details: only what fits is written
        xml = {"status": "1", "cost": "1", "mcc": mcc, "mnc": "", "total": 1}
        xml |= {"remarks": "Success", "error": "0"}
        return _Answer(fields, full, xml_fields=xml)
