"""A zeep client of any iSMS-compatible SOAP endpoint: the bridge's, or the real iSMS.

:class:`SoapClient` calls ``send`` and ``query`` and answers the classes xsdata generated
from ``schemas/isms/`` (:class:`~smsxml.generated.isms.SendResponse`,
:class:`~smsxml.generated.isms.QueryResponse`), and raises the same typed errors as the
HTTP provider clients (:mod:`smsxml.errors`). It is also a
:class:`~smsxml.providers.base.Provider` (``"isms-soap"``), so one bridge can route to
another, or to iSMS over SOAP.

zeep's defaults are unsafe for a WSDL from the network (research/soap-toolkit.md §2), so:

- ``Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True,
  xml_huge_tree=False)``: no DOCTYPE, no entity, no transitive http(s) fetch, libxml2's
  size limits kept;
- zeep's ``forbid_external`` gates only http(s): a hostile WSDL could still make zeep read
  local files through ``schemaLocation``. The transport here reads no local file unless
  the WSDL itself is one, and then only files of its own folder;
- every answer is read up to a size cap (:data:`MAX_WSDL_BYTES`, :data:`MAX_ANSWER_BYTES`);
- zeep has no operation timeout by default: here WSDL loading and every call have one;
- zeep logs whole requests, password included, at DEBUG on ``zeep.transports``: this
  transport does not log bodies, and a filter on that logger blanks ``<password>`` in
  what any other zeep client in the process logs.

The WSDL is read on the first call, not in the constructor: a bridge starts while its
upstream is down, and the failure is then a :class:`~smsxml.errors.TemporaryFailure` of
one call, which the dispatcher fails over from.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal, overload
from urllib.parse import unquote, urlparse

import requests
import urllib3.exceptions
import zeep
import zeep.exceptions
from lxml import etree
from zeep.wsdl.bindings import Soap12Binding

from smsxml.contract import FAULTS as CONTRACT_FAULTS
from smsxml.contract import fault_of_text
from smsxml.errors import (
    BadInput,
    OutcomeUnknown,
    PermanentFailure,
    ProviderError,
    TemporaryFailure,
)
from smsxml.generated.isms import Coding, QueryResponse, SendResponse, Status
from smsxml.providers.base import (
    Balance,
    OutgoingMessage,
    Provider,
    StatusUpdate,
    Submitted,
)
from smsxml.schedule import ATHENS
from smsxml.status import DeliveryState
from smsxml.text import is_gsm7

__all__ = [
    "DEFAULT_TIMEOUT",
    "FAULT_ERRORS",
    "MAX_ANSWER_BYTES",
    "MAX_WSDL_BYTES",
    "PROVIDER",
    "SoapClient",
]

PROVIDER = "isms-soap"
#: seconds: to load the WSDL, and to wait for each call's answer
DEFAULT_TIMEOUT = 15.0
#: seconds to open a connection (at most the timeout)
CONNECT_TIMEOUT = 5.0
#: the bridge's WSDL with its schema inlined is ~10 KB; a vendor's, tens of KB
MAX_WSDL_BYTES = 2 * 1024 * 1024
#: an answer is an id, a status word or a fault
MAX_ANSWER_BYTES = 256 * 1024

#: a fault's code (the ``tns:smsFault`` detail code) → the error it raises (the contract's
#: table); a code not listed raises PermanentFailure for a Client fault, TemporaryFailure
#: for a Server one
FAULT_ERRORS: Mapping[str, type[ProviderError]] = MappingProxyType(
    {code.value: fault.error for code, fault in CONTRACT_FAULTS.items()}
)
_STATUSES = {status.value.lower(): status for status in Status}

log = logging.getLogger("smsxml.soap")

_PASSWORD = re.compile(
    r"(<(?:[\w.-]+:)?password\b[^>]*>)(.*?)(</(?:[\w.-]+:)?password\s*>)",
    re.IGNORECASE | re.DOTALL,
)


def _blank_passwords(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return _PASSWORD.sub(r"\1***\3", value) if isinstance(value, str) else value


class _RedactSoapBodies(logging.Filter):
    """Blank ``<password>`` elements in the request bodies zeep logs at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_blank_passwords(arg) for arg in record.args)
        elif isinstance(record.msg, str):
            record.msg = _blank_passwords(record.msg)
        return True


