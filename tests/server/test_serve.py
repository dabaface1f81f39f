"""The commands a user runs: `smsxml serve` (the README's main command), gunicorn with
the shipped configuration, and `smsxml sandbox`."""

from __future__ import annotations

import http.client
import os
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from smsxml.server.accounts import Accounts
from smsxml.server.app import BridgeApp

from ..conftest import free_port, wait_for
from .conftest import bridge_settings, start_gunicorn

ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def _read_until(process: subprocess.Popen[bytes], wanted: list[str], timeout: float) -> str:
    """stderr of ``process`` until every wanted text appeared (or fail after timeout)."""
    seen = b""
    assert process.stderr is not None
    descriptor = process.stderr.fileno()
    selector = selectors.DefaultSelector()
    selector.register(descriptor, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while not all(w.encode() in seen for w in wanted):
        if time.monotonic() > deadline or process.poll() is not None:
            raise AssertionError(f"missing {wanted!r} in:\n{seen.decode(errors='replace')}")
        if selector.select(timeout=0.5):
            seen += os.read(descriptor, 65536)  # unbuffered: select() sees what is left
    selector.close()
    return seen.decode(errors="replace")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
    if process.stderr is not None:
        process.stderr.close()


def test_serve_send_demo_shows_a_message_reach_delivered(tmp_path: Path) -> None:
    """`smsxml serve --send-demo` on its embedded defaults prints the demo going to Delivered."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "smsxml.cli", "serve", "--port", str(port), "--send-demo"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=ENV,
    )
    try:
        output = _read_until(
            process,
            [
                f"WSDL:      http://127.0.0.1:{port}/soap?wsdl",
                "demo: 306912345678 Delivered",
                "demo: 306912345670 Failed",
            ],
            timeout=60,
        )
    finally:
        _stop(process)
    assert "database:  sqlite:///smsxml.sqlite3" in output
    assert (tmp_path / "smsxml.sqlite3").exists()  # the embedded default: a SQLite file here
    assert "Traceback" not in output
    assert process.returncode in (0, -signal.SIGINT)


def _ignore_sigint() -> None:
    """What a non-interactive shell does to a job it starts in the background."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_serve_stops_cleanly_on_sigint_and_sigterm(tmp_path: Path, stop_with: int) -> None:
    """SIGINT (even when the starting shell left it ignored) and SIGTERM (supervisors,
    containers) stop `smsxml serve` and its dispatch process, exit status 0."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "smsxml.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=ENV,
        preexec_fn=_ignore_sigint,
    )
    try:
        _read_until(process, ["dispatching from"], timeout=60)
        helpers = _helpers(process.pid, b"smsxml.server.worker")
        assert helpers, "the dispatch process is not running"
        process.send_signal(stop_with)
        assert process.wait(15) == 0
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in helpers), timeout=15)
    finally:
        _stop(process)  # a no-op once it has exited


def test_serve_on_a_taken_port_says_so(tmp_path: Path) -> None:
    """A port someone else listens on: one clear line and exit status 1, no traceback."""
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        result = subprocess.run(
            [sys.executable, "-m", "smsxml.cli", "serve", "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=ENV,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in result.stderr
    assert "Traceback" not in result.stderr


def _tables(database: Path) -> set[str]:
    """The tables of an SQLite file (none while it does not exist)."""
    if not database.exists():
        return set()
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master")}


SEND = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    '<t:send xmlns:t="http://smsxml.org/isms/1"><username>demo</username>'
    "<password>demo</password><from>Shop</from><to><recipients>306912345678</recipients>"
    "</to><message>hello</message><coding>GSM</coding><flash>false</flash></t:send>"
    "</soap:Body></soap:Envelope>"
)


def _children(master: int) -> dict[int, bytes]:
    """The processes whose parent is ``master``, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == master:
            found[int(entry.name)] = command
    return found


def _helpers(master: int, module: bytes) -> list[int]:
    """The helper processes (python -m ``module``) of ``master``."""
    return [pid for pid, command in _children(master).items() if module in command]


def _writer_processes(master: int) -> list[int]:
    """The writer processes (python -m smsxml.server.writer) of ``master``."""
    return _helpers(master, b"smsxml.server.writer")


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
        (dispatcher,) = _helpers(process.pid, b"smsxml.server.worker")
        assert os.getpriority(os.PRIO_PROCESS, dispatcher) == 10  # the endpoint comes first
        os.kill(dispatcher, signal.SIGKILL)
        wait_for(lambda: dispatcher not in _children(process.pid), timeout=30)
        wait_for(lambda: len(_helpers(process.pid, b"smsxml.server.worker")) == 1, timeout=30)
        wait_for(lambda: _dispatching(port) == ["smsxml_dispatching 1.0"] * 4, timeout=60)
        writers += _helpers(process.pid, b"smsxml.server.worker")
    finally:
        process.terminate()
        process.wait(20)
    assert not any(Path(f"/proc/{pid}").exists() for pid in writers)


def test_sandbox_command_serves_every_provider(tmp_path: Path) -> None:
    """`smsxml sandbox` lists the five prefixes and answers a vendor-shaped request."""
    port = free_port()
    config = tmp_path / "sandbox.toml"
    config.write_text('[account]\nusername = "alice"\npassword = "pw"\ncredits = 42\n')
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smsxml.cli",
            "sandbox",
            "--port",
            str(port),
            "--config",
            str(config),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=ENV,
    )
    try:
        output = _read_until(process, ["allmysms", "account: alice / pw"], timeout=30)
        answer = httpx.get(
            f"http://127.0.0.1:{port}/isms/api/http/credits.php",
            params={"username": "alice", "password": "pw"},
        )
    finally:
        _stop(process)
    assert f"isms        http://127.0.0.1:{port}/isms" in output
    assert answer.text == "Credits:42.00"


def test_workers_starting_together_share_one_demo_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every worker adds the demo account unless it exists; a worker that loses the race
    (another one inserted it between its look and its insert) starts all the same."""
    settings = bridge_settings(tmp_path)
    BridgeApp(settings).stop()
    monkeypatch.setattr(Accounts, "get", lambda self, name: None)  # it looked too early
    late = BridgeApp(settings)
    try:
        assert [account.name for account in late.store.accounts.all()] == ["demo"]
    finally:
        late.stop()


def test_a_bridge_on_every_address_without_a_public_url_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its WSDL would advertise http://0.0.0.0:…, which no client can reach."""
    with caplog.at_level("WARNING", logger="smsxml.server"):
        BridgeApp(bridge_settings(tmp_path, host="0.0.0.0", port=8080)).stop()
        BridgeApp(
            bridge_settings(tmp_path, host="0.0.0.0", public_url="https://sms.example.org")
        ).stop()
    warnings = [r.getMessage() for r in caplog.records if "public_url" in r.getMessage()]
    assert len(warnings) == 1
    assert "http://0.0.0.0:8080/soap" in warnings[0]
