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

A WS-Security header is read here, before either lane (:mod:`.wssecurity`): its token's
account is what empty body credentials mean, in both lanes alike (``accounts.VERIFIED``).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from smsxml import xmlsafe
from smsxml.errors import BadInput
from smsxml.server.accounts import VERIFIED
from smsxml.server.bridge import Bridge, SendRequest, SmsFault
from smsxml.server.clock import utcnow
from smsxml.server.logins import CLIENT
from smsxml.server.metrics import Metrics
from smsxml.server.soapforms import Reading, qualify
from smsxml.server.soapforms import read as read_form
from smsxml.server.spyne_service import make_spyne_app
from smsxml.server.wsdl import TNS
from smsxml.server.wssecurity import (
    WSSE,
    SecurityHeader,
    WsSecurity,
    read_security,
    response_header,
)

__all__ = ["SOAP_LIMITS", "SoapEndpoint"]

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSI_TYPE = f"{{{XSI}}}type"
_ANNOTATED = etree.XPath("descendant-or-self::*[@xsi:type]", namespaces={"xsi": XSI})
#: a send may carry tens of thousands of recipients; everything else stays CXF-tight
SOAP_LIMITS = xmlsafe.DEFAULT_LIMITS.tightened(
    max_bytes=16 * 1024 * 1024, max_children=100_000, max_elements=200_000
)
CONTENT_TYPE = "text/xml; charset=utf-8"

_RESPONSE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>'
    f'<tns:{{op}}Response xmlns:tns="{TNS}"><{{p}}{{field}}>{{value}}</{{p}}{{field}}>'
    "</tns:{op}Response>"
    "</soap:Body></soap:Envelope>"
)
_FAULT = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body><soap:Fault{{xmlns}}>'
    "<faultcode>{faultcode}</faultcode><faultstring>{text}</faultstring>"
    f'<detail><tns:smsFault xmlns:tns="{TNS}"><{{p}}code>{{code}}</{{p}}code>'
    "<{p}message>{text}</{p}message>"
    "</tns:smsFault></detail></soap:Fault></soap:Body></soap:Envelope>"
)
_OPERATIONS = {f"{{{TNS}}}send": "send", f"{{{TNS}}}query": "query"}


def _prefix(qualified: bool) -> str:
    """The prefix of an answer's local elements, in the form the request was written in
    (server/soapforms.py): a client made from the qualified WSDL reads only ``tns:id``."""
    return "tns:" if qualified else ""


