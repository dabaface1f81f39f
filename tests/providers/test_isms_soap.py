"""smsxml.providers.isms_soap.SoapClient (``smsxml.soap``'s) against running bridges, silent
sockets and hostile WSDLs."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zeep
from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from smsxml.errors import (
    AuthenticationFailed,
    BadInput,
    InsufficientCredit,
    InvalidRecipient,
    InvalidSender,
    OutcomeUnknown,
    PermanentFailure,
    ProviderError,
    TemporaryFailure,
)
from smsxml.generated.isms import QueryResponse, SendResponse, Status
from smsxml.providers import build
from smsxml.providers.base import OutgoingMessage, Submitted
from smsxml.server.app import BridgeServer
from smsxml.server.models import Message
from smsxml.server.settings import ProviderSettings
from smsxml.soap import SoapClient
from smsxml.status import DeliveryState
from tests.server import conftest as server_fixtures

from ..conftest import ROOT, free_port, wait_for

#: the bridge fixtures live under tests/server/, beside this module's folder
make_bridge = server_fixtures.make_bridge

SMS_WSDL = ROOT / "schemas" / "isms" / "sms.wsdl"
TO = "306912345678"
SECRET = "hunter2-not-the-password"


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeServer]:
    """One bridge for the whole module: starting one costs seconds. (Its fast lane: that
    spyne's answers are the same bytes is tests/server/test_spyne_service.py's job.)"""
    settings = server_fixtures.bridge_settings(tmp_path_factory.mktemp("bridge"))
    with BridgeServer(settings) as server:
        yield server


@pytest.fixture
def client(lane: BridgeServer) -> Iterator[SoapClient]:
    """A client of the lane's bridge, WSDL read from ``?wsdl``, as the demo account."""
    with SoapClient(lane.url + "/soap", "demo", "demo") as soap:
        yield soap


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers; stops itself after
    ``lifetime`` seconds even if a test forgets to."""

    def __init__(self, lifetime: float = 15.0) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}/soap"
        self._deadline = time.monotonic() + lifetime
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        held: list[socket.socket] = []
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                held.append(self._socket.accept()[0])
            except TimeoutError:
                continue
        for connection in held:
            connection.close()
        self._socket.close()

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class CannedServer:
    """An HTTP server on 127.0.0.1 giving every request the same (settable) answer."""

    def __init__(self) -> None:
        self.answer = Response("", 200)
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.port}/soap"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        Request(environ).get_data()  # drain what the client sent
        return self.answer(environ, start_response)

    def __enter__(self) -> CannedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def local_client(address: str, timeout: float = 5.0) -> SoapClient:
    """A client reading the contract from schemas/ and calling ``address``."""
    return SoapClient(
        wsdl=SMS_WSDL, address=address, username="demo", password=SECRET, timeout=timeout
    )


# the round trip ---------------------------------------------------------------------------


def test_send_then_query_ends_delivered(client: SoapClient) -> None:
    """send answers a SendResponse; query answers QueryResponse objects until Delivered."""
    sent = client.send("Shop", [TO], "Hello from smsxml.soap")
    assert isinstance(sent, SendResponse) and len(sent.id) == 12
    first = client.query(sent.id, TO)
    assert isinstance(first, QueryResponse) and first.status in set(Status)
    final = wait_for(lambda: client.query(sent.id, TO).status in (Status.DELIVERED, Status.FAILED))
    assert final and client.query(sent.id, TO) == QueryResponse(status=Status.DELIVERED)


def test_coding_and_options_reach_the_server(client: SoapClient, lane: BridgeServer) -> None:
    """No coding given: Greek goes as UTF-8, Latin as GSM; flash and dlr_url are passed on."""
    greek = client.send("Shop", [TO], "Γειά σου")
    latin = client.send("Shop", [TO], "Hello", flash=True, dlr_url="http://127.0.0.1:9/dlr")
    columns = (Message.id, Message.coding, Message.flash, Message.dlr_url)
    with lane.app.store.engine.connect() as db:
        rows = db.execute(select(*columns).where(Message.id.in_([greek.id, latin.id])))
        stored = sorted(tuple(row) for row in rows)
    assert stored == sorted(
        [(greek.id, "UTF-8", False, None), (latin.id, "GSM", True, "http://127.0.0.1:9/dlr")]
    )


def test_the_rpc_wsdl_carries_schedule_and_dlr_url(lane: BridgeServer) -> None:
    """The rpc/literal WSDL works with and without its optional last parts (an rpc part
    cannot be optional: the client leaves an unset one out with SkipValue)."""
    with SoapClient(wsdl=lane.url + "/api/soap/sms.wsdl", username="demo", password="demo") as rpc:
        sent = rpc.send("Shop", [TO], "Hello over rpc/literal")
        assert rpc.address == lane.url + "/api/soap/sms.php"
        assert rpc.query(sent.id, TO).status in set(Status)
        later = rpc.send("Shop", [TO], "later", schedule="+1 day", dlr_url="http://127.0.0.1:9/dlr")
        assert rpc.query(later.id, TO).status is Status.QUEUED  # due tomorrow


# faults -----------------------------------------------------------------------------------

SEND_FAULTS = [
    ({"password": "wrong"}, AuthenticationFailed, "AuthenticationError", "Authentication error."),
    ({"username": "nobody"}, AuthenticationFailed, "AuthenticationError", "Authentication error."),
    ({"recipients": [""]}, InvalidRecipient, "NoRecipients", "No recipients."),
    ({"sender": "Too long sender"}, InvalidSender, "InvalidSender", "Invalid sender identity."),
    (
        {"recipients": ["301234567890"]},
        InvalidRecipient,
        "InvalidRecipient",
        "Invalid recipient: 301234567890.",
    ),
    (
        {"message": "Γειά σου", "coding": "GSM"},
        PermanentFailure,
        "InvalidCoding",
        "Message is not GSM-encodable: send it with coding UTF-8.",
    ),
    ({"schedule": "not a date"}, PermanentFailure, "InvalidSchedule", "Invalid scheduling date."),
    ({"message": ""}, PermanentFailure, "InvalidRequest", "No message defined."),
]


@pytest.mark.parametrize(("change", "error", "code", "text"), SEND_FAULTS)
def test_send_faults_are_typed_errors(
    lane: BridgeServer,
    change: dict[str, Any],
    error: type[ProviderError],
    code: str,
    text: str,
) -> None:
    """Each send fault raises the HTTP clients' error class, with the fault's code and text."""
    account = {"username": "demo", "password": "demo"}
    call: dict[str, Any] = {"sender": "Shop", "recipients": [TO], "message": "Hi"}
    for key, value in change.items():
        (account if key in account else call)[key] = value
    with SoapClient(lane.url + "/soap", **account) as soap, pytest.raises(error) as caught:
        soap.send(**call)
    assert type(caught.value) is error
    assert (caught.value.provider, caught.value.code, caught.value.text) == (
        "isms-soap",
        code,
        text,
    )


@pytest.mark.parametrize(
    ("password", "message_id", "mobile", "error", "code"),
    [
        ("demo", "", TO, PermanentFailure, "NoMessageId"),
        ("demo", "ABC", "", PermanentFailure, "NoMobile"),
        ("demo", "NOSUCHID", TO, PermanentFailure, "NoSuchMessage"),
        ("bad", "ABC", TO, AuthenticationFailed, "AuthenticationError"),
    ],
)
def test_query_faults_are_typed_errors(
    lane: BridgeServer,
    password: str,
    message_id: str,
    mobile: str,
    error: type[ProviderError],
    code: str,
) -> None:
    """query's documented faults, typed, with their codes."""
    with SoapClient(lane.url + "/soap", "demo", password) as soap, pytest.raises(error) as caught:
        soap.query(message_id, mobile)
    assert type(caught.value) is error and caught.value.code == code


