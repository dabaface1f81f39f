"""The spyne service: ``send`` and ``query`` of ``schemas/isms/`` as spyne declares them.

spyne is kept behind this module (research/soap-toolkit.md §1): it deserialises the
request and dispatches on the body element; :class:`~smsxml.server.bridge.Bridge` does
the work. Three adjustments make its wire match our WSDL, which is the contract:

- response children are written unqualified (``elementFormDefault="unqualified"``;
  spyne would qualify them) by an ``after_serialize`` hook;
- faults carry the ``tns:smsFault`` detail element with the stable code;
- spyne's loggers that print whole requests on errors are silenced (they would put
  passwords and hostile payloads in the logs).
"""

from __future__ import annotations

import logging
from typing import Any

from lxml import etree
from spyne import Application, Boolean, ComplexModel, ServiceBase, Unicode, rpc
from spyne.model.fault import Fault
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from smsxml.ns import SOAP_ENV
from smsxml.server.bridge import Bridge, SendRequest, SmsFault
from smsxml.server.wsdl import TNS

__all__ = ["fault_detail", "make_spyne_app"]


for noisy in (
    "spyne.protocol.soap.soap11.invalid",
    "spyne.protocol.xml.invalid",
    "spyne.application.client",
):
    logging.getLogger(noisy).disabled = True
# "seems to be a customized class" on every response: spyne talking to itself
logging.getLogger("spyne.model.complex").setLevel(logging.ERROR)


class Recipients(ComplexModel):
    """``to``: an object with one property, ``recipients``, an array of strings."""

    __namespace__ = TNS
    __type_name__ = "Recipients"
    _type_info = [("recipients", Unicode(max_occurs="unbounded"))]


def fault_detail(fault: SmsFault) -> etree._Element:
    """``<tns:smsFault><code/><message/></tns:smsFault>``, the detail of every fault."""
    detail = etree.Element(f"{{{TNS}}}smsFault", nsmap={"tns": TNS})
    etree.SubElement(detail, "code").text = fault.code
    etree.SubElement(detail, "message").text = fault.text
    return detail


def _spyne_fault(fault: SmsFault) -> Fault:
    return Fault(
        faultcode="Client" if fault.client else "Server",
        faultstring=fault.text,
        detail=fault_detail(fault),
    )


def _as_fault(error: Exception) -> SmsFault:
    """The fault a client sees: the bridge's own, or the contract's ServerError for
    anything unexpected (logged here; the client learns nothing of the internals)."""
    if isinstance(error, SmsFault):
        return error
    logging.getLogger("smsxml.server").exception("internal error in the spyne service")
    return SmsFault("ServerError", client=False)


def _bridge(ctx: Any) -> Bridge:
    return ctx.app.bridge  # type: ignore[no-any-return]


class SmsService(ServiceBase):
    """send and query, as the WSDL names them."""

    @rpc(
        Unicode,
        Unicode,
        Unicode,
        Recipients,
        Unicode,
        Unicode,
        Boolean,
        Unicode,
        Unicode,
        _in_arg_names={"from_": "from"},
        _returns=Unicode,
        _out_variable_name="id",
        _wsdl_part_name="parameters",
    )
    def send(
        ctx: Any,
        username: str | None,
        password: str | None,
        from_: str | None,
        to: Recipients | None,
        message: str | None,
        coding: str | None,
        flash: bool | None,
        schedule: str | None,
        dlr_url: str | None,
    ) -> str:
        request = SendRequest(
            username=username or "",
            password=password or "",
            sender=from_ or "",
            recipients=list(to.recipients or []) if to is not None else [],
            message=message or "",
            coding=coding or "",
            flash=bool(flash),
            schedule=schedule,
            dlr_url=dlr_url,
        )
        try:
            return _bridge(ctx).send(request)
        except Exception as error:
            raise _spyne_fault(_as_fault(error)) from None

    @rpc(
        Unicode,
        Unicode,
        Unicode,
        Unicode,
        _returns=Unicode,
        _out_variable_name="status",
        _wsdl_part_name="parameters",
    )
    def query(
        ctx: Any,
        username: str | None,
        password: str | None,
        message_id: str | None,
        mobile: str | None,
    ) -> str:
        try:
            return _bridge(ctx).query(username, password, message_id, mobile)
        except Exception as error:
            raise _spyne_fault(_as_fault(error)) from None


def _unqualify_response(ctx: Any) -> None:
    body = ctx.out_document.find(f"{{{SOAP_ENV}}}Body")
    if body is None or len(body) == 0 or body[0].tag == f"{{{SOAP_ENV}}}Fault":
        return
    for child in body[0]:
        if isinstance(child.tag, str) and child.tag.startswith("{"):
            child.tag = etree.QName(child).localname


#: spyne's own size cap. Its default, 2 MiB, refused ("Request too long") sends the
#: endpoint accepts (16 MiB, SOAP_LIMITS in .soap: 100,000 recipients are ~3.5 MB): the
#: endpoint checks the size first, spyne re-reads a checked body, which re-encoding can
#: grow (character references)
SPYNE_MAX_BYTES = 64 * 1024 * 1024


def make_spyne_app(bridge: Bridge) -> WsgiApplication:
    """The spyne WSGI application answering send and query through ``bridge``.

    Requests reach it already checked against our XSD (see :mod:`.soap`), so spyne's own
    validator (which would check spyne's generated schema, not ours) stays off.
    """
    out_protocol = Soap11()
    out_protocol.event_manager.add_listener("after_serialize", _unqualify_response)
    app = Application(
        [SmsService],
        tns=TNS,
        name="SmsService",
        in_protocol=Soap11(validator=None),
        out_protocol=out_protocol,
    )
    app.bridge = bridge
    return WsgiApplication(app, max_content_length=SPYNE_MAX_BYTES)
