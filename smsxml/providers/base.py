"""What every provider client shares: the common interface, HTTP, errors and retries.

The SOAP bridge talks to every provider through :class:`Provider` (send, balance,
delivery statuses); each provider's extras are plain methods on its own client.

HTTP: one pooled :class:`httpx.Client` per provider client, a timeout on every call
(:data:`DEFAULT_TIMEOUT`). Retries (:data:`RETRY_ATTEMPTS`) only where a retry cannot
send an SMS twice: reads are retried on temporary failures; a send is retried only when
the provider cannot have processed it (the connection was never opened, or HTTP 502 or
503). "Too many requests" (429) is never retried here: :class:`RateLimited` carries the
provider's Retry-After for the caller to honour (the bridge's dispatcher holds the
provider that long). Credentials never reach logs, reprs or
exception messages: each call's log line (``smsxml.providers``, DEBUG) is redacted.
"""

from __future__ import annotations

import json as jsonlib
import logging
import re
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlencode, urlsplit

import certifi
import httpx
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from smsxml.errors import (
    OutcomeUnknown,
    ProviderError,
    RateLimited,
    TemporaryFailure,
)
from smsxml.providers.transport import KeepAliveTransport, default_port, read_answer
from smsxml.status import DeliveryState

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "RETRY_ATTEMPTS",
    "Balance",
    "HttpProvider",
    "OutgoingMessage",
    "Provider",
    "StatusUpdate",
    "Submitted",
]

#: Every call has a timeout: 5 s to connect, 15 s for the rest.
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
#: Pooled keep-alive connections per client; more than ~10 in flight on one httpx pool
#: costs more than it gains (research/perf-calibration.md §4).
DEFAULT_LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=10)
#: Attempts for calls that are safe to repeat (reads, and sends that never connected).
RETRY_ATTEMPTS = 3

T = TypeVar("T")

_SECRET_PARAMS = re.compile(
    r"((?:password|passwd|pass|key|apikey|api_key|apiKey|passcode)=)[^&\s\"]*", re.IGNORECASE
)
#: the token of a delivery-callback URL (/dlr/<provider>/<token>, plain or URL-encoded in a
#: dlr-url parameter): whoever reads it can post delivery reports for that provider
_CALLBACK_TOKEN = re.compile(r"((?:/|%2F)dlr(?:/|%2F)[\w.-]+(?:/|%2F))[0-9a-f]{32}", re.I)


log = logging.getLogger("smsxml.providers")


@cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: building one costs ~0.2 s of CPU."""
    return ssl.create_default_context(cafile=certifi.where())


def redact(text: str) -> str:
    """``text`` with credential parameters blanked (for our own messages)."""
    return _CALLBACK_TOKEN.sub(r"\1***", _SECRET_PARAMS.sub(r"\1***", text))


@dataclass(frozen=True)
class OutgoingMessage:
    """One text to one or more recipients, as the bridge hands it to a provider."""

    sender: str
    recipients: Sequence[str]  # MSISDNs: digits, international, no "+"
    text: str
    unicode: bool = False  # UCS-2 (iSMS coding=UTF-8, net2sms ucs=true)
    flash: bool = False
    schedule: datetime | None = None
    dlr_url: str | None = None


@dataclass(frozen=True)
class Submitted:
    """A provider accepted the message for one recipient under ``provider_id``.

    Some providers give one id per recipient (net2sms, allmysms), others one id per
    message and ask for the recipient alongside it when queried (iSMS).
    """

    recipient: str
    provider_id: str


@dataclass(frozen=True)
class StatusUpdate:
    """A provider's word on one submitted message, in the common vocabulary."""

    provider_id: str
    state: DeliveryState
    recipient: str | None = None
    detail: str = ""  # the provider's own status word or code, kept for the history


@dataclass(frozen=True)
class Balance:
    """What is left on the account, in the provider's unit (SMS, credits, EUR…)."""

    amount: Decimal
    unit: str


