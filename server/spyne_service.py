"""The service, declared once: ``send`` and ``query`` of ``schemas/isms/`` in spyne.

:class:`SmsService` is the one implementation of each operation: its body maps the
arguments to the :class:`~smsxml.server.bridge.Bridge` call, and a refusal is the
bridge's :class:`~smsxml.server.bridge.SmsFault`. Two readers call it (:mod:`.soap`):

- spyne (``fast_lane=False``) reads the request into the argument objects and calls the
  operation; :class:`SmsApplication` turns a SmsFault into spyne's Fault (faultcode
  ``Client.<code>`` or ``Server.<code>``), which the endpoint reads back;
- the fast lane reads the same arguments without spyne, by :data:`OPERATIONS`: for each
  operation, taken from spyne's method descriptor, its parameters in order with the
  reader of each spyne type (what spyne makes of an element of that type), its function
  and its answer's element. A type this module cannot read fails at import.

Either way the endpoint writes the answer and every fault itself, so spyne's own answer
is read for its value only. spyne's loggers that print whole requests on errors are
silenced (they would put passwords and hostile payloads in the logs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from lxml import etree
from spyne import (
    Application,
    Boolean,
    ComplexModel,
    ComplexModelBase,
    Fault,
    MethodContext,
    MethodDescriptor,
    ModelBase,
    Service,
    Unicode,
    rpc,
)
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from smsxml.server.bridge import Bridge, SendRequest, SmsFault
from smsxml.server.wsdl import TNS

__all__ = [
    "OPERATIONS",
    "SPYNE_MAX_BYTES",
    "Context",
    "Host",
    "Operation",
    "SmsApplication",
    "SmsService",
    "bare_context",
    "make_spyne_app",
    "xs_boolean",
]


for noisy in (
    "spyne.protocol.soap.soap11.invalid",
    "spyne.protocol.xml.invalid",
    "spyne.application.client",
):
    logging.getLogger(noisy).disabled = True
# "seems to be a customized class" on every response: spyne talking to itself
logging.getLogger("spyne.model.complex").setLevel(logging.ERROR)


def xs_boolean(text: str | None) -> bool:
    """An ``xs:boolean`` as the schema reads it: ``true`` or ``1``, whitespace collapsed
    (spyne alone would read ``" true "`` as False)."""
    return (text or "").strip() in ("true", "1")


class Recipients(ComplexModel):
    """``to``: an object with one property, ``recipients``, an array of strings."""

    __namespace__ = TNS
    __type_name__ = "Recipients"
    _type_info = [("recipients", Unicode.customize(max_occurs="unbounded"))]
    recipients: list[str] | None  # set by spyne (or the fast lane) from the line above


class Host(Protocol):
    """What runs the operations: :class:`SmsApplication`, or the fast lane."""

    @property
    def bridge(self) -> Bridge: ...


class Context(Protocol):
    """The one thing an operation reads of spyne's MethodContext: ``ctx.app.bridge``."""

    @property
    def app(self) -> Host: ...


@dataclass(frozen=True)
class _BareContext:
    """A context and its application in one, for a call without spyne."""

    bridge: Bridge

    @property
    def app(self) -> _BareContext:
        return self


def bare_context(bridge: Bridge) -> Context:
    """The context the fast lane calls the operations with: ``ctx.app.bridge`` is ``bridge``."""
    return _BareContext(bridge)


class SmsService(Service):
    """send and query, as the WSDL names them: the one implementation of each."""

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
        ctx: Context,
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
        """Check, charge and store a message: its id. Every refusal is the bridge's."""
        request = SendRequest(
            username=username or "",
            password=password or "",
            sender=from_ or "",
            recipients=(to.recipients or []) if to is not None else [],
            message=message or "",
            coding=coding or "",
            flash=bool(flash),
            schedule=schedule or None,
            # xs:anyURI collapses whitespace: " http://… " is a valid URL
            dlr_url=(dlr_url or "").strip() or None,
        )
        return ctx.app.bridge.send(request)

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
        ctx: Context,
        username: str | None,
        password: str | None,
        message_id: str | None,
        mobile: str | None,
    ) -> str:
        """The state of a message for one of its recipients."""
        return ctx.app.bridge.query(username, password, message_id, mobile)


# Reading a request as spyne does, without spyne -------------------------------------------

#: an element → the value spyne makes of it
_Reader = Callable[[etree._Element], object]


def _text(element: etree._Element) -> str:
    return element.text or ""  # spyne reads an empty Unicode element as ""


