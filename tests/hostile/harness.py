"""The entry points of the hostile matrix, each driven through its real interface:

- the SOAP endpoint of `smsxml serve` (its own process, so its RSS is its own), both
  WSDL bindings (document/literal at /soap, rpc/literal at /api/soap/sms.php) and both
  lanes (fast lane, spyne), over raw HTTP;
- the three delivery callback URLs of the same server;
- `smsxml validate` and `smsxml convert` as a user runs them;
- the provider clients that read XML answers, against a stub server on 127.0.0.1;
- WSDL loading of the zeep client, from that stub server and from a local file.

Each :class:`EntryPoint` turns a :class:`~.payloads.Hostile` into an :class:`Outcome`:
refused (with the reason a user sees), answered, or neither (a crash, a dropped
connection, a traceback), which the matrix fails on.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from smsxml.errors import SmsxmlError
from smsxml.providers import build
from smsxml.providers.base import OutgoingMessage, Provider
from smsxml.server.delivery import callback_token
from smsxml.server.wsdl import DOCUMENT_WSDL, render
from smsxml.soap import SoapClient

from ..conftest import free_port, wait_for
from .payloads import ITEMS, PROLOG, XML_DECLARATION, Hostile, Shape

TNS = "http://smsxml.org/isms/1"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
CALLBACK_SECRET = "hostile-matrix-callback-secret"
#: seconds a raw request waits for its answer (past the matrix's limit: a late answer is
#: reported as late, not as none)
ANSWER_TIMEOUT = 15.0


@dataclass
class Outcome:
    """What the entry point did: ``refused`` with ``reason``, or answered; ``clean`` is
    False for anything else (no answer, a crash), with the reason. ``seen`` is all a
    user could see (answer, messages, output), searched for leaks."""

    refused: bool
    reason: str
    clean: bool = True
    seen: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# the canary and the secret -----------------------------------------------------------------


class Canary:
    """A listener on 127.0.0.1 that counts the connections it gets (none is the goal)."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._socket.close()


