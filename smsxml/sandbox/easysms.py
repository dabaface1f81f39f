"""Sandbox of easysms, net2sms.gr's legacy HTTP API (``/srvauth/index?cmd=easysms``).

Seed ``easysms-legacy-api.fr.txt`` and research/providers.md §2: HTTP Basic auth; a send
answers ``return_code|sms_id|balance``; get_balance the number of SMS left; get_status a flat
``id|state|id|state`` drain. A refused send answers the REST API's error code as its return
code (same platform; a decision, docs/providers/easysms.md). It shares the helpers of
:mod:`smsxml.sandbox.net2sms`, but not its accounts or messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from werkzeug.wrappers import Request
from werkzeug.wrappers import Response as HttpResponse

from smsxml.sandbox.core import Account, Sandbox, SandboxMessage
from smsxml.sandbox.net2sms import (
    DEFAULT_SENDER,
    LETTERS,
    Params,
    Refused,
    amount,
    flag,
    msisdn,
    params_of,
    parts_of,
    sender_ok,
)
from smsxml.text import Encoding, encoding_for

__all__ = ["EasysmsApp"]


class EasysmsApp:
    """``/srvauth/index?cmd=easysms&action=…`` behind HTTP Basic auth: send_sms,
    get_balance (``balance=true``), get_status (``get_status=true``)."""

    provider = "easysms"
    path = "/srvauth/index"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.actions: dict[str, Callable[[Account, Params], str]] = {
            "send_sms": self.send_sms,
            "get_balance": self.get_balance,
            "get_status": self.get_status,
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.rstrip("/") != self.path:
            return HttpResponse("Not Found", 404)(environ, start_response)
        auth = request.authorization
        account = None
        if auth is not None and auth.type == "basic":
            account = self.sandbox.login(self.provider, auth.username, auth.password)
        if account is None:
            # A challenge, not only a refusal: urllib's HTTPBasicAuthHandler, which clients
            # of this endpoint use, sends credentials only after one.
            challenge = {"WWW-Authenticate": 'Basic realm="net2sms.gr"'}
            return HttpResponse("Unauthorized", 401, challenge)(environ, start_response)
        params = params_of(request)
        action = self.actions.get(params.get("action", ""))
        if params.get("cmd") != "easysms" or action is None:
            return HttpResponse("Unknown command", 400)(environ, start_response)
        body = action(account, params)
        return HttpResponse(body, content_type="text/plain; charset=utf-8")(environ, start_response)

    def send_sms(self, account: Account, params: Params) -> str:
        """``return_code|sms_id|balance``: ``1|456123789|112``; refused: ``105|0|112``."""
        try:
            message = self._submit(account, params)
        except Refused as refused:
            return f"{refused.code}|0|{amount(account.credits)}"
        return f"1|{message.id}|{amount(account.credits)}"

    def _submit(self, account: Account, params: Params) -> SandboxMessage:
        raw = params.get("mobile_number", "").strip()
        if not raw:
            raise Refused("102")
        recipient = msisdn(raw)
        if recipient is None:
            raise Refused("103")
        text = params.get("text", "")
        if not text:
            raise Refused("104")
        sender = params.get("originator", "").strip() or DEFAULT_SENDER
        if not sender_ok(sender):
            raise Refused("40")
        parts = parts_of(text, False)
        if not self.sandbox.charge(account, Decimal(parts)):
            raise Refused("105")
        return self.sandbox.add(
            SandboxMessage(
                provider=self.provider,
                id=self.sandbox.new_id("digits"),
                username=account.username,
                sender=sender,
                recipient=recipient,
                text=text,
                parts=parts,
                cost=Decimal(parts),
                unicode=encoding_for(text) is Encoding.UCS2,
                flash=flag(params.get("flash")),
                send_at=time.time(),
                extra={"request_delivery": flag(params.get("request_delivery"))},
            )
        )

    def get_balance(self, account: Account, params: Params) -> str:
        """The number of SMS left."""
        return amount(account.credits)

    def get_status(self, account: Account, params: Params) -> str:
        """``id|state|id|state|…`` of the changes since the last call, for the messages sent
        with ``request_delivery=true`` (the others asked for no report)."""
        changes = self.sandbox.drain(self.provider, account.username)
        return "|".join(
            f"{message.id}|{LETTERS[state]}"
            for message, state in changes
            if message.extra.get("request_delivery")
        )
