"""`smsxml serve --send-demo`: the newcomer's first message, followed until it is final."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from ..conftest import free_port
from .test_serve import ENV, _read_until, _stop


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