class Tripwire:
    """A FIFO that counts the processes opening it to read: each is let go at once with
    an empty file (end of file), so a parser that opens it is seen, never hung."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = str(path)
        self.opens = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while True:
            descriptor = os.open(self.path, os.O_WRONLY)  # blocks until a reader opens it
            if self._stopping:
                os.close(descriptor)
                return
            self.opens += 1
            os.close(descriptor)  # the reader sees end of file
            # wait until that reader is gone, or the next open would be counted as it
            wait_for(lambda: not self._has_reader(), timeout=10, interval=0.005)

    def _has_reader(self) -> bool:
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # ENXIO: nobody has it open to read
            return False
        return True

    def close(self) -> None:
        self._stopping = True
        reader = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # wakes the watcher
        self._thread.join(5)
        os.close(reader)


# shapes ---------------------------------------------------------------------------------------


def _soap_template(operation_attrs: bytes, typed: bool) -> bytes:
    def value(name: str, slot: str) -> bytes:
        annotation = b' xsi:type="xsd:string"' if typed else b""
        return f"<{name}".encode() + annotation + f">@@{slot}@@</{name}>".encode()

    return (
        XML_DECLARATION
        + PROLOG
        + f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:tns="{TNS}"'.encode()
        + operation_attrs
        + b"><soap:Body><tns:send>"
        + value("username", "username")
        + value("password", "password")
        + value("from", "sender")
        + b"<to>"
        + ITEMS
        + b"</to>"
        + value("message", "message")
        + b"<coding>GSM</coding><flash>false</flash></tns:send></soap:Body></soap:Envelope>"
    )


_SOAP_FIELDS = {"username": "demo", "password": "demo", "sender": "Shop", "message": "hello"}


def soap_shape(name: str, *, typed: bool) -> Shape:
    """A send as zeep writes it (document/literal), or as PHP's SoapClient writes it for
    the rpc/literal binding (``xsi:type`` on every value)."""
    attrs = (
        b' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
        b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        if typed
        else b""
    )
    return Shape(
        name=name,
        template=_soap_template(attrs, typed),
        root="soap:Envelope",
        fields=_SOAP_FIELDS,
        text_field="message",
        item=lambda value: b"<recipients>" + value + b"</recipients>",
        item_value="306912345678",
        credentials=frozenset({"username", "password"}),
    )


CALLBACK_SHAPE = Shape(
    name="callback",
    template=XML_DECLARATION
    + PROLOG
    + b"<report><mid>@@mid@@</mid><status>@@status@@</status>"
    + ITEMS
    + b"</report>",
    root="report",
    fields={"mid": "1000000001", "status": "Delivered"},
    text_field="status",
    item=lambda value: b"<mobile>" + value + b"</mobile>",
    item_value="306912345678",
)

FEED_SHAPE = Shape(
    name="feed",
    template=XML_DECLARATION
    + PROLOG
    + b"<DATA><MESSAGE>@@message@@</MESSAGE><TPOA>@@sender@@</TPOA>"
    + ITEMS
    + b"</DATA>",
    root="DATA",
    fields={"message": "hello", "sender": "Shop"},
    text_field="message",
    item=lambda value: b"<SMS><MOBILEPHONE>" + value + b"</MOBILEPHONE></SMS>",
    item_value="33612345678",
)

#: the answers the sandboxes give to a send with ``answer_format="xml"``
ANSWER_SHAPES = {
    "net2sms": Shape(
        name="net2sms",
        template=XML_DECLARATION
        + PROLOG
        + b"<response><status>1</status><id>@@id@@</id><balance>999</balance>"
        + b"<remarks>@@remarks@@</remarks>"
        + ITEMS
        + b"</response>",
        root="response",
        fields={"id": "1000000001", "remarks": "Success"},
        text_field="remarks",
        item=lambda value: b"<error>" + value + b"</error>",
        item_value="",
    ),
    "allmysms": Shape(
        name="allmysms",
        template=XML_DECLARATION
        + PROLOG
        + b"<RESPONSE><status>100</status><statusText>@@text@@</statusText><invalidNumbers/>"
        + b"<campaignId>1000000002</campaignId><credits>999</credits><creditsUsed>1"
        + b"</creditsUsed><nbContacts>1</nbContacts><nbSms>1</nbSms><smsIds>"
        + ITEMS
        + b"</smsIds></RESPONSE>",
        root="RESPONSE",
        fields={"text": "Le message a été envoyé"},
        text_field="text",
        item=lambda value: (
            b"<SMS><phoneNumber>"
            + value
            + b"</phoneNumber><smsId>00000003-2265-11e5-bf51-0025907cd72e</smsId></SMS>"
        ),
        item_value="33612345678",
    ),
    "smspartner": Shape(
        name="smspartner",
        template=XML_DECLARATION
        + PROLOG
        + b"<result><entry>true</entry><entry>200</entry><entry>@@id@@</entry><entry>1</entry>"
        + b"<entry>0.038</entry><entry>@@currency@@</entry>"
        + ITEMS
        + b"</result>",
        root="result",
        fields={"id": "1000000004", "currency": "EUR"},
        text_field="currency",
        item=lambda value: b"<entry>" + value + b"</entry>",
        item_value="x",
    ),
}
ANSWER_OPTIONS: dict[str, dict[str, Any]] = {
    "net2sms": {"key": "demo-key", "answer_format": "xml"},
    "allmysms": {"login": "demo", "api_key": "demo-key", "answer_format": "xml"},
    "smspartner": {"api_key": "demo-key", "answer_format": "xml"},
}
ANSWER_RECIPIENTS = {"net2sms": "306912345678", "allmysms": "33612345678"}


def wsdl_shape(address: str) -> Shape:
    """The bridge's own document/literal WSDL, served for ``address``, with a
    ``wsdl:documentation`` holding the text and the list."""
    document = render(DOCUMENT_WSDL, address)
    head, _, rest = document.partition(b"?>")
    start = rest.index(b"<wsdl:definitions")
    end = rest.index(b">", start) + 1
    template = (
        XML_DECLARATION
        + PROLOG
        + rest[start:end]
        + b"<wsdl:documentation>@@text@@"
        + ITEMS
        + b"</wsdl:documentation>"
        + rest[end:]
    )
    return Shape(
        name="wsdl",
        template=template,
        root="wsdl:definitions",
        fields={"text": "The iSMS send and query service"},
        text_field="text",
        item=lambda value: b"<p>" + value + b"</p>",
        item_value="x",
    )


QUERY_ANSWER = (
    f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP_ENV}">'
    f'<soap:Body><tns:queryResponse xmlns:tns="{TNS}"><status>Delivered</status>'
    "</tns:queryResponse></soap:Body></soap:Envelope>"
).encode()


# a stub of a provider (or of a WSDL host) --------------------------------------------------


class StubServer:
    """Answers every GET with ``get`` and every POST with ``post`` (a :class:`Hostile`:
    its declared length is sent as Content-Length, then the connection is closed)."""

    def __init__(self) -> None:
        self.get = Hostile(b"")
        self.post = Hostile(b"")
        self.requests = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, hostile: Hostile) -> None:
                stub.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                declared = hostile.declared_length
                self.send_header("Content-Length", str(declared or len(hostile.body)))
                if declared is not None:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                try:
                    self.wfile.write(hostile.body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up: good
                    self.close_connection = True

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._answer(stub.get)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self._answer(stub.post)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# `smsxml serve` in its own process ---------------------------------------------------------


def rss(pid: int) -> int:
    """Resident memory of process ``pid``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


