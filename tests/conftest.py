"""Fixtures shared by the whole suite: sandboxes on real sockets, a callback receiver, a
clock moved years ahead and back."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from smsxml.sandbox import DeliverySchedule, SandboxConfig, SandboxServer

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT.parent / "shared" / "seeds"

#: fast enough for tests, slow enough to observe Queued/Pending before the final state
FAST_SCHEDULE = DeliverySchedule(pending_after=0.05, final_after=0.25, fail_suffixes=("0",))


#: where the date rules are tested besides today: far behind and far ahead of any day the
#: suite runs on, each at an edge (a leap day; New Year's Eve, already 2032 in Athens)
MOVED_CLOCKS = {
    "2020": datetime(2020, 2, 29, 21, 45, tzinfo=UTC),
    "2031": datetime(2031, 12, 31, 22, 30, tzinfo=UTC),
}


@pytest.fixture(params=["today", *MOVED_CLOCKS])
def moved_clock(request: pytest.FixtureRequest) -> Iterator[datetime]:
    """The test runs today, then with the clock moved to each of MOVED_CLOCKS (and ticking).

    time-machine moves ``time.time`` and ``datetime.now`` for the whole process, threads
    included (the in-process sandboxes and bridges); monotonic clocks, sleeps and waits are
    left alone. Request it before the fixtures that start servers (``usefixtures`` does)."""
    if request.param == "today":
        yield datetime.now(UTC)
        return
    with time_machine.travel(MOVED_CLOCKS[request.param], tick=True):
        yield datetime.now(UTC)


#: ports a server under test may take: below Linux's ephemeral range (32768-60999), so no
#: outgoing connection (the suite makes thousands) can take one between the check and the
#: server's own bind
SERVER_PORTS = range(20000, 32768)


def free_port() -> int:
    """A port nothing listens on (checked a moment ago), for a server started by a test."""
    while True:
        port = random.choice(SERVER_PORTS)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., SandboxServer]]:
    """Start sandboxes with a given config (stopped at the end of the test)."""
    servers: list[SandboxServer] = []

    def start(config: SandboxConfig | None = None) -> SandboxServer:
        server = SandboxServer(config or SandboxConfig(schedule=FAST_SCHEDULE, seed=1)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., SandboxServer]) -> SandboxServer:
    """Every provider sandbox on a free 127.0.0.1 port, demo account, fast schedule."""
    return make_sandbox()


class CallbackReceiver:
    """An HTTP endpoint on 127.0.0.1 that records every request it gets (DLR callbacks)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.port}/dlr"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        body = request.get_data(cache=True)
        entry = {
            "method": request.method,
            "path": request.path,
            "args": dict(request.args),
            "form": dict(request.form),
            "json": request.get_json(silent=True),
            "body": body,
            "content_type": request.content_type,
        }
        with self._lock:
            self.received.append(entry)
        return Response("OK")(environ, start_response)

    def __enter__(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def callbacks() -> Iterator[CallbackReceiver]:
    """Records delivery callbacks POSTed by sandboxes (or anything else)."""
    with CallbackReceiver() as receiver:
        yield receiver
