"""The SOAP endpoint in process: a request the schema refuses is answered with the fault
the operation itself would give (rehearsed on the bridge, in its order, credentials
first), and is never acted on; spyne's fault answers are read back into the contract's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from werkzeug.test import Client

from smsxml.server.app import BridgeApp
from smsxml.server.soap import _spyne_fault

from .conftest import bridge_settings

TNS = "http://smsxml.org/isms/1"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TO = "306912345678"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[BridgeApp]:
    """The bridge's WSGI application over its own database; nothing dispatches."""
    bridge = BridgeApp(bridge_settings(tmp_path))
    yield bridge
    bridge.stop()


def post(app: BridgeApp, operation: str, inner: str) -> tuple[int, str, str]:
    """The status, faultstring and detail code of the answer to ``operation``."""
    body = (
        f'<soap:Envelope xmlns:soap="{ENV}"><soap:Body><t:{operation} xmlns:t="{TNS}">'
        f"{inner}</t:{operation}></soap:Body></soap:Envelope>"
    )
    answer = Client(app).post("/soap", data=body, content_type="text/xml; charset=utf-8")
    document = etree.fromstring(answer.get_data())
    return (
        answer.status_code,
        document.findtext(f".//{{{ENV}}}Fault/faultstring") or "",
        document.findtext(f".//{{{TNS}}}smsFault/code") or "",
    )


def send(password: str = "demo", **elements: str) -> str:
    fields = {
        "from": "<from>Shop</from>",
        "to": f"<to><recipients>{TO}</recipients></to>",
        "message": "<message>Hello</message>",
        "coding": "<coding>GSM</coding>",
        "flash": "<flash>false</flash>",
    } | elements
    return f"<username>demo</username><password>{password}</password>" + "".join(fields.values())


@pytest.mark.parametrize(
    ("inner", "code", "text"),
    [
        (send(flash="<flash>maybe</flash>", password="wrong"), "AuthenticationError", None),
        (send(**{"from": "", "coding": "<coding>UCS2</coding>"}), "InvalidSender", None),
        (
            send(coding="<coding>UCS2</coding>", to="<to><recipients>30123</recipients></to>"),
            "InvalidRecipient",
            "Invalid recipient: 30123.",
        ),
        (send(coding="", message="<message/>"), "InvalidRequest", "No message defined."),
        (send(flash="<flash>maybe</flash>"), "InvalidRequest", "Invalid request: Element 'flash'"),
        (send(extra="<extra/>"), "InvalidRequest", "Invalid request: Element 'extra'"),
    ],
    ids=["password", "sender", "recipient", "message", "schema-flash", "schema-extra"],
)
def test_a_request_the_schema_refuses_gets_the_operations_fault_first(
    app: BridgeApp, inner: str, code: str, text: str | None
) -> None:
    """The bridge's checks run in the bridge's order on what the request holds; only a
    request the bridge would have accepted gets the schema's message."""
    status, faultstring, detail = post(app, "send", inner)
    assert (status, detail) == (500, code), faultstring
    assert text is None or faultstring.startswith(text), faultstring


def test_a_request_the_schema_refuses_is_never_acted_on(app: BridgeApp) -> None:
    """A send that passes every check of the bridge but not the schema stores nothing and
    charges nothing; a query is not looked up (no NoSuchMessage for an unknown id)."""
    before = app.store.accounts.get("demo").credits
    status, faultstring, _ = post(app, "send", send(flash="<flash>maybe</flash>"))
    assert status == 500 and faultstring.startswith("Invalid request: Element 'flash'")
    assert app.store.counts() == {} and app.store.accounts.get("demo").credits == before
    query = "<username>demo</username><password>demo</password><message_id>X</message_id>"
    status, faultstring, detail = post(app, "query", query + f"<mobile>{TO}</mobile><extra/>")
    assert detail == "InvalidRequest" and "Element 'extra'" in faultstring


@pytest.mark.parametrize(
    ("faultcode", "faultstring", "read"),
    [
        ("soap11env:Client.NoRecipients", "No recipients.", ("NoRecipients", "No recipients.")),
        ("soap11env:Server.ServerError", "Internal error.", ("ServerError", "Internal error.")),
        ("soap11env:Client.SchemaValidationError", "bad", ("InvalidRequest", "bad")),
        ("soap11env:Server", "Traceback: secret", ("ServerError", "Internal error.")),
    ],
)
def test_spynes_faults_are_read_back_into_the_contracts(
    faultcode: str, faultstring: str, read: tuple[str, str]
) -> None:
    """SmsApplication's faults keep their code and text; spyne's own are an invalid
    request (its message) or the contract's ServerError (nothing of the server shown)."""
    fault = etree.fromstring(
        f"<Fault><faultcode>{faultcode}</faultcode><faultstring>{faultstring}</faultstring></Fault>"
    )
    found = _spyne_fault(fault)
    assert (found.code, found.text) == read
    assert found.client == faultcode.split(":")[1].startswith("Client")