class ServeProcess:
    """`smsxml serve` with no sandbox and no dispatch: it accepts and stores, and opens
    no connection of its own, so any connection the canary gets came from a parser."""

    def __init__(self, workdir: Path, *, fast_lane: bool) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        env = {
            **os.environ,
            "PYTHONWARNINGS": "ignore",
            "SMSXML_DATABASE_URL": f"sqlite:///{workdir / f'hostile-{self.port}.sqlite3'}",
            "SMSXML_SQLITE_SYNCHRONOUS": "NORMAL",
            "SMSXML_DISPATCH__WORKERS": "0",
            "SMSXML_DEMO_CREDITS": "100000000",
            "SMSXML_FAST_LANE": "true" if fast_lane else "false",
            "SMSXML_CALLBACK_TOKEN": CALLBACK_SECRET,
            # the injection attacks fail logins on purpose: throttling is tested elsewhere,
            # here it would refuse the valid requests sent meanwhile
            "SMSXML_LOGINS__FREE_FAILURES": "1000000",
            "SMSXML_LOGINS__ACCOUNT_LOCKOUT": "1000000",
            "SMSXML_LOGINS__ADDRESS_LOCKOUT": "1000000",
        }
        self._log = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "smsxml.cli", "serve", "--port", str(self.port), "--no-sandbox"],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=env,
        )
        try:
            wait_for(self._ready, timeout=60, interval=0.1)
            valid_send(self)  # the first login and imports, out of every measure of RSS
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"smsxml serve exited:\n{self.log.read_text()}")
        return b"WSDL:" in self.log.read_bytes()

    @property
    def rss(self) -> int:
        return rss(self.process.pid)

    def log_since(self, offset: int) -> str:
        return self.log.read_bytes()[offset:].decode(errors="replace")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._log.close()


def valid_send(server: ServeProcess, path: str = "/soap") -> str:
    """The id of a valid one-recipient send (the proof that the server still answers)."""
    answer = httpx.post(
        server.url + path,
        content=soap_shape("valid", typed=False).valid(),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text[:300]
    return answer.text.split("<id>")[1].split("</id>")[0]


def post_raw(
    port: int,
    path: str,
    hostile: Hostile,
    content_type: str,
    meanwhile: Callable[[], object],
) -> tuple[int | None, bytes]:
    """POST ``hostile`` on a raw socket: the headers and half the body, then
    ``meanwhile()`` (a valid request on another connection, answered while this one is in
    flight), then the rest; the status and body of the answer (None: no answer)."""
    body = hostile.body
    length = hostile.declared_length if hostile.declared_length is not None else len(body)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
        f'SOAPAction: ""\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n'
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT) as sock:
        half = len(body) // 2
        for part, then in ((head + body[:half], meanwhile), (body[half:], None)):
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused (and closed) before the whole body, e.g. a 413 on its headers
            if then is not None:
                then()  # the valid request, on another connection, all the same
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
            return response.status, response.read()
        except (ConnectionResetError, http.client.HTTPException, TimeoutError):
            return None, b""
        finally:
            response.close()


# entry points ---------------------------------------------------------------------------------


class EntryPoint(ABC):
    """One place hostile XML arrives; :meth:`deliver` drives the real interface."""

    shape: Shape
    #: False: the entry point reads files, so an HTTP-only attack means nothing to it
    http = True
    #: False: it never reads XML at all (a valid document is refused like any other)
    reads_xml = True
    server: ServeProcess | None = None
    path = ""  # an HTTP entry point's URL path

    @abstractmethod
    def deliver(self, hostile: Hostile) -> Outcome:
        """What the entry point made of ``hostile``."""

    def _post(self, hostile: Hostile) -> tuple[int | None, str, dict[str, Any]]:
        """POST ``hostile`` to this HTTP entry point's ``path`` while a valid send is
        answered on another connection: the status, the answer's text, and what to check
        beside it."""
        assert self.server is not None
        server, answered = self.server, []
        status, body = post_raw(
            server.port,
            self.path,
            hostile,
            "text/xml; charset=utf-8",
            lambda: answered.append(valid_send(server)),
        )
        extra = {"answered_meanwhile": bool(answered), "status": status}
        return status, body.decode(errors="replace"), extra


class SoapEntry(EntryPoint):
    def __init__(self, server: ServeProcess, path: str, shape: Shape) -> None:
        self.server, self.path, self.shape = server, path, shape

    def deliver(self, hostile: Hostile) -> Outcome:
        status, text, extra = self._post(hostile)
        if status == 200 and "<id>" in text:
            return Outcome(False, "answered", seen=text, extra=extra)
        if status == 500 and "<faultstring>" in text:
            reason = text.split("<faultstring>")[1].split("</faultstring>")[0]
            return Outcome(True, reason, seen=text, extra=extra)
        if status is not None and 400 <= status < 500:
            return Outcome(True, f"HTTP {status}: {text[:200]}", seen=text, extra=extra)
        return Outcome(True, f"HTTP {status}", clean=False, seen=text, extra=extra)