def test_insufficient_credits(make_bridge: Callable[..., BridgeServer]) -> None:
    """An account short of credits raises InsufficientCredit."""
    bridge = make_bridge(demo_credits=2)
    with SoapClient(bridge.url + "/soap", "demo", "demo") as soap:
        with pytest.raises(InsufficientCredit) as caught:
            soap.send("Shop", [TO, "306912345679", "306912345671"], "Hi")
    assert caught.value.code == "InsufficientCredits"


def test_server_faults_are_temporary(
    client: SoapClient, lane: BridgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Server fault (the bridge failed inside) is a TemporaryFailure, not a refusal."""

    def broken(*args: object) -> str:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(lane.app.bridge, "query", broken)
    with pytest.raises(TemporaryFailure) as caught:
        client.query("ABC", TO)
    assert type(caught.value) is TemporaryFailure and caught.value.code == "ServerError"
    assert "database on fire" not in str(caught.value)


# transport failures ---------------------------------------------------------------------


def test_a_silent_endpoint_times_out() -> None:
    """No answer within the timeout: OutcomeUnknown for a send, TemporaryFailure for a query."""
    with SilentServer() as silent, local_client(silent.url, timeout=0.5) as soap:
        started = time.monotonic()
        with pytest.raises(OutcomeUnknown) as sending:
            soap.send("Shop", [TO], "Hi")
        with pytest.raises(TemporaryFailure) as querying:
            soap.query("ABC", TO)
        assert time.monotonic() - started < 5
    assert sending.value.code == "timeout"
    assert not isinstance(querying.value, OutcomeUnknown)


def test_a_dripping_endpoint_times_out() -> None:
    """An answer dripping a byte at a time cannot hold a call past its timeout."""

    def drip() -> Iterator[bytes]:
        for _ in range(100):  # 10 s at most, whoever listens
            time.sleep(0.1)
            yield b" "

    with CannedServer() as canned, local_client(canned.url, timeout=0.5) as soap:
        canned.answer = Response(drip(), 200, content_type="text/xml")
        started = time.monotonic()
        with pytest.raises(OutcomeUnknown):
            soap.send("Shop", [TO], "Hi")
        assert time.monotonic() - started < 3


def test_a_refused_connection_is_temporary() -> None:
    """Nothing listens: the send surely did not happen, so TemporaryFailure (not unknown)."""
    port = free_port()
    with local_client(f"http://127.0.0.1:{port}/soap") as soap:
        with pytest.raises(TemporaryFailure) as caught:
            soap.send("Shop", [TO], "Hi")
    assert type(caught.value) is TemporaryFailure and caught.value.code == "connect"
    with SoapClient(f"http://127.0.0.1:{port}/soap") as soap:  # the WSDL itself unreachable
        with pytest.raises(TemporaryFailure) as caught:
            soap.query("ABC", TO)
    assert caught.value.code == "wsdl"


@pytest.mark.parametrize(
    ("status", "body", "on_send", "on_query"),
    [
        (503, "", TemporaryFailure, TemporaryFailure),
        (502, "<html><body>Bad gateway</body></html>", TemporaryFailure, TemporaryFailure),
        (500, "<html><body>Internal error</body></html>", OutcomeUnknown, TemporaryFailure),
        (500, "<error>not SOAP</error>", OutcomeUnknown, TemporaryFailure),
        (404, "<html><body>Not found</body></html>", PermanentFailure, PermanentFailure),
        (200, "OK", OutcomeUnknown, TemporaryFailure),
    ],
)
def test_http_errors_without_a_fault(
    status: int,
    body: str,
    on_send: type[ProviderError],
    on_query: type[ProviderError],
) -> None:
    """No SOAP envelope: the HTTP status decides; a send maybe processed is OutcomeUnknown."""
    with CannedServer() as canned, local_client(canned.url) as soap:
        canned.answer = Response(body, status, content_type="text/html")
        with pytest.raises(ProviderError) as sending:
            soap.send("Shop", [TO], "Hi")
        with pytest.raises(ProviderError) as querying:
            soap.query("ABC", TO)
    assert type(sending.value) is on_send and type(querying.value) is on_query


# hostile WSDLs ----------------------------------------------------------------------------

XXE_WSDL = (
    SMS_WSDL.read_text()
    .replace(
        "<wsdl:definitions",
        '<!DOCTYPE wsdl:definitions [<!ENTITY leak SYSTEM "file:///etc/passwd">]>\n<wsdl:definitions',
        1,
    )
    .replace("<wsdl:documentation>Send", "<wsdl:documentation>&leak; Send")
)


@pytest.mark.parametrize(
    ("name", "document"),
    [
        ("xxe.wsdl", XXE_WSDL),
        (
            "doctype.wsdl",
            SMS_WSDL.read_text().replace(
                "<wsdl:definitions",
                '<!DOCTYPE wsdl:definitions SYSTEM "http://127.0.0.1:9/x.dtd">\n<wsdl:definitions',
                1,
            ),
        ),
        ("outside.wsdl", SMS_WSDL.read_text().replace('"sms.xsd"', '"../secret/sms.xsd"')),
        ("remote.wsdl", SMS_WSDL.read_text().replace('"sms.xsd"', '"http://127.0.0.1:9/x.xsd"')),
    ],
)
def test_hostile_wsdls_are_refused(tmp_path: Path, name: str, document: str) -> None:
    """A DOCTYPE, an entity, a file outside the WSDL's folder, a remote import: refused."""
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "sms.xsd").write_text((SMS_WSDL.parent / "sms.xsd").read_text())
    (tmp_path / "wsdl").mkdir()
    wsdl = tmp_path / "wsdl" / name
    wsdl.write_text(document)
    with CannedServer() as canned, SoapClient(wsdl=wsdl, address=canned.url) as soap:
        with pytest.raises(PermanentFailure, match="WSDL refused") as caught:
            soap.query("ABC", TO)
    assert caught.value.code == "HostileWsdl"
    assert "root:" not in str(caught.value)


