"""The commands a user runs: `smsxml serve` (the README's main command) and `smsxml
sandbox`; `serve --send-demo` is test_demo's, gunicorn with the shipped configuration
test_wsgi's. The helpers here read and stop those processes for the other modules."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ..conftest import free_port, wait_for
from .processes import helpers

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
        dispatchers = helpers(process.pid, b"smsxml.server.worker")
        assert dispatchers, "the dispatch process is not running"
        process.send_signal(stop_with)
        assert process.wait(15) == 0
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in dispatchers), timeout=15)
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


SEND = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    '<t:send xmlns:t="http://smsxml.org/isms/1"><username>demo</username>'
    "<password>demo</password><from>Shop</from><to><recipients>306912345678</recipients>"
    "</to><message>hello</message><coding>GSM</coding><flash>false</flash></t:send>"
    "</soap:Body></soap:Envelope>"
)


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
