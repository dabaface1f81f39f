"""SMS Partner sandbox: ``/v1/send``, ``/v1/vn/send``, ``/v1/bulk-send``, ``/v1/me``,
``/v1/message-status``, ``/v1/multi-status`` and ``/v1/message-cancel``, answering like
api.smspartner.fr (research/providers.md §3).

Parameters are read from the query string and from the body, JSON whatever its
Content-Type (the vendor's own Python sample POSTs JSON without one, its PHP sample
labels it a form) or a form. Errors are
HTTP 4xx with a JSON (or XML) body. Money: the account's credits are euros, the ``solde``;
every SMS part costs the range's price, and /me derives the SMS counts from the solde.
Decisions where the vendor is silent: docs/providers/smspartner.md.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from lxml import etree
from werkzeug.wrappers import Request, Response

from smsxml.numbers import InvalidNumber, country_of, normalize
from smsxml.sandbox.core import Account, Sandbox, SandboxMessage
from smsxml.status import DeliveryState
from smsxml.text import Encoding, count_parts, is_gsm7, split

__all__ = ["PRICES", "PartnerState", "SmsPartnerApp", "partner_state"]

PROVIDER = "smspartner"
PARIS = ZoneInfo("Europe/Paris")
#: EUR per SMS part, by ``gamme``; 0.038 and 0.023 are the vendor samples' ratios of solde
#: to creditSms and creditSmsECO, and an HLR lookup costs 0.005
PRICES = {1: Decimal("0.038"), 2: Decimal("0.023")}
HLR_PRICE = Decimal("0.005")
SHORTCODE = "36034"  # the sender when none is given: a placeholder "36xxx" shortcode
STOP_MENTION = "\nSTOP au " + SHORTCODE
MAX_NUMBERS = 500
CANCEL_NOTICE = 300.0  # seconds: no cancel less than 5 minutes before the send
WORDS = {
    DeliveryState.QUEUED: "Waiting",
    DeliveryState.PENDING: "Waiting",
    DeliveryState.DELIVERED: "Delivered",
    DeliveryState.FAILED: "Not delivered",
}
#: code → (HTTP status, text); 10 and 11 are the vendor's words, the others ours
ERRORS = {
    1: (401, "La clé API est requise"),
    2: (400, "Le numéro de téléphone est requis"),
    3: (400, "L'identifiant du message est requis"),
    4: (404, "Message introuvable"),
    9: (400, ""),
    10: (401, "Clé API incorrecte"),
    11: (402, "Manque de crédits"),
    14: (400, "Numéro dans la liste STOP"),
    20: (403, "Compte désactivé"),
    30: (403, "Compte bloqué"),
}
_SENDER = re.compile(r"[A-Za-z0-9 ]*")
_Handler = Callable[[Account, dict[str, Any]], dict[str, Any]]
_Problems = list[tuple[str, str]]  # (field, message) of a code-9 answer


class ApiError(Exception):
    """An error answer: ``code`` with the vendor's ``message``, or code 9 with ``errors``."""

    def __init__(self, code: int, errors: Iterable[tuple[str, str]] = (), text: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.errors = [{"elementId": f"children[{f}].data", "message": m} for f, m in errors]
        self.text = text or ERRORS[code][1]

    def answer(self) -> dict[str, Any]:
        if self.errors:
            return {"success": False, "code": self.code, "errors": self.errors}
        return {"success": False, "code": self.code, "message": self.text}


@dataclass
class PartnerState:
    """What SMS Partner keeps beyond the shared accounts: its STOP list, and the usernames
    of deactivated (code 20) and blocked (code 30) accounts. Tests change it directly."""

    stop_list: set[str] = field(default_factory=set)  # MSISDNs
    deactivated: set[str] = field(default_factory=set)
    blocked: set[str] = field(default_factory=set)


_STATES: WeakKeyDictionary[Sandbox, PartnerState] = WeakKeyDictionary()


def partner_state(sandbox: Sandbox) -> PartnerState:
    """The SMS Partner state of ``sandbox`` (created on first use)."""
    with sandbox.lock:
        return _STATES.setdefault(sandbox, PartnerState())


def render(values: Mapping[str, Any], fmt: str) -> bytes:
    """Compact JSON with non-ASCII escaped (``\\u00e0`` in the vendor SDK's fixture), or the
    positional XML of the vendor page: single-quoted declaration, strings in CDATA, nested values as
    nested ``<entry>`` lists. Built with lxml, not the generated class: xsdata cannot write
    CDATA, and these are the vendor's documented bytes."""
    if fmt != "xml":
        return json.dumps(values, separators=(",", ":")).encode("ascii")
    root = etree.Element("result")
    _fill(root, values)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _fill(parent: etree._Element, values: Mapping[str, Any] | list[Any]) -> None:
    for value in values.values() if isinstance(values, Mapping) else values:
        entry = etree.SubElement(parent, "entry")
        if isinstance(value, Mapping | list):
            _fill(entry, value)
        elif isinstance(value, bool):
            entry.text = "true" if value else "false"
        elif isinstance(value, str):
            entry.text = etree.CDATA(value) if "]]>" not in value else value
        else:
            entry.text = str(value)


def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = request.args.to_dict()
    body = request.get_data()
    if not body.strip():
        return params
    # PHP's curl labels a JSON string in CURLOPT_POSTFIELDS as a form (the vendor's own
    # PHP sample does that): a body that opens like a JSON object is read as JSON
    looks_like_json = body.lstrip()[:1] == b"{"
    if request.mimetype == "application/x-www-form-urlencoded" and not looks_like_json:
        params.update(parse_qsl(body.decode("utf-8", "replace")))
        return params
    try:
        data = json.loads(body)
    except ValueError:
        raise ApiError(9, [("data", "Le JSON de la requête est invalide")]) from None
    if isinstance(data, dict):
        params.update(data)
    return params


def _text(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None or value is False:
        return ""
    return "1" if value is True else str(value).strip()


def _flag(params: Mapping[str, Any], name: str) -> bool:
    return _text(params, name).lower() in ("1", "true", "yes", "on")


def _number(raw: str) -> str | None:
    """An MSISDN for a number as clients write it (+intl, 00intl, French 06…), or None."""
    try:
        return normalize(raw, "FR")
    except (InvalidNumber, ValueError):
        return None


def _parts(text: str, unicode: bool) -> int:
    """SMS parts billed: ``:br:`` is a line break worth 2 characters; without isUnicode the
    characters GSM-7 lacks are replaced (one each), with it the text is UCS-2 (70/67)."""
    text = text.replace(":br:", "\r\n")
    if unicode:
        return split(text, Encoding.UCS2).parts
    return count_parts("".join(c if is_gsm7(c) else "?" for c in text))


def _local(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, PARIS).strftime("%Y-%m-%d %H:%M:%S")


def _money(amount: Decimal) -> float:
    return float(amount.quantize(Decimal("0.001")))


def _schedule(params: Mapping[str, Any], problems: _Problems) -> tuple[float, str | None]:
    """Send time (epoch) and the answer's ``scheduledDeliveryDate``, from the Paris-time
    ``scheduledDeliveryDate`` (dd/mm/YYYY), ``time`` (0–24) and ``minute`` (0–55 by 5)."""
    now, day = time.time(), _text(params, "scheduledDeliveryDate")
    hour, minute = _text(params, "time"), _text(params, "minute")
    if not day:
        return now, None
    if not minute:
        problems.append(("minute", "La minute est requise"))
    if not hour:
        problems.append(("time", "L'heure est requise"))
    if not hour or not minute:
        return now, None
    try:
        date = datetime.strptime(day, "%d/%m/%Y")
    except ValueError:
        problems.append(("scheduledDeliveryDate", f"La date ({day}) n'est pas valide"))
        return now, None
    if not (hour.isdigit() and int(hour) <= 24):
        problems.append(("time", "L'heure doit etre comprise entre 0 et 24"))
    elif not (minute.isdigit() and int(minute) <= 55 and int(minute) % 5 == 0):
        problems.append(("minute", "La minute doit etre un multiple de 5 entre 0 et 55"))
    else:
        when = (date + timedelta(hours=int(hour), minutes=int(minute))).replace(tzinfo=PARIS)
        if when.timestamp() > now:
            return when.timestamp(), f"{when:%Y-%m-%d %H:%M:%S}"
        late = f"La date ({day} à {hour}:{minute}) est anterieure a la date actuelle."
        problems.append(("scheduledDeliveryDate", late))
    return now, None


@dataclass(frozen=True)
class _Order:
    """What every send reads the same way: text, range and price, schedule, options."""

    text: str
    price: Decimal
    send_at: float
    scheduled: str | None
    unicode: bool
    stop: bool
    test_mode: bool  # sandbox=1: nothing sent, nothing charged
    dlr_url: str | None
    tag: str

    @classmethod
    def read(cls, params: Mapping[str, Any], problems: _Problems) -> _Order:
        gamme = _text(params, "gamme") or _text(params, "range") or "1"
        if gamme not in ("1", "2"):
            problems.append(("gamme", "La gamme doit etre 1 (Premium) ou 2 (Low Cost)"))
        tag = _text(params, "tag")
        if len(tag) > 20:
            problems.append(("tag", "Le tag ne peut pas depasser 20 caracteres"))
        send_at, scheduled = _schedule(params, problems)
        stop = _flag(params, "isStopSms")
        text = _text(params, "message")
        return cls(
            text=text + STOP_MENTION if text and stop else text,
            price=PRICES[2 if gamme == "2" else 1],
            send_at=send_at,
            scheduled=scheduled,
            unicode=_flag(params, "isUnicode"),
            stop=stop,
            test_mode=_flag(params, "sandbox"),
            dlr_url=_text(params, "urlDlr") or None,
            tag=tag,
        )

    def with_stop(self, text: str) -> str:
        return text + STOP_MENTION if text and self.stop else text

    def parts(self, text: str) -> int:
        return _parts(text, self.unicode)

    def scheduled_entry(self) -> dict[str, Any]:
        return {"scheduledDeliveryDate": self.scheduled} if self.scheduled else {}


class SmsPartnerApp:
    """The WSGI application behind ``/smspartner``; state lives in the shared Sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.state = partner_state(sandbox)
        sandbox.callbacks[PROVIDER] = self.delivery_report
        self.routes: dict[str, tuple[tuple[str, ...], _Handler]] = {
            "/v1/send": (("POST",), self.send),
            "/v1/vn/send": (("POST",), self.vn_send),
            "/v1/bulk-send": (("POST",), self.bulk_send),
            "/v1/me": (("GET", "POST"), self.me),
            "/v1/message-status": (("GET", "POST"), self.message_status),
            "/v1/multi-status": (("POST", "GET"), self.multi_status),
            "/v1/message-cancel": (("GET", "POST"), self.message_cancel),
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        route = self.routes.get(request.path.rstrip("/"))
        if route is None or request.method not in route[0]:
            status = 404 if route is None else 405
            body = {
                "success": False,
                "code": status,
                "message": "Not Found" if route is None else "Method Not Allowed",
            }
            return Response(render(body, "json"), status, mimetype="application/json")(
                environ, start_response
            )
        fmt, status = "json", 200
        try:
            params = _params(request)
            fmt = "xml" if _text(params, "_format").lower() == "xml" else "json"
            answer = route[1](self._account(params), params)
        except ApiError as error:
            answer, status = error.answer(), ERRORS[error.code][0]
        mimetype = "text/xml" if fmt == "xml" else "application/json"
        return Response(render(answer, fmt), status, mimetype=mimetype)(environ, start_response)

    def _account(self, params: Mapping[str, Any]) -> Account:
        key = _text(params, "apiKey")
        if not key:
            raise ApiError(1)
        account = self.sandbox.by_key(PROVIDER, key)
        if account is None:
            raise ApiError(10)
        if account.username in self.state.deactivated:
            raise ApiError(20)
        if account.username in self.state.blocked:
            raise ApiError(30)
        return account

    # sending ----------------------------------------------------------------------------

    def send(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        sender, problems = _text(params, "sender"), []
        if len(sender) > 11:
            problems.append(("sender", "L'emetteur ne peut pas etre plus long que 11 caracteres"))
        elif sender and len(sender) < 3:
            problems.append(("sender", "L'emetteur doit contenir au moins 3 caracteres"))
        if not _SENDER.fullmatch(sender):
            problems.append(("sender", "L'emetteur ne doit pas contenir de caracteres speciaux"))
        return self._send(account, params, "phoneNumbers", sender or SHORTCODE, problems)

    def vn_send(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        virtual, problems = _text(params, "from").lstrip("+"), []
        if not virtual:
            problems.append(("from", "Le numéro virtuel est requis"))
        elif not (virtual.isdigit() and 8 <= len(virtual) <= 15):
            problems.append(("from", f"Ce numéro virtuel n'est pas valide ({virtual})"))
        return self._send(account, params, "to", virtual, problems)

    def _send(
        self, account: Account, params: dict[str, Any], field: str, sender: str, problems: _Problems
    ) -> dict[str, Any]:
        """/send and /vn/send: the whole call is refused if one number is wrong."""
        numbers = params.get(field)  # a comma list; a JSON array is taken too
        numbers = numbers if isinstance(numbers, list) else _text(params, field).split(",")
        raw = [str(n).strip() for n in numbers if str(n).strip()]
        if not raw:
            raise ApiError(2)
        recipients = [_number(n) or "" for n in raw]
        for number, msisdn in zip(raw, recipients, strict=True):
            if not msisdn:
                problems.append((field, f"Ce numero de telephone n'est pas valide ({number})"))
        if len(raw) > MAX_NUMBERS:
            problems.append((field, f"{MAX_NUMBERS} numéros maximum par envoi"))
        order = _Order.read(params, problems)
        if not order.text:
            problems.append(("message", "Le message est requis"))
        if problems:
            raise ApiError(9, problems)
        stopped = [r for r in recipients if r in self.state.stop_list]
        if stopped:
            raise ApiError(14, text=f"Numéro dans la liste STOP (+{stopped[0]})")
        parts = order.parts(order.text)
        message_id = self._submit(
            account, order, sender, [(r, order.text, parts) for r in recipients]
        )
        nb_sms = parts * len(recipients)
        answer: dict[str, Any] = dict(success=True, code=200, message_id=int(message_id))
        answer |= dict(nb_sms=nb_sms, cost=_money(order.price * nb_sms), currency="EUR")
        return answer | order.scheduled_entry()

    def bulk_send(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        """/bulk-send: the call is checked as a whole, then each (number, text) line."""
        items, sender, problems = params.get("SMSList"), _text(params, "sender"), []
        if not isinstance(items, list) or not items:
            raise ApiError(2)
        if sender and not (3 <= len(sender) <= 11 and _SENDER.fullmatch(sender)):
            problems.append(("sender", "L'emetteur doit contenir de 3 a 11 caracteres"))
        if len(items) > MAX_NUMBERS:
            problems.append(("SMSList", f"{MAX_NUMBERS} SMS maximum par envoi"))
        order = _Order.read(params, problems)
        if problems:
            raise ApiError(9, problems)
        lines, accepted = [], []
        for item in items:
            item = item if isinstance(item, Mapping) else {}
            number, text = _text(item, "phoneNumber"), order.with_stop(_text(item, "message"))
            msisdn = _number(number)
            if msisdn is None or not _text(item, "message"):
                why = "Le message est requis" if msisdn else "Numéro de téléphone invalide"
                lines.append(dict(success=False, code=9, phoneNumber=number, message=why))
            elif msisdn in self.state.stop_list:
                lines.append(
                    dict(success=False, code=14, phoneNumber="+" + msisdn, message=ERRORS[14][1])
                )
            else:
                parts = order.parts(text)
                accepted.append((msisdn, text, parts))
                lines.append(
                    dict(
                        success=True,
                        code=200,
                        nbSms=parts,
                        cost=_money(order.price * parts),
                        phoneNumber="+" + msisdn,
                    )
                )
        message_id = self._submit(account, order, sender or SHORTCODE, accepted)
        nb_sms = sum(parts for _, _, parts in accepted)
        answer: dict[str, Any] = dict(success=True, code=200, message_id=int(message_id))
        answer |= dict(currency="EUR", cost=_money(order.price * nb_sms), nbSMS=nb_sms)
        answer |= order.scheduled_entry()
        return answer | {"SMSResponse_List": lines}

    def _submit(
        self, account: Account, order: _Order, sender: str, items: list[tuple[str, str, int]]
    ) -> str:
        """Charge, then store one message per (MSISDN, text, parts) under one new id; test
        mode (``sandbox=1``) does neither."""
        message_id = self.sandbox.new_id()
        if order.test_mode:
            return message_id
        if not self.sandbox.charge(account, order.price * sum(p for _, _, p in items)):
            raise ApiError(11)
        for recipient, text, parts in items:
            self.sandbox.add(
                SandboxMessage(
                    provider=PROVIDER,
                    id=message_id,
                    username=account.username,
                    sender=sender,
                    recipient=recipient,
                    text=text,
                    parts=parts,
                    cost=order.price * parts,
                    unicode=order.unicode,
                    send_at=order.send_at,
                    dlr_url=order.dlr_url,
                    extra={"tag": order.tag},
                )
            )
        return message_id

    # reading ----------------------------------------------------------------------------

    def me(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        solde = account.credits
        now = time.time()
        to_send = sum(
            m.parts
            for m in self.sandbox.owned_by(PROVIDER, account.username)
            if m.send_at > now and not m.cancelled
        )
        credits = {
            "creditSms": int(solde // PRICES[1]),
            "creditSmsECO": int(solde // PRICES[2]),
            "creditHlr": int(solde // HLR_PRICE),
            "toSend": to_send,
            "solde": f"{solde:.3f}",
            "currency": "EUR",
            "balance": f"{solde:.3f}",
        }
        user = {"username": account.username, "firstname": "", "lastname": ""}
        return {"success": True, "code": 200, "user": user, "credits": credits}

    def _find(self, account: Account, message_id: str, number: str) -> SandboxMessage | None:
        msisdn = _number(number)
        found = self.sandbox.find(PROVIDER, message_id, msisdn) if msisdn else []
        return next((m for m in found if m.username == account.username), None)

    def _changed_at(self, message: SandboxMessage, state: DeliveryState) -> float:
        schedule = self.sandbox.config.schedule
        if state is DeliveryState.PENDING:
            return message.send_at + schedule.pending_after
        if state.final and not message.cancelled:
            return message.send_at + schedule.final_after
        return float(message.extra.get("cancelled_at", message.send_at))

    def message_status(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        message_id, number = _text(params, "messageId"), _text(params, "phoneNumber")
        if not message_id:
            raise ApiError(3)
        if not number:
            raise ApiError(2)
        message = self._find(account, message_id, number)
        if message is None:
            raise ApiError(4)
        state = self.sandbox.state(message)
        answer: dict[str, Any] = {"success": True, "code": 200, "number": number}
        answer |= {"messageId": message_id, "stopSms": message.recipient in self.state.stop_list}
        answer |= {"date": _local(self._changed_at(message, state)), "statut": WORDS[state]}
        country = country_of(message.recipient) or ""
        return answer | {"cost": _money(message.cost), "countryCode": country, "currency": "EUR"}

    def multi_status(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        items = params.get("SMSStatut_List", params.get("SMSStatus_List"))
        if not isinstance(items, list) or not items:
            raise ApiError(2)
        if len(items) > MAX_NUMBERS:
            raise ApiError(9, [("SMSStatut_List", f"{MAX_NUMBERS} SMS maximum par requête")])
        lines = []
        for item in items:
            item = item if isinstance(item, Mapping) else {}
            message_id, number = _text(item, "messageId"), _text(item, "phoneNumber")
            msisdn = _number(number)
            shown = "+" + msisdn if msisdn else number
            id_value: Any = int(message_id) if message_id.isdigit() else message_id
            message = self._find(account, message_id, number)
            if message is None:
                lines.append(
                    {
                        "success": False,
                        "code": 4,
                        "phoneNumber": shown,
                        "messageId": id_value,
                        "status": "Numéro introuvable",
                    }
                )
                continue
            state = self.sandbox.state(message)
            stop = "1" if message.recipient in self.state.stop_list else "0"
            lines.append(
                {
                    "success": True,
                    "code": 200,
                    "phoneNumber": shown,
                    "messageId": id_value,
                    "status": WORDS[state],
                    "date": str(int(self._changed_at(message, state))),
                    "stopSms": stop,
                    "isSpam": "0",
                }
            )
        return {"success": True, "code": 200, "StatutResponse_List": lines}

    def message_cancel(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        message_id = _text(params, "messageId")
        if not message_id:
            raise ApiError(3)
        messages = [
            m for m in self.sandbox.find(PROVIDER, message_id) if m.username == account.username
        ]
        if not messages:
            raise ApiError(4)
        now = time.time()
        with self.sandbox.lock:
            if any(m.cancelled or m.send_at - now < CANCEL_NOTICE for m in messages):
                raise ApiError(9, [("messageId", "L'envoi de ce SMS ne peut plus etre annule")])
            for message in messages:
                self.sandbox.cancel(message)
                message.extra["cancelled_at"] = now
                account.credits += message.cost  # nothing was sent: refunded
        return {"success": True, "code": 200, "message": "L'envoi du SMS a été annulé."}

    # delivery reports -------------------------------------------------------------------

    def delivery_report(
        self, message: SandboxMessage, state: DeliveryState
    ) -> tuple[str, dict[str, Any]] | None:
        """The ``urlDlr`` JSON POST, final states only (the payload is our decision)."""
        if not state.final:
            return None
        return "json", {
            "messageId": int(message.id),
            "phoneNumber": "+" + message.recipient,
            "status": WORDS[state],
            "date": _local(self._changed_at(message, state)),
            "cost": _money(message.cost),
            "currency": "EUR",
        }
