"""What ``send`` and ``query`` do, whatever carried them (spyne, the fast lane, tests).

The checks run in the order the iSMS documentation implies, and each refusal is a
:class:`SmsFault` with the documented faultstring and a stable code (the ``FaultCode``
enumeration of ``schemas/isms/sms.xsd``). A message is acknowledged only once it is
stored: :meth:`Bridge.send` returns the id after the commit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from smsxml.contract import FAULTS as CONTRACT_FAULTS
from smsxml.errors import InsufficientCredit
from smsxml.numbers import invalid_msisdns
from smsxml.schedule import ATHENS, parse_schedule
from smsxml.server.accounts import AccountInfo
from smsxml.server.clock import utcnow
from smsxml.server.store import Store
from smsxml.text import Encoding, is_gsm7, split

__all__ = ["FAULTS", "Bridge", "SmsFault", "msisdn"]

#: stable code → faultstring (the contract's table, smsxml.contract)
FAULTS = {code.value: fault.text for code, fault in CONTRACT_FAULTS.items()}

#: alphanumeric up to 11 characters, or digits up to 16 (the iSMS and net2sms rule).
#: DECISION: letters and digits only in alphanumeric senders (allmysms' TPOA rule).
SENDER = re.compile(r"[0-9]{1,16}|[A-Za-z0-9]{1,11}")


class SmsFault(Exception):
    """A refusal the client must see: ``code`` from FAULTS, ``text`` its faultstring
    (the documented one, or a more precise one for undocumented cases)."""

    def __init__(self, code: str, text: str | None = None, *, client: bool = True) -> None:
        self.code = code
        self.text = text or FAULTS[code]
        self.client = client  # soap:Client (the request's fault) or soap:Server
        super().__init__(self.text)


#: a number as clients write it: "+" or "00" before the country code, ASCII digits with
#: single spaces or hyphens between them ("+30 691 234 5678", "0030-691-2345678")
_WRITTEN_NUMBER = re.compile(r"(?:\+|00)?[0-9](?:[ -]?[0-9])*")


def msisdn(value: str | None) -> str:
    """A recipient as written by a client → MSISDN digits. Anything else ("-3069…",
    "3069…abc", other scripts' digits) comes back as written, for the validity check
    to refuse as an invalid recipient."""
    text = (value or "").strip()
    if not _WRITTEN_NUMBER.fullmatch(text):
        return text
    digits = text.replace(" ", "").replace("-", "")
    if digits.startswith("+"):
        return digits[1:]
    return digits[2:] if digits.startswith("00") else digits


@dataclass(frozen=True)
class SendRequest:
    """The parameters of ``send`` once read from the wire."""

    username: str
    password: str
    sender: str
    recipients: Sequence[str]
    message: str
    coding: str
    flash: bool
    schedule: str | None = None
    dlr_url: str | None = None


class Bridge:
    """The service's behaviour, over a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def authenticate(self, username: str | None, password: str | None) -> AccountInfo:
        account = self.store.accounts.authenticate(username or "", password or "")
        if account is None:
            raise SmsFault("AuthenticationError")
        return account

    def send(self, request: SendRequest) -> str:
        """Check, charge, store; return the message id (the message is then Queued)."""
        account = self.authenticate(request.username, request.password)
        recipients = list(  # plain digits need no rewriting: long lists go fast
            dict.fromkeys(
                r if r.isascii() and r.isdigit() and r[:2] != "00" else msisdn(r)
                for r in request.recipients
                if r
            )
        )
        recipients = [r for r in recipients if r]
        if not recipients:
            raise SmsFault("NoRecipients")
        sender = (request.sender or "").strip()
        if not SENDER.fullmatch(sender):
            raise SmsFault("InvalidSender")
        invalid = invalid_msisdns(recipients)
        if invalid:
            shown = ", ".join(r[:20] for r in invalid[:5]) + (" …" if len(invalid) > 5 else "")
            raise SmsFault("InvalidRecipient", f"Invalid recipient: {shown}.")
        text = request.message or ""
        if not text:
            raise SmsFault("InvalidRequest", "No message defined.")
        if request.coding == "GSM":
            if not is_gsm7(text):
                raise SmsFault(
                    "InvalidCoding", "Message is not GSM-encodable: send it with coding UTF-8."
                )
            parts = split(text, Encoding.GSM7).parts
        elif request.coding == "UTF-8":
            parts = split(text, Encoding.UCS2).parts
        else:
            raise SmsFault("InvalidCoding", "Invalid coding: use GSM or UTF-8.")
        send_at = self._schedule(request.schedule)
        if request.dlr_url:
            where = urlsplit(request.dlr_url)
            if where.scheme not in ("http", "https") or not where.hostname:
                raise SmsFault("InvalidRequest", "Invalid dlr_url: give an http or https URL.")
        try:
            return self.store.acceptance.accept(
                account,
                sender=sender,
                text=text,
                coding=request.coding,
                flash=request.flash,
                recipients=recipients,
                parts=parts,
                send_at=send_at,
                dlr_url=request.dlr_url or None,
            )
        except InsufficientCredit:
            raise SmsFault("InsufficientCredits") from None

    @staticmethod
    def _schedule(schedule: str | None) -> datetime | None:
        if not schedule or not schedule.strip():
            return None
        now = datetime.now(ATHENS)  # read as Greek local time, as iSMS's PHP does
        try:
            moment = parse_schedule(schedule, now)
        except ValueError:
            raise SmsFault("InvalidSchedule") from None
        moment_utc = moment.astimezone(UTC).replace(tzinfo=None)
        if moment_utc < utcnow().replace(microsecond=0):
            raise SmsFault("InvalidSchedule")  # DECISION: the past is not a schedule
        return moment_utc

    def query(
        self, username: str | None, password: str | None, message_id: str | None, mobile: str | None
    ) -> str:
        """The state of ``message_id`` for ``mobile``: Queued, Pending, Delivered, Failed."""
        account = self.authenticate(username, password)
        if not message_id or not message_id.strip():  # this form lets mypy narrow to str
            raise SmsFault("NoMessageId")
        if not (mobile or "").strip():
            raise SmsFault("NoMobile")
        state = self.store.status(account.id, message_id.strip(), msisdn(mobile))
        if state is None:
            raise SmsFault("NoSuchMessage")
        return state