def fault_document(fault: SmsFault, kind: str | None = None, qualified: bool = False) -> bytes:
    """A SOAP 1.1 fault for ``fault`` (``kind`` overrides Client/Server, e.g. VersionMismatch;
    a WS-Security fault's faultcode is its ``wsse:`` QName)."""
    wsse_code = getattr(fault, "wsse_code", None)
    return _FAULT.format(
        faultcode=(
            f"wsse:{wsse_code}"
            if wsse_code
            else f"soap:{kind or ('Client' if fault.client else 'Server')}"
        ),
        xmlns=f' xmlns:wsse="{WSSE}"' if wsse_code else "",
        text=escape(fault.text),
        code=fault.code,
        p=_prefix(qualified),
    ).encode()


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
        reading = Reading()
        try:
            body = self._read(environ)
            operation, payload, cleaned, security = self._payload(body, reading)
            stamped = security is not None and security.timestamp
            if self.fast_lane:
                status, answer = "200 OK", self._answer(operation, payload, reading.qualified)
                if stamped:  # the template's only <soap:Body>
                    answer = answer.replace(b"<soap:Body>", self._stamp() + b"<soap:Body>", 1)
            else:
                # spyne refuses xsi:types it does not know (SOAP-ENC:Struct) and reads
                # only the form it was read into; it decodes a body as UTF-8 whatever its
                # XML declaration says (a UTF-16 request was a traceback and ServerError)
                utf8 = (payload.getroottree().docinfo.encoding or "").upper() == "UTF-8"
                if cleaned or reading.changed or not utf8:
                    body = etree.tostring(payload.getroottree())
                return self._spyne(
                    environ, start_response, body, operation, started, reading.qualified, stamped
                )
        except SmsFault as fault:
            status, answer = (
                "500 Internal Server Error",
                fault_document(fault, getattr(fault, "kind", None), reading.qualified),
            )
            self.metrics.fault(operation, fault.code)
        except Exception:  # never a traceback to the client, never the request in a log
            self.metrics.log.exception("internal error in %s", operation)
            status = "500 Internal Server Error"
            answer = fault_document(SmsFault("ServerError", client=False), None, reading.qualified)
            self.metrics.fault(operation, "ServerError")
        self.metrics.request(operation, time.perf_counter() - started)
        start_response(
            status, [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(answer)))]
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
        request's form (qualified or not) as soon as it is known, for the fault too."""
        try:
            envelope = xmlsafe.parse(body, limits=SOAP_LIMITS, refuse_pis=True)  # SOAP 1.1 §3
        except BadInput as error:
            problem = error.problems[0]
            raise SmsFault("InvalidRequest", f"Invalid request: {problem.message}") from None
        if envelope.tag == f"{{{SOAP12_ENV}}}Envelope":
            fault = SmsFault("InvalidRequest", "SOAP 1.2 is not supported: use SOAP 1.1.")
            fault.kind = "VersionMismatch"  # type: ignore[attr-defined]
            raise fault
        if envelope.tag != f"{{{SOAP_ENV}}}Envelope":
            raise SmsFault("InvalidRequest", "Invalid request: not a SOAP 1.1 envelope.")
        header = envelope.find(f"{{{SOAP_ENV}}}Header")
        security = read_security(header)
        if header is not None and any(
            h.get(f"{{{SOAP_ENV}}}mustUnderstand") in ("1", "true")
            for h in header
            if not (security is not None and h.tag == f"{{{WSSE}}}Security")
        ):
            fault = SmsFault("InvalidRequest", "A mandatory SOAP header is not understood.")
            fault.kind = "MustUnderstand"  # type: ignore[attr-defined]
            raise fault
        body_element = envelope.find(f"{{{SOAP_ENV}}}Body")
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

    def _answer(self, operation: str, payload: etree._Element, qualified: bool) -> bytes:
        """The fast lane: read the validated payload directly, answer from a template."""
        fields = {c.tag: c for c in payload if isinstance(c.tag, str)}

        def text(name: str) -> str:
            element = fields.get(name)
            return (element.text or "") if element is not None else ""

        if operation == "query":
            value = self.bridge.query(
                text("username"), text("password"), text("message_id"), text("mobile")
            )
            return _RESPONSE.format(
                op="query", field="status", value=escape(value), p=_prefix(qualified)
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
            op="send", field="id", value=escape(value), p=_prefix(qualified)
        ).encode()

    def _spyne(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        body: bytes,
        operation: str,
        started: float,
        qualified: bool,
        stamped: bool = False,
    ) -> Iterable[bytes]:
        """Hand the checked request to spyne (the body was consumed: give it a copy);
        its answer (written unqualified) is put in the request's form before it leaves,
        with a Security Timestamp if ``stamped`` (the request carried one)."""
        inner = dict(environ)
        inner["wsgi.input"] = io.BytesIO(body)
        inner["CONTENT_LENGTH"] = str(len(body))
        inner["REQUEST_METHOD"] = "POST"
        inner["QUERY_STRING"] = ""
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
        if stamped and status.startswith("200"):
            document = xmlsafe.parse(answer)
            document.insert(0, etree.fromstring(self._stamp(f' xmlns:soap="{SOAP_ENV}"')))
            answer = etree.tostring(document, xml_declaration=True, encoding="UTF-8")
        if qualified:
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
