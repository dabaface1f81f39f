"""The SOAP endpoint: every request is parsed once by the hardened parser and checked
against ``schemas/isms/sms.xsd`` before anything acts on it; then either the fast lane
or spyne answers it.

The fast lane reads the (already validated) payload straight from the tree and writes the
answer from a template: spyne costs ~150 µs a call and ~5 µs per recipient
(research/perf-calibration.md §1), too much for the throughput the bridge promises. Both
call the same :class:`~smsxml.server.bridge.Bridge`, and the test suite runs against both
(``fast_lane=False`` sends everything through spyne).

WS-I Basic Profile on the wire: dispatch on the body element (a SOAPAction of ``"*"``,
empty or missing works), ``xsi:type`` annotations accepted, faults as SOAP 1.1 Client or
Server faults with the documented faultstring and a ``tns:smsFault`` detail. The raw
request never reaches a log.

SOAP 1.2 on the same address: the envelope's namespace says the version (read once, in
:meth:`SoapEndpoint._payload`); everything between is the same code, and the answer is
written in the request's version: ``application/soap+xml``, faults with Code (Sender or
Receiver, the WS-Security code as Subcode), Reason and the same Detail, HTTP 400 for a
Sender fault (SOAP 1.2 Part 2 §7.5.1). spyne is handed SOAP 1.1 whatever came in (its
Soap12 is experimental, research/soap-toolkit.md §1.4), and its answer is rewritten.

A WS-Security header is read here, before either lane (:mod:`.wssecurity`): its token's
account is what empty body credentials mean, in both lanes alike (``accounts.VERIFIED``).
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from smsxml import xmlsafe
from smsxml.errors import BadInput
from smsxml.ns import SOAP12_ENV, SOAP_ENV, WSSE, XSI
from smsxml.server.accounts import VERIFIED
from smsxml.server.bridge import Bridge, SendRequest, SmsFault
from smsxml.server.clock import utcnow
from smsxml.server.logins import CLIENT
from smsxml.server.metrics import Metrics
from smsxml.server.soapforms import (
    SOAP11,
    SOAP12,
    Envelope,
    Reading,
    qualify,
)
from smsxml.server.soapforms import read as read_form
from smsxml.server.spyne_service import make_spyne_app
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
_OPERATIONS = {f"{{{TNS}}}send": "send", f"{{{TNS}}}query": "query"}


def _prefix(qualified: bool) -> str:
    """The prefix of an answer's local elements, in the form the request was written in
    (server/soapforms.py): a client made from the qualified WSDL reads only ``tns:id``."""
    return "tns:" if qualified else ""


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
    """``payload`` in a SOAP 1.1 envelope of its own, for spyne (its Soap12 protocol is
    experimental; the header was already dealt with here). Moves ``payload``."""
    envelope = etree.Element(SOAP11.tag("Envelope"), nsmap={"soap": SOAP_ENV})
    etree.SubElement(envelope, SOAP11.tag("Body")).append(payload)
    return etree.tostring(envelope)


def _spyne_fault(fault: etree._Element) -> SmsFault:
    """spyne's SOAP 1.1 fault read back: its faultstring, the detail's code, and whose
    fault it is (``soap11env:Client`` or ``Client.SomeError`` → the client's)."""
    faultcode = (fault.findtext("faultcode") or "").rpartition(":")[2]
    client = faultcode.split(".", 1)[0] == "Client"
    code = fault.findtext(f"detail/{{{TNS}}}smsFault/code")
    text = fault.findtext("faultstring")
    return SmsFault(code or ("InvalidRequest" if client else "ServerError"), text, client=client)


def _drop_xsi_types(body: bytes, payload: etree._Element) -> bool:
    """Remove ``xsi:type`` annotations (PHP SoapClient and Axis put one on every value): the
    schema uses no type substitution, so they say nothing the service needs, yet libxml2
    refuses e.g. ``xsd:string`` for ``tns:Coding``. True if any was removed; the raw check
    keeps the common, unannotated request from paying for the search."""
    if XSI.encode() not in body:
        return False
    annotated = _ANNOTATED(payload)
    for element in annotated:
        del element.attrib[XSI_TYPE]
    return bool(annotated)


def _empty_credentials(payload: etree._Element) -> bool:
    """Give a payload whose credentials the WS-Security header carries the empty
    ``username`` and ``password`` the schema requires, where the client left them out
    (JAX-WS omits a required element passed as null). True if the tree changed."""
    children = [c for c in payload if isinstance(c.tag, str)]
    names = [c.tag for c in children[:2]]
    if names == ["username", "password"]:
        return False
    if "username" not in names:
        payload.insert(0, etree.Element("username"))
    if "password" not in names:
        username = next(c for c in payload if c.tag == "username")
        username.addnext(etree.Element("password"))
    return True


def _documented_fault(operation: str, fields: dict[str, etree._Element]) -> SmsFault | None:
    """The documented faultstring for a request that lacks what that string names (checked
    in the bridge's order, so both lanes and a schema-valid request fault alike)."""
    if "username" not in fields or "password" not in fields:
        return SmsFault("AuthenticationError")
    if operation == "send":
        to = fields.get("to")
        if to is None or not any((r.text or "").strip() for r in to):
            return SmsFault("NoRecipients")
        if "from" not in fields:
            return SmsFault("InvalidSender")
        coding = fields.get("coding")
        if coding is None or coding.text not in ("GSM", "UTF-8"):
            return SmsFault("InvalidCoding", "Invalid coding: use GSM or UTF-8.")
    else:
        if "message_id" not in fields:
            return SmsFault("NoMessageId")
        if "mobile" not in fields:
            return SmsFault("NoMobile")
    return None


class SoapEndpoint:
    """The WSGI application behind the service address (POST only)."""

    def __init__(
        self, bridge: Bridge, *, fast_lane: bool = True, metrics: Metrics | None = None
    ) -> None:
        self.bridge = bridge
        self.fast_lane = fast_lane
        self.metrics = metrics or Metrics()
        self.spyne = make_spyne_app(bridge)
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
            operation, payload, cleaned, security = self._payload(body, reading)
            stamped = security is not None and security.timestamp
            if self.fast_lane:
                status, answer = "200 OK", self._answer(operation, payload, reading)
                if stamped:  # the template's only <soap:Body>
                    answer = answer.replace(b"<soap:Body>", self._stamp() + b"<soap:Body>", 1)
            else:
                # spyne refuses xsi:types it does not know (SOAP-ENC:Struct) and reads
                # only the form it was read into; it decodes a body as UTF-8 whatever its
                # XML declaration says (a UTF-16 request was a traceback and ServerError)
                utf8 = (payload.getroottree().docinfo.encoding or "").upper() == "UTF-8"
                if reading.envelope is SOAP12:
                    body = _in_soap11(payload)
                elif cleaned or reading.changed or not utf8:
                    body = etree.tostring(payload.getroottree())
                return self._spyne(
                    environ, start_response, body, operation, started, reading, stamped
                )
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
        return stream.read(length) if length else stream.read(limit + 1)

    def _stamp(self, xmlns: str = "") -> bytes:
        """The response's Security header: a Timestamp valid for the freshness window
        (``xmlns``: declare the soap prefix, for a header that stands alone)."""
        return response_header(utcnow(), self.wss.settings.window, xmlns=xmlns)

    def _payload(
        self, body: bytes, reading: Reading
    ) -> tuple[str, etree._Element, bool, SecurityHeader | None]:
        """The operation, its (schema-valid) payload element, whether xsi:type
        annotations were removed from it and the WS-Security header read (its token's
        account is then :data:`VERIFIED`); or the right fault. ``reading`` learns the
        request's envelope version and form (qualified or not) as soon as each is known,
        for the fault too."""
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
        operation = _OPERATIONS.get(str(payload.tag)) if payload is not None else None
        if operation is None or payload is None:
            name = etree.QName(payload).localname if payload is not None else "nothing"
            raise SmsFault("InvalidRequest", f"Unknown operation: {name}.")
        read_form(body, payload, TNS, reading)  # qualified, SOAP-encoded, nil → one form
        # the header's credentials first, as always; once the form is known, so that a
        # fault's detail is in the form the client reads (JAX-WS reads only that one)
        if security is not None and header is not None:
            account = self.wss.login(header, security)
            if account is not None:
                VERIFIED.set(account)  # reset by __call__ when the request is answered
                reading.changed |= _empty_credentials(payload)
        cleaned = _drop_xsi_types(body, payload)
        if not self.schema.validate(payload):
            fields = {etree.QName(c).localname: c for c in payload if isinstance(c.tag, str)}
            documented = _documented_fault(operation, fields)
            if documented is not None:
                if documented.code != "AuthenticationError":  # credentials first, as always
                    self.bridge.authenticate(fields["username"].text, fields["password"].text)
                raise documented
            message = self.schema.error_log[0].message if self.schema.error_log else "invalid"
            raise SmsFault("InvalidRequest", f"Invalid request: {message[:300]}")
        return operation, payload, cleaned, security

    def _answer(self, operation: str, payload: etree._Element, reading: Reading) -> bytes:
        """The fast lane: read the validated payload directly, answer from a template."""
        env, prefix = reading.envelope.namespace, _prefix(reading.qualified)
        fields = {c.tag: c for c in payload if isinstance(c.tag, str)}

        def text(name: str) -> str:
            element = fields.get(name)
            return (element.text or "") if element is not None else ""

        if operation == "query":
            value = self.bridge.query(
                text("username"), text("password"), text("message_id"), text("mobile")
            )
            return _RESPONSE.format(
                env=env, op="query", field="status", value=escape(value), p=prefix
            ).encode()
        request = SendRequest(
            username=text("username"),
            password=text("password"),
            sender=text("from"),
            recipients=[r.text or "" for r in fields["to"]],
            message=text("message"),
            coding=text("coding").strip(),
            flash=text("flash").strip() in ("true", "1"),
            schedule=text("schedule") or None,
            dlr_url=text("dlr_url").strip() or None,
        )
        value = self.bridge.send(request)
        return _RESPONSE.format(
            env=env, op="send", field="id", value=escape(value), p=prefix
        ).encode()

    def _spyne(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        body: bytes,
        operation: str,
        started: float,
        reading: Reading,
        stamped: bool = False,
    ) -> Iterable[bytes]:
        """Hand the checked request to spyne (the body was consumed: give it a copy);
        its answer (written unqualified, in SOAP 1.1) is put in the request's form and
        version before it leaves, with a Security Timestamp if ``stamped`` (the request
        carried one)."""
        inner = dict(environ)
        inner["wsgi.input"] = io.BytesIO(body)
        inner["CONTENT_LENGTH"] = str(len(body))
        inner["REQUEST_METHOD"] = "POST"
        inner["QUERY_STRING"] = ""
        if reading.envelope is SOAP12:  # spyne is given SOAP 1.1 (see _in_soap11)
            inner["CONTENT_TYPE"] = SOAP11.content_type
        captured: list[tuple[str, list[tuple[str, str]]]] = []

        def spyne_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.append((status, headers))
            return lambda data: None  # the body is the iterable spyne returns

        answer = b"".join(self.spyne(inner, spyne_start))
        status, headers = captured[0]
        if not status.startswith("200"):
            detail = xmlsafe.parse(answer).find(f".//{{{TNS}}}smsFault/code")
            self.metrics.fault(
                operation, (detail.text if detail is not None else None) or "ServerError"
            )
        if reading.envelope is SOAP12:
            status, answer = self._in_soap12(answer, reading.qualified, stamped)
            headers = [("Content-Type", SOAP12.content_type)]
        elif stamped and status.startswith("200"):
            document = xmlsafe.parse(answer)
            document.insert(0, etree.fromstring(self._stamp(f' xmlns:soap="{SOAP_ENV}"')))
            answer = etree.tostring(document, xml_declaration=True, encoding="UTF-8")
        if reading.qualified and reading.envelope is SOAP11:
            document = xmlsafe.parse(answer)
            soap_body = document.find(f"{{{SOAP_ENV}}}Body")
            if soap_body is not None and len(soap_body):
                wrapper = soap_body[0]
                if wrapper.tag == f"{{{SOAP_ENV}}}Fault":
                    for detail in wrapper.iterfind(f"detail/{{{TNS}}}smsFault"):
                        qualify(detail)
                else:
                    qualify(wrapper)
            answer = etree.tostring(document, xml_declaration=True, encoding="UTF-8")
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(answer)))])
        self.metrics.request(operation, time.perf_counter() - started)
        return [answer]

    def _in_soap12(self, answer: bytes, qualified: bool, stamped: bool) -> tuple[str, bytes]:
        """spyne's SOAP 1.1 answer as SOAP 1.2: the same response element in a 1.2
        envelope, or its fault read back and written as every SOAP 1.2 fault is."""
        content = xmlsafe.parse(answer).find(f"{SOAP11.tag('Body')}/*")
        if content is None or content.tag == SOAP11.tag("Fault"):
            fault = (
                _spyne_fault(content)
                if content is not None
                else SmsFault("ServerError", client=False)
            )
            return fault_status(fault, SOAP12), fault_document(fault, qualified, SOAP12)
        content = copy.deepcopy(content)  # on its own, without spyne's namespace declarations
        etree.cleanup_namespaces(content)
        if qualified:
            qualify(content)
        header = self._stamp() if stamped else b""
        return "200 OK", (
            b'<?xml version="1.0" encoding="UTF-8"?>\n'
            + f'<soap:Envelope xmlns:soap="{SOAP12_ENV}">'.encode()
            + header
            + b"<soap:Body>"
            + etree.tostring(content, encoding="UTF-8")
            + b"</soap:Body></soap:Envelope>"
        )
