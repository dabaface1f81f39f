"""Bounds the matrix cannot see in one request: the memory a server keeps after a burst
of large sends, and how much of a flooding answer a client reads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsxml.errors import SmsxmlError
from smsxml.providers import build
from smsxml.providers.base import OutgoingMessage
from smsxml.providers.transport import MAX_ANSWER_BYTES
from smsxml.soap import SoapClient

from ..conftest import ROOT
from .harness import ANSWER_OPTIONS, ANSWER_RECIPIENTS, ServeProcess, soap_shape
from .payloads import Targets, hundred_thousand_items

#: large sends in a row: more than the server's 8 worker threads, so every thread's heap
#: has held one
BURST = 10


@pytest.mark.slow
@pytest.mark.parametrize("lane", ["fast", "spyne"])
def test_large_sends_leave_the_memory_bounded(tmp_path: Path, lane: str) -> None:
    """Ten sends of 100,000 recipients each are accepted, and the server then holds at
    most twice what the first one left (plus 16 MiB): its memory does not grow with the
    number of large requests it has served."""
    server = ServeProcess(tmp_path, fast_lane=lane == "fast")
    try:
        body = hundred_thousand_items(soap_shape("burst", typed=False), _NO_TARGETS).body
        start = server.rss
        growth = []
        for _ in range(BURST):
            answer = httpx.post(
                server.url + "/soap",
                content=body,
                headers={"Content-Type": "text/xml; charset=utf-8"},
                timeout=60,
            )
            assert answer.status_code == 200 and "<id>" in answer.text, answer.text[:300]
            growth.append(server.rss - start)
    finally:
        server.stop()
    mib = [round(g / 2**20) for g in growth]
    assert growth[-1] <= 2 * growth[0] + 16 * 2**20, f"RSS growth after each send (MiB): {mib}"


_NO_TARGETS = Targets("", "", "", "")
WSDL = ROOT / "schemas" / "isms" / "sms.wsdl"

#: what a flooding provider sends before it gives up: far more than any answer
FLOOD = 64 * 1024 * 1024


class Flood:
    """A provider that answers every request with an endless XML text, and counts how
    much of it the client read before it hung up."""

    def __init__(self) -> None:
        self.sent = 0
        flood = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _flood(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(FLOOD + 20))
                self.send_header("Connection", "close")
                self.end_headers()
                chunk = b" " * 65536
                try:
                    self.wfile.write(b"<response><remarks>")
                    while flood.sent < FLOOD:
                        self.wfile.write(chunk)
                        flood.sent += len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what the test wants
                self.close_connection = True

            do_GET = do_POST = _flood  # noqa: N815 - http.server's naming

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def flood() -> Iterator[Flood]:
    server = Flood()
    yield server
    server.close()


#: how much of a flood the provider may get out before the client refuses the answer: the
#: clients' limit (MAX_ANSWER_BYTES, 10 MiB) plus what the kernel's socket buffers take
#: in on loopback meanwhile (up to ~8 MiB); far below the 64 MiB flood
READ_CAP = MAX_ANSWER_BYTES + 12 * 1024 * 1024


@pytest.mark.parametrize(
    ("kind", "threaded"),
    [
        *((kind, threaded) for kind in ANSWER_OPTIONS for threaded in (False, True)),
        ("isms-soap", False),
    ],
)
def test_a_client_stops_reading_a_flooding_answer(flood: Flood, kind: str, threaded: bool) -> None:
    """A provider answering 64 MiB: the client refuses the answer with an error after
    reading at most 16 MiB of it (``threaded``: the keep-alive transport the dispatcher
    uses)."""
    if kind == "isms-soap":
        client: Any = SoapClient(wsdl=WSDL, address=flood.url + "/soap", timeout=10)
        call = lambda: client.query("1", "306912345678")  # noqa: E731
    else:
        options: dict[str, Any] = {"timeout": 10, **ANSWER_OPTIONS[kind]}
        client = build(kind, flood.url + "/", threaded=threaded, **options)
        message = OutgoingMessage(
            sender="Shop", recipients=[ANSWER_RECIPIENTS.get(kind, "33612345678")], text="hi"
        )
        call = lambda: client.send(message)  # noqa: E731
    try:
        with pytest.raises(SmsxmlError):
            call()
    finally:
        client.close()
    assert flood.sent <= READ_CAP, f"read {flood.sent / 2**20:.0f} MiB of the answer"
