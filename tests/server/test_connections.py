"""`smsxml serve`'s HTTP server (server/connections.py): connections that dribble their
headers or body, or say nothing, are closed within the deadlines of the `http` settings
while a normal SOAP request is answered meanwhile, and open connections are capped.
gunicorn's worker does the same: test_gunicorn_worker."""

from __future__ import annotations

import selectors
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from smsxml.server.app import BridgeServer

from ..conftest import free_port
from .conftest import bridge_settings
from .test_serve import ENV, SEND, _read_until, _stop

DEADLINE = 2  # seconds, for headers, body and idleness alike
#: the server checks deadlines once a second; its loop wakes at least once a second
SLACK = 2.5

HEADERS = b"POST /soap HTTP/1.1\r\nHost: bridge\r\nContent-Type: text/xml\r\n"
BODY_HEADERS = HEADERS + f"Content-Length: {len(SEND)}\r\n\r\n".encode()


class _Slow:
    """A client connection that sends ``prefix`` at once, then ``dribble`` a byte at a time."""

    def __init__(self, port: int, prefix: bytes, dribble: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(prefix)
        self.opened = time.monotonic()
        self.dribble = dribble
        self.closed_after: float | None = None  # seconds after opening

    def next_byte(self) -> None:
        if self.dribble and self.closed_after is None:
            try:
                self.sock.send(self.dribble[:1])
            except OSError:  # reset by the server: closed
                self.closed_after = time.monotonic() - self.opened
            self.dribble = self.dribble[1:]

    def read_end(self) -> None:
        """The server's side is readable: closed (or, wrongly, answered)."""
        try:
            data = self.sock.recv(4096)
        except OSError:
            data = b""
        assert data == b"", f"answered instead of closed: {data[:200]!r}"
        self.closed_after = time.monotonic() - self.opened


def _slow_clients(port: int) -> list[_Slow]:
    """3 connections dribbling headers, 3 dribbling a body, 2 saying nothing."""
    return (
        [_Slow(port, b"", HEADERS * 10) for _ in range(3)]
        + [_Slow(port, BODY_HEADERS, SEND.encode()) for _ in range(3)]
        + [_Slow(port, b"", b"") for _ in range(2)]
    )


def _hold(port: int, clients: list[_Slow]) -> float:
    """Dribble a byte every 0.25 s on every open slow connection until the server closed
    them all (or long past the deadline), while one normal request is sent beside them.
    When the normal request was answered, in seconds after the slow ones opened."""
    answered: list[float] = []

    opened = min(client.opened for client in clients)

    def normal() -> None:
        sent = httpx.post(f"http://127.0.0.1:{port}/soap", content=SEND, timeout=15)
        assert sent.status_code == 200, sent.text
        answered.append(time.monotonic() - opened)

    beside = threading.Thread(target=normal)
    selector = selectors.DefaultSelector()
    for client in clients:
        selector.register(client.sock, selectors.EVENT_READ, client)
    give_up = time.monotonic() + 2 * DEADLINE + SLACK + 5
    try:
        beside.start()
        while any(c.closed_after is None for c in clients) and time.monotonic() < give_up:
            for client in clients:
                client.next_byte()
            for key, _ in selector.select(timeout=0.25):  # the dribble's pace, or a close
                key.data.read_end()
                selector.unregister(key.fileobj)
    finally:
        beside.join(20)
        selector.close()
        for client in clients:
            client.sock.close()
    assert answered, "the normal request was not answered"
    return answered[0]


def _closed_within(clients: list[_Slow], latest: float) -> None:
    times = [c.closed_after for c in clients]
    assert all(t is not None and DEADLINE <= t <= latest for t in times), times


def test_serve_closes_slow_and_stalled_connections_and_answers_others(tmp_path: Path) -> None:
    """Under `smsxml serve`, with 2 s deadlines: 3 connections dribbling headers, 3
    dribbling a body and 2 sending nothing (a byte every 0.25 s keeps each one active) are
    all closed between 2 and 4.5 s after they opened, and a send on a normal connection is
    answered meanwhile, at once."""
    port = free_port()
    env = {
        **ENV,
        "SMSXML_HTTP__HEADER_TIMEOUT": str(DEADLINE),
        "SMSXML_HTTP__BODY_TIMEOUT": str(DEADLINE),
        "SMSXML_HTTP__IDLE_TIMEOUT": str(DEADLINE),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "smsxml.cli", "serve", "--port", str(port), "--no-sandbox"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    try:
        _read_until(process, ["WSDL:"], timeout=60)
        clients = _slow_clients(port)
        answered = _hold(port, clients)
    finally:
        _stop(process)
    # waitress reads every connection in one loop: nobody waits for the slow ones
    assert answered < min(c.closed_after or 0 for c in clients)
    _closed_within(clients, DEADLINE + SLACK)


def test_serve_caps_open_connections(tmp_path: Path) -> None:
    """The waitress server `smsxml serve` builds takes the deadlines and the connection cap
    from the `http` settings (waitress stops accepting at the cap)."""
    settings = bridge_settings(tmp_path, sandbox=False, http={"connection_limit": 7})
    server = BridgeServer(settings)
    try:
        assert server._server.adj.connection_limit == 7
        assert server._server.deadlines.header_timeout == settings.http.header_timeout
    finally:
        server.stop()