def _flag(element: etree._Element) -> bool:
    return xs_boolean(element.text)


def _members(model: type[ComplexModelBase]) -> Callable[[etree._Element], list[object]]:
    """The values spyne reads from an element of the complex type ``model``: its members
    in declared order, None for one that is absent (a repeated one too), the last one
    written for a member given twice."""
    members = [
        (name, _reader(member), member.Attributes.max_occurs > 1)
        for name, member in model.get_flat_type_info(model).items()
    ]
    singles = not all(repeated for _, _, repeated in members)

    def read(element: etree._Element) -> list[object]:
        # elements only: a comment's tag is not a str
        children = {c.tag: c for c in element if isinstance(c.tag, str)} if singles else {}
        values: list[object] = []
        for name, reader, repeated in members:
            if not repeated:
                child = children.get(name)
                values.append(None if child is None else reader(child))
            elif reader is _text:  # the recipients of a send: up to 100,000 of them
                values.append([c.text or "" for c in element.iterchildren(name)] or None)
            else:
                values.append([reader(c) for c in element.iterchildren(name)] or None)
        return values

    return read


def _instance(model: type[ComplexModelBase]) -> _Reader:
    """An element of the complex type ``model`` → its instance, as spyne makes it (every
    member set; without ComplexModel.__init__, which costs more than the whole read)."""
    names = list(model.get_flat_type_info(model))
    read = _members(model)

    def instance(element: etree._Element) -> object:
        made = model.__new__(model)
        for name, value in zip(names, read(element), strict=True):
            setattr(made, name, value)
        return made

    return instance


def _reader(model: type[ModelBase]) -> _Reader:
    if issubclass(model, Boolean):
        return _flag
    if issubclass(model, Unicode):
        return _text
    if issubclass(model, ComplexModelBase):
        return _instance(model)
    raise TypeError(f"the fast lane cannot read {model.__name__}: teach spyne_service._reader")


@dataclass(frozen=True)
class Operation:
    """One operation of :class:`SmsService`, as its spyne descriptor declares it."""

    name: str
    #: the payload element (read into the unqualified literal form) → the arguments
    read: Callable[[etree._Element], list[object]]
    #: the operation itself: ``call(ctx, *arguments)`` → the answer's value
    call: Callable[..., str]
    #: the answer's one child element (``id``, ``status``)
    answer: str


def _operation(name: str, method: MethodDescriptor) -> Operation:
    answers = list(method.out_message.get_flat_type_info(method.out_message))
    if len(answers) != 1:
        raise TypeError(f"{name} answers {answers}: the endpoint writes one value")
    return Operation(name, _members(method.in_message), method.function, answers[0])


#: every operation by name, read from the declaration above
OPERATIONS: Mapping[str, Operation] = MappingProxyType(
    {name: _operation(name, method) for name, method in SmsService.public_methods.items()}
)


# spyne as a reader ------------------------------------------------------------------------


def _as_fault(error: Exception) -> SmsFault:
    """The fault a client sees: the bridge's own, or the contract's ServerError for
    anything unexpected (logged here; the client learns nothing of the internals)."""
    if isinstance(error, SmsFault):
        return error
    logging.getLogger("smsxml.server").exception("internal error in the spyne service")
    return SmsFault("ServerError", client=False)


class _Soap11(Soap11):
    """spyne's SOAP 1.1 reading ``xs:boolean`` as the schema does (:func:`xs_boolean`)."""

    def boolean_from_bytes(self, cls: object, string: str | None) -> bool:
        return xs_boolean(string)


class SmsApplication(Application):
    """:class:`SmsService` in spyne, over ``bridge``; a refusal leaves as a spyne Fault
    whose faultcode carries the stable code (``Client.NoRecipients``)."""

    def __init__(self, bridge: Bridge) -> None:
        super().__init__(
            [SmsService],
            tns=TNS,
            name="SmsService",
            in_protocol=_Soap11(validator=None),
            out_protocol=Soap11(),
        )
        self.bridge = bridge

    def call_wrapper(self, ctx: MethodContext) -> Any:
        try:
            return super().call_wrapper(ctx)
        except Exception as error:
            fault = _as_fault(error)
            side = "Client" if fault.client else "Server"
            raise Fault(f"{side}.{fault.code}", fault.text) from None


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
    return WsgiApplication(SmsApplication(bridge), max_content_length=SPYNE_MAX_BYTES)