class Provider(ABC):
    """The interface the bridge uses; one subclass per provider."""

    #: short name used in routing configuration and logs
    name: ClassVar[str]
    #: how many recipients one send call may carry (1 = one call per recipient)
    max_batch: ClassVar[int] = 1
    #: :meth:`statuses` makes one call per message asked about (not one drain or bulk
    #: call): a poller may split its question over several threads
    status_call_per_message: ClassVar[bool] = False

    @abstractmethod
    def send(self, message: OutgoingMessage) -> list[Submitted]:
        """Submit ``message``; one :class:`Submitted` per accepted recipient."""

    @abstractmethod
    def balance(self) -> Balance:
        """The account's balance."""

    @abstractmethod
    def statuses(self, submitted: Sequence[Submitted]) -> list[StatusUpdate]:
        """News about ``submitted`` messages: by id where the provider can be asked, or by
        draining its "changed since the last call" list (which may also return news of
        other messages)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most clients override
        """Release connections."""

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _temporary(error: BaseException) -> bool:
    """Worth a quick retry: temporary, not possibly sent, and not a provider asking us
    to wait (retrying within its Retry-After only adds to the load it refuses)."""
    return isinstance(error, TemporaryFailure) and not isinstance(
        error, (OutcomeUnknown, RateLimited)
    )


#: seconds before the first retry; each later one waits twice as long, at most 2 s
FIRST_RETRY_WAIT = 0.1
#: the retries after a first attempt that failed, built once (tenacity keeps each call's
#: state per thread): building it for every call cost more than the call's own request
#: building, and going through it for every first attempt, 5 % of the dispatcher's CPU
_RETRYING = Retrying(
    retry=retry_if_exception(_temporary),
    stop=stop_after_attempt(RETRY_ATTEMPTS - 1),
    wait=wait_exponential(multiplier=2 * FIRST_RETRY_WAIT, max=2.0),
    reraise=True,
)


class HttpProvider(Provider):
    """A provider reached over HTTP with httpx; subclasses build requests and read answers.

    A call is built by the client (base URL, parameters, timeouts) and handed straight to
    its transport: a provider API call never follows a redirect nor keeps cookies, and
    skipping that machinery halves the client's CPU per call, which the dispatcher pays
    once per SMS."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        basic_auth: tuple[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._transport = transport or httpx.HTTPTransport(
            verify=shared_ssl_context(), limits=DEFAULT_LIMITS
        )
        headers = {"User-Agent": "smsxml"}
        if basic_auth is not None:
            headers["Authorization"] = httpx.BasicAuth(*basic_auth)._auth_header
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=self._transport, headers=headers
        )
        # what the lean path (a KeepAliveTransport) needs, worked out once
        base = urlsplit(self.base_url)
        self._origin = (base.scheme, base.hostname or "", base.port or default_port(base.scheme))
        self._base_path = base.path
        self._headers = {**headers, "Accept": "*/*", "Connection": "keep-alive"}
        self._timeouts = self._http.timeout.as_dict()

    def __repr__(self) -> str:  # never the credentials
        return f"<{type(self).__name__} {self.base_url}>"

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        json: Any = None,
        accept_status: Callable[[int], bool] = lambda code: code < 500 and code != 429,
    ) -> httpx.Response:
        """One HTTP call with the error mapping and retry policy of this module.

        ``idempotent``: a repeat cannot send an SMS twice, so temporary failures are
        retried. Otherwise only what the provider cannot have processed is: a failure to
        connect, HTTP 502 or 503. A 429 is raised at once (:class:`RateLimited`).
        """
        arguments = (method, path, idempotent, params, data, json, accept_status)
        try:
            return self._once(*arguments)
        except TemporaryFailure as error:
            if not _temporary(error):
                raise
        time.sleep(FIRST_RETRY_WAIT)
        return _RETRYING(self._once, *arguments)

    def _once(
        self,
        method: str,
        path: str,
        idempotent: bool,
        params: Mapping[str, Any] | None,
        data: Mapping[str, Any] | None,
        json: Any,
        accept_status: Callable[[int], bool],
    ) -> httpx.Response:
        try:
            if isinstance(self._transport, KeepAliveTransport):
                url, response = self._lean_call(method, path, params, data, json)
            else:
                request = self._http.build_request(
                    method, path, params=params, data=data, json=json
                )
                url = str(request.url)
                response = read_answer(self._transport.handle_request(request))
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s: HTTP %d", method, redact(url), response.status_code)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise TemporaryFailure(
                f"cannot connect: {type(error).__name__}", provider=self.name
            ) from None
        except httpx.TransportError as error:
            # The request may have arrived: a read timeout or a dropped connection.
            cls = TemporaryFailure if idempotent else OutcomeUnknown
            raise cls(f"no answer: {type(error).__name__}", provider=self.name) from None
        if response.status_code == 429:
            retry_after = response.headers.get("Retry-After")
            raise RateLimited(
                "rate limited",
                provider=self.name,
                code=429,
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        if response.status_code >= 500 and not accept_status(response.status_code):
            # 502/503: the request was not processed; 500/504 may have been.
            unprocessed = idempotent or response.status_code in (502, 503)
            cls = TemporaryFailure if unprocessed else OutcomeUnknown
            raise cls(f"HTTP {response.status_code}", provider=self.name, code=response.status_code)
        if not accept_status(response.status_code):
            raise ProviderError(
                f"unexpected HTTP {response.status_code}",
                provider=self.name,
                code=response.status_code,
            )
        return response

    def _lean_call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        data: Mapping[str, Any] | None,
        json: Any,
    ) -> tuple[str, httpx.Response]:
        """The call straight on the kept-alive connection, encoded as httpx encodes it:
        httpx's request building (URL parsing and merging) cost more than the call."""
        assert isinstance(self._transport, KeepAliveTransport)
        target = self._base_path + path
        if params:
            target += "?" + urlencode(_form(params))
        headers, body = self._headers, None
        if json is not None:
            body = jsonlib.dumps(
                json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            headers = {**headers, "Content-Type": "application/json"}
        elif data is not None:
            body = urlencode(_form(data)).encode()
            headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        response = self._transport.exchange(
            method, self._origin, target, body=body, headers=headers, timeouts=self._timeouts
        )
        return self.base_url + target.removeprefix(self._base_path), response


def _form(fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Form or query fields as httpx writes them: lists repeat the key, booleans are
    ``true``/``false``, None is empty."""
    pairs = []
    for key, value in fields.items():
        for item in value if isinstance(value, list | tuple) else (value,):
            text = "true" if item is True else "false" if item is False else item
            pairs.append((key, "" if text is None else str(text)))
    return pairs
