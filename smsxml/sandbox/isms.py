"""The iSMS.gr HTTP API, simulated: ``/api/http/<call>.php`` with the vendor's plain-text answers.

Vendor facts (seed ``isms-api.el.txt``): every call takes ``username`` and ``password``;
answers are one line, byte for byte as the vendor page writes them (``Credits:3948.47``,
``ID:I7I5R4HTAA``, ``Status: Delivered``, ``Error: Authentication error.``…); one message id
covers every recipient of a send and is queried per (``mid``, ``mobile``). Where the page is
silent this module decides, as written in ``docs/providers/isms.md``: invalid numbers are
dropped from ``to`` (none left: ``Error: No recipients.``), one credit per SMS part per
recipient, a past ``schedule`` sends at once, delivery reports are form POSTs of ``mid``,
``mobile``, ``status``, ``timestamp`` for final states, HLR answers are synthetic.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import phonenumbers
from phonenumbers import carrier
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from smsxml.numbers import calling_code, country_of, is_valid_msisdn
from smsxml.sandbox.core import Account, Sandbox, SandboxMessage
from smsxml.schedule import ATHENS, parse_schedule
from smsxml.status import DeliveryState
from smsxml.text import Encoding, is_gsm7, split

__all__ = ["HLR_COST", "SMS_COST", "IsmsApp", "delivery_report"]

PROVIDER = "isms"
#: credits per SMS part per recipient (the vendor bills "credits"; its page gives no rate)
SMS_COST = Decimal("1")
#: credits per number looked up by hlr.php (cheaper than an SMS, as HLR lookups are sold)
HLR_COST = Decimal("0.1")

AUTHENTICATION_ERROR = "Error: Authentication error."
NO_RECIPIENTS = "Error: No recipients."
INVALID_SENDER = "Error: Invalid sender identity."
INSUFFICIENT_CREDITS = "Error: Insufficient credits."
INVALID_SCHEDULE = "Error: Invalid scheduling date."
NO_MESSAGE_ID = "Error: No message ID defined."
NO_MOBILE = "Error: No mobile defined."
NO_SUCH_MESSAGE = "Error: No such message or recipient."
NO_SUCH_LOOKUP = "Error: No such message ID or mobile."
MOBILE_EMPTY = "Error: Mobile number is empty."
INVALID_MOBILE = "Error: Invalid mobile number."
OK = "OK"
FAILED = "FAILED"

#: alphanumeric up to 11 characters, or digits up to 16 (the rule every provider shares)
_SENDER = re.compile(r"[0-9]{1,16}|[A-Za-z0-9]{1,11}")
#: what the gateway takes for a mobile: an MSISDN's shape, 7–15 digits, no "+" or "00"
_MOBILE = re.compile(r"[1-9][0-9]{6,14}")
#: what hlr.php looks up: any ASCII digits (telling valid numbers apart is its job)
_DIGITS = re.compile(r"[0-9]{1,15}")

Params = MultiDict[str, str]


@dataclass
class Contact:
    """One entry of an account's contact book (savecontact.php's four fields)."""

    surname: str
    name: str
    mobile: str
    comments: str


def delivery_report(
    message: SandboxMessage, state: DeliveryState
) -> tuple[str, dict[str, Any]] | None:
    """The form POSTed to ``dlr-url`` ("all data will be sent using POST"), final states only."""
    if not state.final:
        return None
    fields = {"mid": message.id, "mobile": message.recipient, "status": state.value}
    return "form", {**fields, "timestamp": str(int(time.time()))}


class IsmsApp:
    """WSGI app of the iSMS HTTP API; state lives in the shared :class:`Sandbox`."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.contacts: dict[str, dict[str, Contact]] = {}  # username → mobile → contact
        self.lookups: dict[str, list[SandboxMessage]] = {}  # HLR id → one entry per number
        sandbox.callbacks[PROVIDER] = delivery_report
        self.routes: dict[str, Callable[[Account, Params], str]] = {
            "/api/http/credits.php": self.credits,
            "/api/http/send.php": self.send,
            "/api/http/query.php": self.query,
            "/api/http/hlr.php": self.hlr,
            "/api/http/hlrquery.php": self.hlr_query,
            "/api/http/savecontact.php": self.save_contact,
            "/api/http/deletecontact.php": self.delete_contact,
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        handler = self.routes.get(request.path)
        if handler is None:
            response = Response("Not Found", 404)
        elif request.method not in ("GET", "POST"):  # the page says GET; forms POSTed are read too
            response = Response("Method Not Allowed", 405, headers={"Allow": "GET, POST"})
        else:
            params: Params = request.values
            account = self.sandbox.login(PROVIDER, params.get("username"), params.get("password"))
            body = AUTHENTICATION_ERROR if account is None else handler(account, params)
            # PHP's default Content-Type, which the real scripts do not change
            response = Response(body, 200, content_type="text/html; charset=UTF-8")
        return response(environ, start_response)

    # calls ---------------------------------------------------------------------------

    def credits(self, account: Account, params: Params) -> str:
        return f"Credits:{account.credits:.2f}"

    def send(self, account: Account, params: Params) -> str:
        recipients = _mobiles(params.get("to", ""), _MOBILE.fullmatch)
        if not recipients:
            return NO_RECIPIENTS
        sender = params.get("from", "")
        if not _SENDER.fullmatch(sender):
            return INVALID_SENDER
        send_at = time.time()
        schedule = params.get("schedule", "").strip()
        if schedule:
            try:
                send_at = max(send_at, parse_schedule(schedule, datetime.now(ATHENS)).timestamp())
            except ValueError:
                return INVALID_SCHEDULE
        text = params.get("message", "")
        unicode = params.get("coding", "").strip().upper() in ("UTF-8", "UTF8")
        parts = _parts(text, unicode)
        cost = SMS_COST * parts
        if not self.sandbox.charge(account, cost * len(recipients)):
            return INSUFFICIENT_CREDITS
        mid = self.sandbox.new_id("hex")
        flash = params.get("flash", "").strip().lower() in ("1", "true")
        dlr_url = params.get("dlr-url", "").strip() or None
        for recipient in recipients:
            self.sandbox.add(
                SandboxMessage(
                    provider=PROVIDER, id=mid, username=account.username, sender=sender,
                    recipient=recipient, text=text, parts=parts, cost=cost, unicode=unicode,
                    flash=flash, send_at=send_at, dlr_url=dlr_url,
                )
            )  # fmt: skip
        return f"ID:{mid}"

    def query(self, account: Account, params: Params) -> str:
        mid, mobile = params.get("mid", "").strip(), params.get("mobile", "").strip()
        if not mid:
            return NO_MESSAGE_ID
        if not mobile:
            return NO_MOBILE
        found = [
            m for m in self.sandbox.find(PROVIDER, mid, mobile) if m.username == account.username
        ]
        if not found:
            return NO_SUCH_MESSAGE
        return f"Status: {self.sandbox.state(found[0]).value}"

    def hlr(self, account: Account, params: Params) -> str:
        mobiles = _mobiles(params.get("mobiles", ""), _DIGITS.fullmatch)
        if not mobiles:
            return NO_RECIPIENTS
        if not self.sandbox.charge(account, HLR_COST * len(mobiles)):
            return INSUFFICIENT_CREDITS
        lookup_id = self.sandbox.new_id("hex")
        now = time.time()
        entries = [
            SandboxMessage(
                PROVIDER, lookup_id, account.username, "", mobile, "", 0, HLR_COST, send_at=now
            )
            for mobile in mobiles
        ]
        with self.sandbox.lock:
            self.lookups[lookup_id] = entries
        return f"ID:{lookup_id}"

    def hlr_query(self, account: Account, params: Params) -> str:
        mid, mobile = params.get("mid", "").strip(), params.get("mobile", "").strip()
        if not mid:
            return NO_MESSAGE_ID
        if not mobile:
            return NO_MOBILE
        with self.sandbox.lock:
            entries = self.lookups.get(mid, [])
        entry = next(
            (e for e in entries if e.recipient == mobile and e.username == account.username), None
        )
        if entry is None:
            return NO_SUCH_LOOKUP
        state = self.sandbox.state(entry)
        if not state.final:
            return state.value
        return _hlr_result(mobile, state)

    def save_contact(self, account: Account, params: Params) -> str:
        mobile = params.get("mobile", "").strip()
        if not mobile:
            return MOBILE_EMPTY
        if not _MOBILE.fullmatch(mobile):
            return INVALID_MOBILE
        contact = Contact(
            params.get("surname", ""), params.get("name", ""), mobile, params.get("comments", "")
        )
        with self.sandbox.lock:
            self.contacts.setdefault(account.username, {})[mobile] = contact
        return OK

    def delete_contact(self, account: Account, params: Params) -> str:
        mobile = params.get("mobile", "").strip()
        if not mobile:
            return MOBILE_EMPTY
        if not _MOBILE.fullmatch(mobile):
            return INVALID_MOBILE
        with self.sandbox.lock:
            removed = self.contacts.get(account.username, {}).pop(mobile, None)
        return OK if removed is not None else FAILED


def _mobiles(value: str, valid: Callable[[str], object]) -> list[str]:
    """The comma-separated numbers of ``value`` that pass ``valid``, once each, in order.

    The page says "no spaces"; the sandbox forgives spaces and empty items, as PHP's
    ``explode`` + ``trim`` would.
    """
    return list(dict.fromkeys(m for m in (v.strip() for v in value.split(",")) if m and valid(m)))


def _parts(text: str, unicode: bool) -> int:
    """SMS parts billed: UCS-2 for ``coding=UTF-8``; GSM-7 otherwise, with characters the
    GSM alphabet lacks sent as ``?`` (what a GSM-7 SMSC does with them)."""
    if unicode:
        return split(text, Encoding.UCS2).parts
    gsm = text if is_gsm7(text) else "".join(c if is_gsm7(c) else "?" for c in text)
    return split(gsm, Encoding.GSM7).parts


def _hlr_result(mobile: str, state: DeliveryState) -> str:
    """``Status;Country;Operator;IMSI;ServingMSC;ErrorCode``, synthetic but consistent: a
    number phonenumbers rejects is ``Unknown``; one the schedule fails is ``Undelivered``
    (MAP error 1, unknown subscriber); the rest ``Delivered``, on the test network 001-01."""
    if not is_valid_msisdn(mobile):
        return "Unknown;;;;;"
    country = country_of(mobile) or ""
    operator = carrier.name_for_number(phonenumbers.parse("+" + mobile), "en")
    if state is DeliveryState.FAILED:
        return f"Undelivered;{country};{operator};;;1"
    imsi = "00101" + mobile[-10:].rjust(10, "0")
    msc = f"{calling_code(mobile)}{'0' * 9}"
    return f"Delivered;{country};{operator};{imsi};{msc};0"