def test_a_wsdl_served_with_an_entity_is_refused(tmp_path: Path) -> None:
    """The same over HTTP: the entry document's DOCTYPE is refused too."""
    with CannedServer() as canned:
        canned.answer = Response(XXE_WSDL, 200, content_type="text/xml")
        with SoapClient(canned.url) as soap, pytest.raises(PermanentFailure) as caught:
            soap.send("Shop", [TO], "Hi")
    assert caught.value.code == "HostileWsdl"


# credentials ------------------------------------------------------------------------------


def test_credentials_stay_out_of_reprs_errors_and_logs(
    lane: BridgeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The password is in no repr, no error and no log line, zeep's DEBUG bodies included."""
    caplog.set_level(logging.DEBUG)
    with SoapClient(lane.url + "/soap", "demo", SECRET) as soap:
        assert SECRET not in repr(soap)
        with pytest.raises(AuthenticationFailed) as caught:
            soap.query("ABC", TO)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    with pytest.raises(zeep.exceptions.Fault):  # a plain zeep client logs whole bodies
        zeep.Client(lane.wsdl_url).service.query("demo", SECRET, "ABC", TO)
    # ?wsdl's local elements are qualified: zeep writes <ns0:password>
    assert re.search(r"<(ns\d+:)?password>\*\*\*</(ns\d+:)?password>", caplog.text)
    assert SECRET not in caplog.text


# the Provider interface -------------------------------------------------------------------


def test_provider_interface(client: SoapClient) -> None:
    """send(OutgoingMessage) → Submitted per recipient; statuses() → final; no balance()."""
    recipients = [TO, "306912345670"]
    submitted = client.send(OutgoingMessage("Shop", recipients, "Hi"))
    assert [s.recipient for s in submitted] == recipients
    assert len({s.provider_id for s in submitted}) == 1
    asked = [*submitted, Submitted("306912345671", submitted[0].provider_id)]

    def final() -> list[DeliveryState] | None:
        states = [update.state for update in client.statuses(asked)]
        return states if all(state.final for state in states) else None

    assert wait_for(final, timeout=20) == [
        DeliveryState.DELIVERED,
        DeliveryState.FAILED,
        DeliveryState.FAILED,  # never sent to that one: "No such message or recipient."
    ]
    with pytest.raises(PermanentFailure, match="no balance call"):
        client.balance()


def test_delivery_reports_of_both_shapes() -> None:
    """The bridge's report form and iSMS's are both read; junk is BadInput."""
    bridge_form = {"message_id": "ABC", "mobile": TO, "status": "Delivered"}
    isms_form = {"mid": ["ABC"], "mobile": [TO], "status": ["failed"], "timestamp": ["0"]}
    assert SoapClient.parse_delivery_report(bridge_form).state is DeliveryState.DELIVERED
    assert SoapClient.parse_delivery_report(isms_form).provider_id == "ABC"
    with pytest.raises(BadInput):
        SoapClient.parse_delivery_report({"mid": "ABC", "mobile": TO, "status": "Lost"})


def test_a_bridge_forwards_to_another_bridge(make_bridge: Callable[..., BridgeServer]) -> None:
    """A bridge whose only provider is "isms-soap" → another bridge → Delivered, end to end."""
    first = make_bridge()
    second = make_bridge(
        sandbox=True,
        providers={
            "fwd": ProviderSettings(
                kind="isms-soap",
                base_url=first.url + "/soap",
                options={"username": "demo", "password": "demo"},
            )
        },
        routes={"*": ["fwd"]},
    )
    assert isinstance(second.app.providers["fwd"], SoapClient)
    with SoapClient(second.url + "/soap", "demo", "demo") as soap:
        sent = soap.send("Shop", [TO], "Forwarded once")
        status = wait_for(
            lambda: soap.query(sent.id, TO).status in (Status.DELIVERED, Status.FAILED), timeout=20
        )
        assert status and soap.query(sent.id, TO).status is Status.DELIVERED
    assert first.app.store.accounts.get("demo").credits == 999  # it went through the first bridge
    with first.app.store.engine.connect() as db:
        (dlr_url,) = db.execute(select(Message.dlr_url)).one()
    assert dlr_url.startswith(second.url + "/dlr/fwd/")  # reports come back, not only polls


def test_build_makes_a_soap_client() -> None:
    """The bridge's factory knows "isms-soap" and passes base_url and credentials."""
    with build("isms-soap", "https://sms.example.org/soap", username="u", password=SECRET) as soap:
        assert isinstance(soap, SoapClient)
        assert repr(soap) == "<SoapClient https://sms.example.org/soap>"
    with pytest.raises(ValueError, match="base_url"):
        SoapClient()


def test_misshapen_calls_are_refused_before_any_request() -> None:
    """One string as recipients, or more than max_batch, is refused before any request."""
    with local_client("http://127.0.0.1:9/soap") as soap:
        with pytest.raises(TypeError, match="not one string"):
            soap.send("Shop", TO, "Hi")
        too_many = [TO] * (SoapClient.max_batch + 1)
        with pytest.raises(ValueError, match=f"at most {SoapClient.max_batch}"):
            soap.send(OutgoingMessage("Shop", too_many, "Hi"))