class CallbackEntry(EntryPoint):
    """A delivery callback URL: the reports are forms and JSON, never parsed as XML; an
    XML body is refused like any unreadable report."""

    shape = CALLBACK_SHAPE
    reads_xml = False

    def __init__(self, server: ServeProcess, provider: str) -> None:
        self.server, self.provider = server, provider
        self.path = f"/dlr/{provider}/{callback_token(CALLBACK_SECRET, provider)}"

    def deliver(self, hostile: Hostile) -> Outcome:
        status, text, extra = self._post(hostile)
        if status == 200:
            return Outcome(False, "answered", seen=text, extra=extra)
        if status is not None and 400 <= status < 500 and status != 404:
            return Outcome(True, f"HTTP {status}: {text[:200]}", seen=text, extra=extra)
        return Outcome(True, f"HTTP {status}", clean=False, seen=text, extra=extra)

    def post_form(self, fields: dict[str, str]) -> httpx.Response:
        """A report as the provider sends it (a form), for the control."""
        assert self.server is not None
        return httpx.post(self.server.url + self.path, data=fields, timeout=10)


class CliEntry(EntryPoint):
    """`smsxml validate FILE` or `smsxml convert --to json FILE` as a user runs them."""

    shape = FEED_SHAPE
    http = False

    def __init__(self, command: str, workdir: Path) -> None:
        self.command, self.workdir = command, workdir

    def deliver(self, hostile: Hostile) -> Outcome:
        path = self.workdir / "feed.xml"
        path.write_bytes(hostile.body)
        args = [sys.executable, "-m", "smsxml.cli", self.command]
        if self.command == "convert":
            args += ["--to", "json", "-o", str(self.workdir / "feed.json")]
        run = subprocess.run(
            [*args, str(path)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            cwd=self.workdir,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        seen = run.stdout + run.stderr
        if self.command == "convert" and run.returncode == 0:
            seen += (self.workdir / "feed.json").read_text(errors="replace")
        if run.returncode == 0:
            return Outcome(False, "valid", seen=seen)
        located = f"{path}:" in seen and run.returncode == 1
        return Outcome(True, seen[:300], clean=located and "Traceback" not in seen, seen=seen)


class ProviderEntry(EntryPoint):
    """A provider client reading its send answer (``answer_format="xml"``) from a stub."""

    def __init__(self, kind: str, stub: StubServer) -> None:
        self.kind, self.stub = kind, stub
        self.shape = ANSWER_SHAPES[kind]

    def deliver(self, hostile: Hostile) -> Outcome:
        self.stub.get = self.stub.post = hostile
        client: Provider = build(
            self.kind, self.stub.url + "/", timeout=10, **ANSWER_OPTIONS[self.kind]
        )
        recipient = ANSWER_RECIPIENTS.get(self.kind, "33612345678")
        try:
            sent = client.send(OutgoingMessage(sender="Shop", recipients=[recipient], text="hi"))
        except SmsxmlError as error:
            return Outcome(True, str(error)[:300], seen=repr(error))
        finally:
            client.close()
        return Outcome(False, "answered", seen=repr(sent))


class WsdlEntry(EntryPoint):
    """The zeep client loading a WSDL (over HTTP from the stub, or a local file) and
    calling ``query``; the stub answers the call."""

    def __init__(self, stub: StubServer, workdir: Path | None) -> None:
        self.stub, self.workdir = stub, workdir
        self.shape = wsdl_shape(stub.url + "/soap")
        self.http = workdir is None

    def deliver(self, hostile: Hostile) -> Outcome:
        self.stub.get = hostile
        self.stub.post = Hostile(QUERY_ANSWER)
        if self.workdir is None:
            client = SoapClient(wsdl=self.stub.url + "/soap?wsdl", timeout=5)
        else:
            path = self.workdir / "service.wsdl"
            path.write_bytes(hostile.body)
            client = SoapClient(wsdl=path, timeout=5)
        try:
            status = client.query("1000000001", "306912345678")
        except SmsxmlError as error:
            return Outcome(True, str(error)[:300], seen=repr(error))
        finally:
            client.close()
        return Outcome(False, "answered", seen=repr(status))


def timed(deliver: Callable[[Hostile], Outcome], hostile: Hostile) -> tuple[Outcome, float]:
    started = time.monotonic()
    outcome = deliver(hostile)
    return outcome, time.monotonic() - started
