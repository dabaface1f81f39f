"""The bridge under gunicorn: smsxml.server.wsgi:application with the shipped
configuration (server/gunicorn.conf.py), its writer and dispatch processes."""

from __future__ import annotations

import http.client
import logging
import os
import signal
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from werkzeug.test import Client

from smsxml.server import wsgi

from ..conftest import free_port, wait_for
from .conftest import GUNICORN, start_gunicorn
from .processes import children, helpers
from .test_serve import ENV, SEND


def _tables(database: Path) -> set[str]:
    """The tables of an SQLite file (none while it does not exist)."""
    if not database.exists():
        return set()
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master")}


def _writer_processes(master: int) -> list[int]:
    """The writer processes (python -m smsxml.server.writer) of ``master``."""
    return helpers(master, b"smsxml.server.writer")


def _listening(port: int) -> int:
    """How many sockets listen on 127.0.0.1:``port`` (/proc/net/tcp: LISTEN is 0A)."""
    local = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1:4:2] == [local, "0A"])


def _dispatching(port: int) -> list[str]:
    """What a few scrapes of /metrics say of the processes that dispatch (summed)."""
    return [
        line
        for _ in range(4)
        for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines()
        if line.startswith("smsxml_dispatching ")
    ]


def test_gunicorn_serves_the_bridge_with_the_shipped_config(tmp_path: Path) -> None:
    """gunicorn -c server/gunicorn.conf.py smsxml.server.wsgi:application builds the
    bridge in every worker before any request, starts the writer and the dispatch
    processes (restarted if they die, stopped with the master), answers ?wsdl and send,
    closes kept-alive connections now and then, and its /metrics count the requests of
    every worker."""
    port = free_port()
    env = {
        **ENV,
        "SMSXML_DATABASE_URL": f"sqlite:///{tmp_path / 'g.sqlite3'}",
        "SMSXML_PUBLIC_URL": "https://sms.example.org",
        "SMSXML_BIND": f"127.0.0.1:{port}",
        "SMSXML_WORKERS": "2",
        "SMSXML_REQUESTS_PER_CONNECTION": "3",
    }
    process = start_gunicorn(tmp_path, env)
    writers: list[int] = []
    try:
        # each worker builds its bridge (migrations included) before its first request
        database = tmp_path / "g.sqlite3"
        wait_for(lambda: "deliveries" in _tables(database), timeout=60)

        def wsdl() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/soap?wsdl", timeout=5)
            except httpx.HTTPError:
                return None

        answer = wait_for(wsdl, timeout=60, interval=0.2)
        assert answer.status_code == 200
        assert b'location="https://sms.example.org/soap"' in answer.content
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["status"] == "ok"
        writers = _writer_processes(process.pid)
        assert len(writers) == 1
        # each worker has a listening socket of its own: the kernel spreads connections
        assert _listening(port) == 2
        sent = httpx.post(
            f"http://127.0.0.1:{port}/soap",
            content=SEND.encode(),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"send"'},
            timeout=10,
        )
        assert sent.status_code == 200, sent.text
        message_id = sent.text.split("<id>")[1].split("</id>")[0]
        with closing(sqlite3.connect(database)) as db:
            assert db.execute(
                "SELECT recipients FROM messages WHERE id = ?", (message_id,)
            ).fetchall() == [(1,)]
        # a kept-alive connection is closed after 3 requests (the workers rebalance)
        with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=5)) as connection:
            said = []
            for _ in range(3):
                connection.request("GET", "/healthz")
                answer = connection.getresponse()
                answer.read()
                said.append(answer.getheader("Connection"))
        assert said == ["keep-alive", "keep-alive", "close"]
        # /metrics counts what every worker answered, whichever worker serves it
        for _ in range(12):  # a new connection each: both workers answer some
            refused = httpx.post(f"http://127.0.0.1:{port}/soap", content=b"<nope/>", timeout=5)
            assert refused.status_code == 500
        for _ in range(4):
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            assert (
                'smsxml_soap_faults_total{code="InvalidRequest",operation="unknown"} 12.0'
                in metrics
            ), metrics
        # one process of the node dispatches, beside the workers; killed, it is replaced
        wait_for(lambda: _dispatching(port) == ["smsxml_dispatching 1.0"] * 4, timeout=30)
        (dispatcher,) = helpers(process.pid, b"smsxml.server.worker")
        assert os.getpriority(os.PRIO_PROCESS, dispatcher) == 10  # the endpoint comes first
        os.kill(dispatcher, signal.SIGKILL)
        wait_for(lambda: dispatcher not in children(process.pid), timeout=30)
        wait_for(lambda: len(helpers(process.pid, b"smsxml.server.worker")) == 1, timeout=30)
        wait_for(lambda: _dispatching(port) == ["smsxml_dispatching 1.0"] * 4, timeout=60)
        writers += helpers(process.pid, b"smsxml.server.worker")
    finally:
        process.terminate()
        process.wait(20)
    assert not any(Path(f"/proc/{pid}").exists() for pid in writers)


def test_gunicorn_on_a_taken_port_stops_at_once_saying_so(tmp_path: Path) -> None:
    """The workers bind for themselves (reuse_port), yet a taken address stops the master
    before any worker boots, with the reason, rather than workers failing in turn."""
    port = free_port()
    env = {
        **ENV,
        "SMSXML_DATABASE_URL": f"sqlite:///{tmp_path / 't.sqlite3'}",
        "SMSXML_BIND": f"127.0.0.1:{port}",
    }
    with socket.create_server(("127.0.0.1", port)):
        started = subprocess.run(
            GUNICORN, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
    assert started.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in started.stderr
    assert "Booting worker" not in started.stderr


class _Said(logging.Handler):
    """The bridge's log lines, caught on its own logger (a worker may set up the root
    logger's handlers afresh)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The root logger's handlers and level as they were, whatever a worker set up."""
    handlers, level = logging.root.handlers[:], logging.root.level
    yield
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)


def test_a_worker_builds_one_bridge_from_the_environment_without_sandboxes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root_logging: None
) -> None:
    """The first request builds the bridge from SMSXML_* (the in-process sandboxes off:
    they are `smsxml serve`'s), warning that SMSXML_PUBLIC_URL is not set; later ones
    reuse it."""
    for name in list(os.environ):
        if name.startswith("SMSXML_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SMSXML_DATABASE_URL", f"sqlite:///{tmp_path / 'w.sqlite3'}")
    monkeypatch.setenv("SMSXML_DISPATCH__WORKERS", "0")
    monkeypatch.setattr(wsgi, "_bridge", None)
    at_exit: list[object] = []
    monkeypatch.setattr(wsgi.atexit, "register", at_exit.append)
    said = _Said()
    logging.getLogger("smsxml.server").addHandler(said)
    client = Client(wsgi.application)
    try:
        assert client.get("/healthz").status_code == 200
    finally:
        logging.getLogger("smsxml.server").removeHandler(said)
    built = wsgi._bridge
    assert built is not None
    try:
        assert client.get("/soap?wsdl").status_code == 200
        assert wsgi._bridge is built
        assert built.settings.sandbox is False
        assert any("SMSXML_PUBLIC_URL is not set" in line for line in said.lines)
        assert at_exit == [built.stop]  # stopped when the worker exits
    finally:
        built.stop()