logging.getLogger("zeep.transports").addFilter(_RedactSoapBodies())


_SOAP_FAULT = re.compile(rb"<(?:[\w.-]+:)?Fault[\s>]")


class _TooLarge(Exception):
    """An answer over its size cap."""


def _read_capped(response: requests.Response, limit: int, deadline: float) -> bytes:
    """The body of a streamed ``response``: at most ``limit`` bytes, complete before
    ``deadline`` (requests' read timeout is per read: a server dripping a byte at a time
    would hold the call forever)."""
    body = bytearray()
    for chunk in response.iter_content(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise _TooLarge(f"answer larger than {limit} bytes")
        if time.monotonic() > deadline:
            raise requests.exceptions.ReadTimeout("answer not complete within the timeout")
    return bytes(body)


class _Transport(zeep.Transport):
    """zeep's transport without local-file reads, body logs or unbounded answers."""

    def __init__(self, local_root: Path | None, *, timeout: float, session: requests.Session):
        connect = min(CONNECT_TIMEOUT, timeout)
        # zeep's Transport is not annotated (untyped_calls_exclude misses super() calls)
        super().__init__(  # type: ignore[no-untyped-call]
            timeout=timeout, operation_timeout=(connect, timeout), session=session
        )
        self._local_root = local_root
        session.headers["User-Agent"] = "smsxml"

    def load(self, url: str) -> bytes:
        scheme = urlparse(url).scheme
        if scheme in ("http", "https"):
            return super().load(url)  # type: ignore[no-any-return, no-untyped-call]
        path = Path(unquote(urlparse(url).path) if scheme == "file" else url).expanduser()
        path = path.resolve()
        if self._local_root is None or not path.is_relative_to(self._local_root):
            raise zeep.exceptions.ExternalReferenceForbidden(url)
        if path.stat().st_size > MAX_WSDL_BYTES:
            raise _TooLarge(f"{path.name} is larger than {MAX_WSDL_BYTES} bytes")
        return path.read_bytes()

    def _load_remote_data(self, url: str) -> bytes:
        deadline = time.monotonic() + 2 * self.load_timeout
        with closing(self.session.get(url, timeout=self.load_timeout, stream=True)) as response:
            response.raise_for_status()
            return _read_capped(response, MAX_WSDL_BYTES, deadline)

    def post(self, address: str, message: bytes | str, headers: dict[str, str]) -> Any:
        connect, answer = self.operation_timeout
        deadline = time.monotonic() + connect + answer
        with closing(
            self.session.post(
                address, data=message, headers=headers, timeout=(connect, answer), stream=True
            )
        ) as response:
            body = _read_capped(response, MAX_ANSWER_BYTES, deadline)
        log.debug("POST %s: HTTP %d, %d bytes", address, response.status_code, len(body))
        if response.status_code != 200 and not _SOAP_FAULT.search(body):
            # a proxy's error page, or an XML body zeep would turn into a made-up
            # "Unknown fault occured": the status is what tells what happened
            raise zeep.exceptions.TransportError(
                f"HTTP {response.status_code}", status_code=response.status_code
            )
        # requests has no public setter: a streamed response keeps what was read here
        response._content = body
        return response


def _could_not_connect(error: requests.RequestException) -> bool:
    """Whether the request surely never reached the server (so a send did not happen)."""
    if isinstance(error, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = error.args[0] if error.args else None
    reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the cause
    # NewConnectionError (refused, unreachable, DNS) is a ConnectTimeoutError in urllib3 2
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)


def _refusal(error: Exception) -> str:
    """Why a WSDL was refused, in words."""
    if isinstance(error, zeep.exceptions.DTDForbidden):
        return "it has a DOCTYPE (forbidden: entities and external DTDs hide behind one)"
    if isinstance(error, zeep.exceptions.EntitiesForbidden):
        return f"it declares the entity {error.name!r}"
    if isinstance(error, zeep.exceptions.ExternalReferenceForbidden):
        return (
            f"it refers to {str(error.url)[:200]!r}; only the WSDL itself and, for a local "
            "WSDL, files of its own folder are read"
        )
    return str(error)


def _fault_code(fault: zeep.exceptions.Fault) -> str | None:
    """The ``smsFault/code`` of a fault's detail, whatever namespace the endpoint used."""
    detail = fault.detail
    if not isinstance(detail, etree._Element):
        return None
    for element in detail.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname == "smsFault":
            for child in element:
                if isinstance(child.tag, str) and etree.QName(child).localname == "code":
                    return (child.text or "").strip()[:64] or None
    return None


def _soap12_port(client: zeep.Client) -> tuple[str, str]:
    """The names of the WSDL's first SOAP 1.2 service and port (LookupError if none)."""
    for service in client.wsdl.services.values():
        for port in service.ports.values():
            if isinstance(port.binding, Soap12Binding):
                return str(service.name), str(port.name)
    raise LookupError("the WSDL has no SOAP 1.2 port")


def _wall_clock(moment: datetime) -> str:
    """``moment`` as iSMS's ``strtotime`` reads it: Athens time; naive means Athens already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(ATHENS)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class SoapClient(Provider):
    """send and query of an iSMS-compatible SOAP service, with typed answers and errors.

    ``base_url`` is the endpoint (e.g. ``https://sms.example.org/soap``): its WSDL is read
    from ``base_url?wsdl`` and calls go to ``base_url``. Or give ``wsdl`` (a URL or a
    local file, e.g. ``schemas/isms/sms.wsdl``, or the rpc/literal ``sms-rpc.wsdl`` the
    real iSMS publishes), and ``address`` to call another place than the one the WSDL
    names. ``timeout`` (seconds) bounds every call: at most :data:`CONNECT_TIMEOUT` to
    connect, then ``timeout`` for the whole answer; loading the WSDL, 2 × ``timeout``.
    ``soap12`` calls through the WSDL's first SOAP 1.2 port (the bridge's ``SmsPort12``)
    instead of its first port, which speaks SOAP 1.1.

    The iSMS SOAP API has send and query only: :meth:`balance` raises.
    """

    name: ClassVar[str] = PROVIDER
    #: recipients per send: the bridge takes 100 000; one request stays ~20 KB
    max_batch: ClassVar[int] = 1000

    def __init__(
        self,
        base_url: str | None = None,
        username: str = "",
        password: str = "",
        *,
        wsdl: str | Path | None = None,
        address: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        soap12: bool = False,
    ) -> None:
        if wsdl is None and base_url is None:
            raise ValueError("SoapClient needs base_url (the endpoint) or wsdl")
        self._username = username
        self._password = password
        self.address = address or base_url
        if wsdl is None:
            wsdl = f"{base_url}?wsdl"
        local_root = None
        if isinstance(wsdl, Path) or urlparse(wsdl).scheme not in ("http", "https"):
            path = Path(
                unquote(urlparse(str(wsdl)).path) if str(wsdl).startswith("file:") else wsdl
            )
            wsdl = str(path.expanduser().resolve())
            local_root = Path(wsdl).parent
        self.wsdl = wsdl
        self.timeout = timeout
        self.soap12 = soap12
        self._session = requests.Session()
        self._transport = _Transport(local_root, timeout=timeout, session=self._session)
        self._settings = zeep.Settings(
            strict=True,
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
            xml_huge_tree=False,
        )
        self._service: Any = None
        self._parameters: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the credentials
        return f"<SoapClient {self.address or self.wsdl}>"

    def close(self) -> None:
        self._session.close()

    # the WSDL ---------------------------------------------------------------------------

    def _bound(self) -> Any:
        """The service proxy, the WSDL read (once) and checked."""
        with self._lock:
            if self._service is None:
                self._service = self._load()
            return self._service

    def _load(self) -> Any:
        try:
            client = zeep.Client(self.wsdl, transport=self._transport, settings=self._settings)
            service = client.bind(*_soap12_port(client)) if self.soap12 else client.bind()
            if self.address:
                service = client.create_service(str(service._binding.name), self.address)
        except requests.HTTPError as error:
            status = error.response.status_code if error.response is not None else 0
            cls = TemporaryFailure if status >= 500 or status == 429 else PermanentFailure
            raise cls(
                f"cannot load the WSDL: HTTP {status}", provider=self.name, code=status
            ) from None
        except requests.RequestException as error:
            raise TemporaryFailure(
                f"cannot load the WSDL: {type(error).__name__}", provider=self.name, code="wsdl"
            ) from None
        except (
            zeep.exceptions.DTDForbidden,
            zeep.exceptions.EntitiesForbidden,
            zeep.exceptions.ExternalReferenceForbidden,
            _TooLarge,
        ) as error:
            raise PermanentFailure(
                f"WSDL refused: {_refusal(error)}", provider=self.name, code="HostileWsdl"
            ) from None
        except Exception as error:  # zeep raises a dozen types for a WSDL it cannot use
            raise PermanentFailure(
                f"WSDL unusable: {type(error).__name__}: {str(error)[:200]}",
                provider=self.name,
                code="InvalidWsdl",
            ) from None
        location = service._binding_options.get("address") or ""
        if urlparse(location).scheme not in ("http", "https"):
            raise PermanentFailure(
                f"WSDL unusable: service address {location[:100]!r} is not http(s)",
                provider=self.name,
                code="InvalidWsdl",
            )
        for operation in ("send", "query"):
            try:
                body = service._binding.get(operation).input.body
                self._parameters[operation] = frozenset(name for name, _ in body.type.elements)
            except (ValueError, AttributeError, LookupError):
                raise PermanentFailure(
                    f"WSDL unusable: no {operation} operation",
                    provider=self.name,
                    code="InvalidWsdl",
                ) from None
        self.address = location
        return service

    # calls ------------------------------------------------------------------------------

    def _call(self, operation: str, values: dict[str, Any], *, sending: bool) -> Any:
        """``operation`` with ``values``, its errors mapped onto :mod:`smsxml.errors`.

        ``sending``: a send that may have reached the server raises OutcomeUnknown (it
        may have gone out), a query TemporaryFailure (it can simply be asked again).
        """
        service = self._bound()
        unknown_outcome = OutcomeUnknown if sending else TemporaryFailure
        try:
            return getattr(service, operation)(
                username=self._username, password=self._password, **values
            )
        except zeep.exceptions.Fault as fault:
            raise self._fault(fault) from None
        except requests.RequestException as error:
            if _could_not_connect(error):
                raise TemporaryFailure(
                    f"cannot connect: {type(error).__name__}", provider=self.name, code="connect"
                ) from None
            code = "timeout" if isinstance(error, requests.Timeout) else "no-answer"
            raise unknown_outcome(
                f"no answer: {type(error).__name__}", provider=self.name, code=code
            ) from None
        except zeep.exceptions.TransportError as error:
            status = error.status_code
            cls: type[ProviderError]
            if 500 <= status:
                # 502/503: the request was not processed; 500/504 may have been
                cls = TemporaryFailure if status in (502, 503) else unknown_outcome
            elif 200 <= status < 300:
                cls = unknown_outcome  # an answer that is not XML
            elif status in (408, 429):
                cls = TemporaryFailure  # not processed: ask again later
            else:
                cls = PermanentFailure  # 4xx: a wrong address or a refused request
            raise cls(
                f"HTTP {status} without a SOAP answer", provider=self.name, code=status
            ) from None
        except zeep.exceptions.ValidationError as error:
            # raised while zeep builds the request from our values: nothing was sent
            raise BadInput(f"{operation}: {error}") from None
        except (zeep.exceptions.Error, _TooLarge) as error:
            raise unknown_outcome(
                f"malformed answer: {type(error).__name__}", provider=self.name, code="malformed"
            ) from None

    def _fault(self, fault: zeep.exceptions.Fault) -> ProviderError:
        """The typed error of a SOAP fault: by its detail code, else its documented
        faultstring, else Client (permanent) or Server (temporary)."""
        text = (fault.message or "").strip()[:300] or "SOAP fault"
        detail_code = _fault_code(fault)
        documented = fault_of_text(text)
        code = detail_code or (documented.value if documented else None)
        if code is None and text.startswith("Invalid recipient"):
            code = "InvalidRecipient"
        cls = FAULT_ERRORS.get(code or "")
        if cls is None:  # SOAP 1.1 Client/Server, SOAP 1.2 Sender/Receiver
            kind = str(fault.code or "").rpartition(":")[2].split(".")[0]
            cls = TemporaryFailure if kind in ("Server", "Receiver") else PermanentFailure
        return cls(text, provider=self.name, code=detail_code or text)

    def _optional(self, operation: str, values: dict[str, Any], name: str, value: Any) -> None:
        if value is None:
            if name in self._parameters[operation]:
                # an rpc part cannot be optional (WSDL 1.1 has no minOccurs for parts), so
                # zeep insists on one for schedule and dlr_url: SkipValue leaves it out
                values[name] = zeep.xsd.SkipValue
            return
        if name not in self._parameters[operation]:
            raise PermanentFailure(
                f"this endpoint's WSDL has no {name!r} parameter for {operation}",
                provider=self.name,
                code="Unsupported",
            )
        values[name] = value

    # the typed API ----------------------------------------------------------------------

    @overload
    def send(self, message: OutgoingMessage) -> list[Submitted]: ...

    @overload
    def send(
        self,
        sender: str,
        recipients: Sequence[str],
        message: str,
        *,
        coding: Literal["GSM", "UTF-8"] | None = None,
        flash: bool = False,
        schedule: str | datetime | None = None,
        dlr_url: str | None = None,
    ) -> SendResponse: ...

    def send(self, *args: Any, **kwargs: Any) -> list[Submitted] | SendResponse:
        """``send(sender, recipients, message, *, coding, flash, schedule, dlr_url)``: the
        SOAP call, answering its :class:`SendResponse`; ``send(OutgoingMessage)``: the
        :class:`Provider` call, one :class:`Submitted` per recipient (two shapes under one
        name because the SOAP operation and the Provider interface both call it send).

        ``coding`` None picks GSM when GSM-7 can carry the text, else UTF-8.
        ``schedule``: a datetime (sent as Athens wall-clock time) or any ``strtotime``
        text, as is. ``schedule`` and ``dlr_url`` raise PermanentFailure (``Unsupported``)
        when the endpoint's WSDL lacks them (the rpc WSDL does).
        """
        only = [*args, *kwargs.values()] if len(args) + len(kwargs) == 1 else []
        if only and isinstance(only[0], OutgoingMessage) and set(kwargs) <= {"message"}:
            return self._provider_send(only[0])
        return self._submit(*args, **kwargs)

    def _submit(
        self,
        sender: str,
        recipients: Sequence[str],
        message: str,
        *,
        coding: Literal["GSM", "UTF-8"] | None = None,
        flash: bool = False,
        schedule: str | datetime | None = None,
        dlr_url: str | None = None,
    ) -> SendResponse:
        if isinstance(recipients, str):
            raise TypeError("recipients: a sequence of MSISDNs, not one string")
        if coding is None:
            coding = "GSM" if is_gsm7(message) else "UTF-8"
        values: dict[str, Any] = {
            "from": sender,
            "to": {"recipients": list(recipients)},
            "message": message,
            "coding": Coding(coding).value,
            "flash": flash,
        }
        self._bound()
        if isinstance(schedule, datetime):
            schedule = _wall_clock(schedule)
        self._optional("send", values, "schedule", schedule)
        self._optional("send", values, "dlr_url", dlr_url or None)
        answer = self._call("send", values, sending=True)
        message_id = getattr(answer, "id", answer)
        if not isinstance(message_id, str) or not message_id.strip():
            raise OutcomeUnknown(
                f"malformed answer: id {str(message_id)[:40]!r}",
                provider=self.name,
                code="malformed",
            )
        return SendResponse(id=message_id.strip())

    def query(self, message_id: str, mobile: str) -> QueryResponse:
        """Where message ``message_id`` stands for recipient ``mobile``."""
        answer = self._call("query", {"message_id": message_id, "mobile": mobile}, sending=False)
        status = getattr(answer, "status", answer)
        known = _STATUSES.get(str(status).strip().lower()) if isinstance(status, str) else None
        if known is None:
            raise TemporaryFailure(
                f"malformed answer: status {str(status)[:40]!r}",
                provider=self.name,
                code="malformed",
            )
        return QueryResponse(status=known)

    # the Provider interface -------------------------------------------------------------

    def _provider_send(self, message: OutgoingMessage) -> list[Submitted]:
        """One send for every recipient; they share the message id. A callback URL the
        endpoint's WSDL has no place for is dropped: the tracker polls instead."""
        if len(message.recipients) > self.max_batch:
            raise ValueError(f"{len(message.recipients)} recipients, at most {self.max_batch}")
        self._bound()
        unicode = message.unicode or not is_gsm7(message.text)
        dlr_url = message.dlr_url if "dlr_url" in self._parameters["send"] else None
        answer = self._submit(
            message.sender,
            message.recipients,
            message.text,
            coding="UTF-8" if unicode else "GSM",
            flash=message.flash,
            schedule=message.schedule,
            dlr_url=dlr_url,
        )
        return [Submitted(recipient, answer.id) for recipient in message.recipients]

    def balance(self) -> Balance:
        """Not available: the iSMS SOAP API has send and query only (its HTTP API,
        :class:`~smsxml.providers.isms.Isms`, has credits)."""
        raise PermanentFailure(
            "the iSMS SOAP API has no balance call (only send and query)",
            provider=self.name,
            code="Unsupported",
        )

    def statuses(self, submitted: Sequence[Submitted]) -> list[StatusUpdate]:
        """One query per (message id, recipient). "No such message or recipient." means
        the endpoint never took that recipient: reported Failed, that text the detail."""
        updates = []
        for item in submitted:
            try:
                status = self.query(item.provider_id, item.recipient).status
            except PermanentFailure as error:
                if error.code != "NoSuchMessage" and error.text != "No such message or recipient.":
                    raise
                updates.append(
                    StatusUpdate(item.provider_id, DeliveryState.FAILED, item.recipient, error.text)
                )
            else:
                state = DeliveryState(status.value)
                updates.append(StatusUpdate(item.provider_id, state, item.recipient, status.value))
        return updates

    @staticmethod
    def parse_delivery_report(fields: Mapping[str, Any]) -> StatusUpdate:
        """A delivery report POSTed to the ``dlr_url`` of a send: the bridge's form
        (``message_id``, ``mobile``, ``status``) or iSMS's (``mid``, ``mobile``,
        ``status``, ``timestamp``). Having this method makes the bridge hand this
        provider a callback URL."""

        def field(*names: str) -> str:
            for name in names:
                value = fields.get(name)
                if isinstance(value, list | tuple):
                    value = value[0] if value else None
                if value is not None and str(value).strip():
                    return str(value).strip()
            raise BadInput(f"delivery report without {names[0]!r}")

        status = field("status")
        states = {state.value.lower(): state for state in DeliveryState}
        if status.lower() not in states:
            raise BadInput(f"delivery report with unknown status {status[:40]!r}")
        return StatusUpdate(field("message_id", "mid"), states[status.lower()], field("mobile"))
