"""The SOAP endpoint: every request is parsed once by the hardened parser and checked
against ``schemas/isms/sms.xsd`` before anything acts on it; then one of two readers
calls the operation, and the endpoint writes the answer.

One implementation: the operations are :class:`~.spyne_service.SmsService`'s, declared
once in spyne (:mod:`.spyne_service`). The fast lane (the default) reads the validated
payload into the very arguments spyne would make, by the declaration
(:data:`~.spyne_service.OPERATIONS`), and calls the same function: spyne costs ~150 µs a
call and ~5 µs per recipient (research/perf-calibration.md §1), too much for the
throughput the bridge promises. ``fast_lane=False`` lets spyne read and call instead; its
answer is read back for the value, or for the fault. Either way the answer comes from
one template and every fault from :func:`fault_document`, so the two lanes answer alike
(tests/server/test_spyne_service.py).

A request the schema refuses is answered with the fault the operation itself would
give, found by rehearsing it (:class:`_Rehearsal`): the bridge's checks, in the bridge's
order, credentials first; the schema's message only if the bridge would have accepted it.

WS-I Basic Profile on the wire: dispatch on the body element (a SOAPAction of ``"*"``,
empty or missing works), ``xsi:type`` annotations accepted, faults as SOAP 1.1 Client or
Server faults with the documented faultstring and a ``tns:smsFault`` detail. The raw
request never reaches a log.

SOAP 1.2 on the same address: the envelope's namespace says the version (read once, in
:meth:`SoapEndpoint._payload`); everything between is the same code, and the answer is
written in the request's version: ``application/soap+xml``, faults with Code (Sender or
Receiver, the WS-Security code as Subcode), Reason and the same Detail, HTTP 400 for a
Sender fault (SOAP 1.2 Part 2 §7.5.1). spyne is handed SOAP 1.1 whatever came in (its
Soap12 is experimental, research/soap-toolkit.md §1.4).

A WS-Security header is read here, before either lane (:mod:`.wssecurity`): its token's
account is what empty body credentials mean, in both lanes alike (``accounts.VERIFIED``).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn, cast
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from smsxml import xmlsafe
from smsxml.errors import BadInput
from smsxml.ns import SOAP12_ENV, SOAP_ENV, WSSE, XSI
from smsxml.server.accounts import VERIFIED
from smsxml.server.bridge import FAULTS, Bridge, SmsFault
from smsxml.server.clock import utcnow
from smsxml.server.logins import CLIENT
from smsxml.server.metrics import Metrics
from smsxml.server.soapforms import (
    SOAP11,
    SOAP12,
    Envelope,
    Reading,
    may_use,
)
from smsxml.server.soapforms import read as read_form
from smsxml.server.spyne_service import OPERATIONS, Operation, bare_context, make_spyne_app
from smsxml.server.store import Store
from smsxml.server.wsdl import TNS
from smsxml.server.wssecurity import (
    SecurityHeader,
    WsSecurity,
    WsSecurityFault,
    read_security,
    response_header,
)

__all__ = ["SOAP_LIMITS", "EnvelopeFault", "SoapEndpoint", "fault_document"]

XSI_TYPE = f"{{{XSI}}}type"
_ANNOTATED = etree.XPath("descendant-or-self::*[@xsi:type]", namespaces={"xsi": XSI})
#: a send may carry tens of thousands of recipients; everything else stays CXF-tight
SOAP_LIMITS = xmlsafe.DEFAULT_LIMITS.tightened(
    max_bytes=16 * 1024 * 1024, max_children=100_000, max_elements=200_000
)

# Both versions' templates bind ``soap`` to their envelope namespace, so that the
# Security header (wssecurity.response_header) goes in before ``<soap:Body>`` in either.
_RESPONSE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<soap:Envelope xmlns:soap="{env}"><soap:Body>'
    f'<tns:{{op}}Response xmlns:tns="{TNS}"><{{p}}{{field}}>{{value}}</{{p}}{{field}}>'
    "</tns:{op}Response>"
    "</soap:Body></soap:Envelope>"
)
_FAULT = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<soap:Envelope xmlns:soap="{SOAP_ENV}">{{header}}<soap:Body><soap:Fault{{xmlns}}>'
    "<faultcode>{faultcode}</faultcode><faultstring>{text}</faultstring>"
    f'<detail><tns:smsFault xmlns:tns="{TNS}"><{{p}}code>{{code}}</{{p}}code>'
    "<{p}message>{text}</{p}message>"
    "</tns:smsFault></detail></soap:Fault></soap:Body></soap:Envelope>"
)
#: SOAP 1.2 Part 1 §5.4: Code/Value (and a Subcode), Reason/Text in a language, Detail
_FAULT12 = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<soap:Envelope xmlns:soap="{SOAP12_ENV}">{{header}}<soap:Body><soap:Fault{{xmlns}}>'
    "<soap:Code><soap:Value>soap:{value}</soap:Value>{subcode}</soap:Code>"
    '<soap:Reason><soap:Text xml:lang="en">{text}</soap:Text></soap:Reason>'
    f'<soap:Detail><tns:smsFault xmlns:tns="{TNS}"><{{p}}code>{{code}}</{{p}}code>'
    "<{p}message>{text}</{p}message>"
    "</tns:smsFault></soap:Detail></soap:Fault></soap:Body></soap:Envelope>"
)
#: what a VersionMismatch says we speak (SOAP 1.2 Part 1 §5.4.7; Appendix A puts it in a
#: SOAP 1.1 VersionMismatch too), the newer first
_UPGRADE = (
    f'<soap:Header><u:Upgrade xmlns:u="{SOAP12_ENV}">'
    f'<u:SupportedEnvelope xmlns:v="{SOAP12_ENV}" qname="v:Envelope"/>'
    f'<u:SupportedEnvelope xmlns:v="{SOAP_ENV}" qname="v:Envelope"/>'
    "</u:Upgrade></soap:Header>"
)
#: the body element → its operation, as SmsService declares them
_OPERATIONS = {f"{{{TNS}}}{name}": operation for name, operation in OPERATIONS.items()}


def _prefix(qualified: bool) -> str:
    """The prefix of an answer's local elements, in the form the request was written in
    (server/soapforms.py): a client made from the qualified WSDL reads only ``tns:id``."""
    return "tns:" if qualified else ""


def _answer_template(
    operation: Operation, envelope: Envelope, qualified: bool
) -> tuple[bytes, bytes]:
    """What comes before and after the value in an answer to ``operation``."""
    head, _, tail = _RESPONSE.format(
        env=envelope.namespace,
        op=operation.name,
        field=operation.answer,
        value="\0",
        p=_prefix(qualified),
    ).partition("\0")
    return head.encode(), tail.encode()


#: (operation, envelope namespace, qualified) → the answer around its value, made once
_ANSWERS = {
    (operation.name, envelope.namespace, qualified): _answer_template(
        operation, envelope, qualified
    )
    for operation in OPERATIONS.values()
    for envelope in (SOAP11, SOAP12)
    for qualified in (False, True)
}


class EnvelopeFault(SmsFault):
    """A fault of the envelope, not of the operation: its SOAP code is ``kind``
    (VersionMismatch or MustUnderstand), its detail InvalidRequest; ``not_understood``
    names the mandatory headers a MustUnderstand fault is about."""

    def __init__(self, kind: str, text: str, not_understood: Sequence[etree.QName] = ()) -> None:
        super().__init__("InvalidRequest", text)
        self.kind = kind
        self.not_understood = tuple(not_understood)


def _fault_header(fault: SmsFault, envelope: Envelope) -> str:
    """The header of a fault answer: the versions we speak after a VersionMismatch, and
    in SOAP 1.2 one NotUnderstood per mandatory header (Part 1 §5.4.8)."""
    if not isinstance(fault, EnvelopeFault):
        return ""
    if fault.kind == "VersionMismatch":
        return _UPGRADE
    if envelope is not SOAP12 or not fault.not_understood:
        return ""
    blocks = "".join(
        f'<soap:NotUnderstood xmlns:h={quoteattr(name.namespace)} qname="h:{name.localname}"/>'
        if name.namespace
        else f'<soap:NotUnderstood qname="{name.localname}"/>'
        for name in fault.not_understood
    )
    return f"<soap:Header>{blocks}</soap:Header>"


def fault_document(fault: SmsFault, qualified: bool = False, envelope: Envelope = SOAP11) -> bytes:
    """``fault`` as a fault answer in ``envelope``'s version. SOAP 1.1: faultcode Client or
    Server (an :class:`EnvelopeFault`'s kind; a WS-Security fault's ``wsse:`` QName).
    SOAP 1.2: Code Sender or Receiver (or the kind), the WS-Security QName as Subcode."""
    wsse_code = fault.wsse_code if isinstance(fault, WsSecurityFault) else None
    kind = fault.kind if isinstance(fault, EnvelopeFault) else None
    common = {
        "header": _fault_header(fault, envelope),
        "xmlns": f' xmlns:wsse="{WSSE}"' if wsse_code else "",
        "text": escape(fault.text),
        "code": fault.code,
        "p": _prefix(qualified),
    }
    if envelope is SOAP12:
        subcode = (
            f"<soap:Subcode><soap:Value>wsse:{wsse_code}</soap:Value></soap:Subcode>"
            if wsse_code
            else ""
        )
        value = kind or ("Sender" if fault.client else "Receiver")
        return _FAULT12.format(value=value, subcode=subcode, **common).encode()
    faultcode = (
        f"wsse:{wsse_code}"
        if wsse_code
        else f"soap:{kind or ('Client' if fault.client else 'Server')}"
    )
    return _FAULT.format(faultcode=faultcode, **common).encode()


def fault_status(fault: SmsFault, envelope: Envelope) -> str:
    """The HTTP status of a fault answer: 500 for every SOAP 1.1 fault (SOAP 1.1 §6.2);
    in SOAP 1.2, 400 for a Sender fault, 500 for the others (Part 2 §7.5.1, Table 20)."""
    if envelope is SOAP12 and fault.client and not isinstance(fault, EnvelopeFault):
        return "400 Bad Request"
    return "500 Internal Server Error"


def _declared(environ: dict[str, Any]) -> Envelope:
    """The version the request's media type declares: what a fault is written in when
    the envelope itself cannot be read (too large, not XML)."""
    media_type = str(environ.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()
    return SOAP12 if media_type == SOAP12.media_type else SOAP11


def _in_soap11(payload: etree._Element) -> bytes:
    """``payload`` in a SOAP 1.1 envelope of its own, for spyne: its Soap12 protocol is
    experimental, it refuses xsi:types it does not know (SOAP-ENC:Struct), reads only the
    form it was read into and decodes a body as UTF-8 whatever its XML declaration says;
    the header was already dealt with here. The envelope declares every prefix in scope
    of ``payload``: ``xsi:type="xsd:string"`` names one in an attribute's value, which
    moving an element does not carry. Moves ``payload``."""
    nsmap = {**payload.nsmap, "soap11env": SOAP_ENV}
    envelope = etree.Element(SOAP11.tag("Envelope"), nsmap=nsmap)
    etree.SubElement(envelope, SOAP11.tag("Body")).append(payload)
    return etree.tostring(envelope)


def _spyne_fault(fault: etree._Element) -> SmsFault:
    """spyne's SOAP 1.1 fault read back: ``soap11env:Client.NoRecipients`` and its
    faultstring, as :class:`~.spyne_service.SmsApplication` wrote them. A fault of
    spyne's own (``Client.SchemaValidationError``) is an invalid request; anything else
    on the server's side, the contract's ServerError."""
    faultcode = (fault.findtext("faultcode") or "").rpartition(":")[2]
    side, _, code = faultcode.partition(".")
    client = side == "Client"
    if code in FAULTS:
        return SmsFault(code, fault.findtext("faultstring"), client=client)
    if client:
        return SmsFault("InvalidRequest", fault.findtext("faultstring"))
    return SmsFault("ServerError", client=False)


def _drop_xsi_types(body: bytes, payload: etree._Element) -> None:
    """Remove ``xsi:type`` annotations (PHP SoapClient and Axis put one on every value): the
    schema uses no type substitution, so they say nothing the service needs, yet libxml2
    refuses e.g. ``xsd:string`` for ``tns:Coding``. The byte check keeps the common,
    unannotated request from paying for the search (:func:`may_use`)."""
    if not may_use(body, XSI):
        return
    for element in _ANNOTATED(payload):
        del element.attrib[XSI_TYPE]


def _empty_credentials(payload: etree._Element) -> None:
    """Give a payload whose credentials the WS-Security header carries the empty
    ``username`` and ``password`` the schema requires, where the client left them out
    (JAX-WS omits a required element passed as null)."""
    children = [c for c in payload if isinstance(c.tag, str)]
    names = [c.tag for c in children[:2]]
    if names == ["username", "password"]:
        return
    if "username" not in names:
        payload.insert(0, etree.Element("username"))
    if "password" not in names:
        username = next(c for c in payload if c.tag == "username")
        username.addnext(etree.Element("password"))


class _Passed(Exception):
    """A rehearsed operation passed every check: the bridge was about to act."""


class _Rehearsal:
    """The store of a bridge that rehearses an operation on a request the schema refused:
    the real accounts (credentials first, as always; a failed login counts), and
    :class:`_Passed` where the bridge would store a send or look a message up. It stands
    in for the three parts of :class:`Store` that :class:`Bridge` uses to answer; a bridge
    reaching for another would fail here loudly (tests/server/test_soap.py)."""

    def __init__(self, store: Store) -> None:
        self.accounts = store.accounts
        self.acceptance = self

    def accept(self, *args: object, **kwargs: object) -> NoReturn:
        raise _Passed

    def status(self, *args: object) -> NoReturn:
        raise _Passed


class SoapEndpoint:
    """The WSGI application behind the service address (POST only)."""

    def __init__(
        self, bridge: Bridge, *, fast_lane: bool = True, metrics: Metrics | None = None
    ) -> None:
        self.bridge = bridge
        self.fast_lane = fast_lane
        self.metrics = metrics or Metrics()
        self.spyne = make_spyne_app(bridge)
        self._context = bare_context(bridge)  # how the fast lane calls the operations
        # the bridge's own checks, without its effects (see _Rehearsal)
        self._rehearsal = bare_context(Bridge(cast(Store, _Rehearsal(bridge.store))))
        self.schema = xmlsafe.load_schema("isms/sms.xsd")
        self.wss = WsSecurity(bridge.store.accounts)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        client = CLIENT.set(environ)  # whom a failed login counts against (both lanes)
        verified = VERIFIED.set(None)  # the account of this request's WS-Security header
        try:
            return self._respond(environ, start_response)
        finally:
            VERIFIED.reset(verified)
            CLIENT.reset(client)

    def _respond(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        operation = "unknown"
        reading = Reading(envelope=_declared(environ))  # until the envelope says otherwise
        try:
            body = self._read(environ)
            method, payload, security = self._payload(body, reading)
            operation = method.name
            if self.fast_lane:
                value = method.call(self._context, *method.read(payload))
            else:
                value = self._spyne(environ, method, payload)
            stamped = security is not None and security.timestamp
            status, answer = "200 OK", self._answer(method, value, reading, stamped)
        except SmsFault as fault:
            status = fault_status(fault, reading.envelope)
            answer = fault_document(fault, reading.qualified, reading.envelope)
            self.metrics.fault(operation, fault.code)
        except Exception:  # never a traceback to the client, never the request in a log
            self.metrics.log.exception("internal error in %s", operation)
            status = "500 Internal Server Error"
            answer = fault_document(
                SmsFault("ServerError", client=False), reading.qualified, reading.envelope
            )
            self.metrics.fault(operation, "ServerError")
        self.metrics.request(operation, time.perf_counter() - started)
        start_response(
            status,
            [
                ("Content-Type", reading.envelope.content_type),
                ("Content-Length", str(len(answer))),
            ],
        )
        return [answer]

    @staticmethod
    def _read(environ: dict[str, Any]) -> bytes:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = SOAP_LIMITS.max_bytes or 0
        if length > limit:
            raise SmsFault("InvalidRequest", f"Request larger than {limit} bytes.")
        stream = environ["wsgi.input"]
        body: bytes = stream.read(length) if length else stream.read(limit + 1)
        return body

    def _stamp(self, xmlns: str = "") -> bytes:
        """The response's Security header: a Timestamp valid for the freshness window
        (``xmlns``: declare the soap prefix, for a header that stands alone)."""
        return response_header(utcnow(), self.wss.settings.window, xmlns=xmlns)

    def _payload(
        self, body: bytes, reading: Reading
    ) -> tuple[Operation, etree._Element, SecurityHeader | None]:
        """The operation, its (schema-valid) payload element and the WS-Security header
        read (its token's account is then :data:`VERIFIED`); or the right fault.
        ``reading`` learns the request's envelope version and form (qualified or not) as
        soon as each is known, for the fault too."""
        try:
            envelope = xmlsafe.parse(body, limits=SOAP_LIMITS, refuse_pis=True)  # SOAP 1.1 §3
        except BadInput as error:
            problem = error.problems[0]
            raise SmsFault("InvalidRequest", f"Invalid request: {problem.message}") from None
        # the one place the version is read: everything after is written in it
        version = next((v for v in (SOAP11, SOAP12) if envelope.tag == v.tag("Envelope")), None)
        if version is None:
            raise EnvelopeFault(
                "VersionMismatch", "Invalid request: not a SOAP 1.1 or SOAP 1.2 envelope."
            )
        reading.envelope = version
        header = envelope.find(version.tag("Header"))
        security = read_security(header, version)
        # mandatory headers for us (no actor/role, "next", the ultimate receiver) other
        # than the Security header just read; those for other nodes are not ours to judge
        mandatory = [
            etree.QName(h)
            for h in (header if header is not None else ())
            if isinstance(h.tag, str)
            and h.get(version.tag("mustUnderstand")) in ("1", "true")
            and h.get(version.target) in version.ours
            and not (security is not None and h.tag == f"{{{WSSE}}}Security")
        ]
        if mandatory:
            raise EnvelopeFault(
                "MustUnderstand", "A mandatory SOAP header is not understood.", mandatory
            )
        body_element = envelope.find(version.tag("Body"))
        payload = None if body_element is None else next(iter(body_element), None)
        method = _OPERATIONS.get(str(payload.tag)) if payload is not None else None
        if method is None or payload is None:
            name = etree.QName(payload).localname if payload is not None else "nothing"
            raise SmsFault("InvalidRequest", f"Unknown operation: {name}.")
        read_form(body, payload, TNS, reading)  # qualified, SOAP-encoded, nil → one form
        # the header's credentials first, as always; once the form is known, so that a
        # fault's detail is in the form the client reads (JAX-WS reads only that one)
        if security is not None and header is not None:
            account = self.wss.login(header, security)
            if account is not None:
                VERIFIED.set(account)  # reset by __call__ when the request is answered
                _empty_credentials(payload)
        _drop_xsi_types(body, payload)
        if not self.schema.validate(payload):
            message = self.schema.error_log[0].message if self.schema.error_log else "invalid"
            try:  # the fault the operation gives, if any (raised from here), comes first
                method.call(self._rehearsal, *method.read(payload))
            except _Passed:
                pass
            raise SmsFault("InvalidRequest", f"Invalid request: {message[:300]}")
        return method, payload, security

    def _answer(self, method: Operation, value: str, reading: Reading, stamped: bool) -> bytes:
        """The answer to ``method``: its one element holding ``value``, in the request's
        version and form, with a Security Timestamp if ``stamped`` (the request had one)."""
        head, tail = _ANSWERS[method.name, reading.envelope.namespace, reading.qualified]
        answer = head + escape(value).encode() + tail
        if stamped:  # the template's only <soap:Body>
            answer = answer.replace(b"<soap:Body>", self._stamp() + b"<soap:Body>", 1)
        return answer

    def _spyne(self, environ: dict[str, Any], method: Operation, payload: etree._Element) -> str:
        """spyne reads the (checked) payload and calls ``method``: the value it answered,
        or the SmsFault of its fault answer."""
        body = _in_soap11(payload)
        inner = dict(environ)
        inner["wsgi.input"] = io.BytesIO(body)
        inner["CONTENT_LENGTH"] = str(len(body))
        inner["CONTENT_TYPE"] = SOAP11.content_type
        inner["REQUEST_METHOD"] = "POST"
        inner["QUERY_STRING"] = ""

        def spyne_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return lambda data: None  # the body is the iterable spyne returns

        answer = xmlsafe.parse(b"".join(self.spyne(inner, spyne_start)))
        content = answer.find(f"{SOAP11.tag('Body')}/*")
        if content is not None and content.tag == SOAP11.tag("Fault"):
            raise _spyne_fault(content)
        value = content.find(f"{{*}}{method.answer}") if content is not None else None
        if value is None:
            raise RuntimeError(f"spyne answered {method.name} without {method.answer}")
        return value.text or ""
