"""``smsxml sandbox`` run as users run it: its own process, a free 127.0.0.1 port, a TOML
config, stopped (SIGINT, as Ctrl-C) at the end of the test or module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import httpx
import pytest

from ..conftest import free_port, wait_for


class CliSandbox:
    """One ``smsxml sandbox --port P --config F`` process."""

    def __init__(self, folder: Path, config: str) -> None:
        self.config = folder / "sandbox.toml"
        self.config.write_text(config, encoding="utf-8")
        self.log = folder / "sandbox.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CliSandbox:
        command = [sys.executable, "-m", "smsxml.cli", "sandbox", "--port", str(self.port)]
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [*command, "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # killable as a group if it ever hangs
            )
        wait_for(self._answers, timeout=60, interval=0.05)
        return self

    def _answers(self) -> bool:
        """True once the CLI said it serves (its last line, printed when the port accepts)
        and the application answers (its 404 for ``/``)."""
        assert self._process is not None
        if self._process.poll() is not None:
            raise AssertionError(f"smsxml sandbox exited:\n{self.output}")
        if "server: " not in self.output:
            return False
        try:
            return httpx.get(self.url + "/", timeout=1).status_code == 404
        except httpx.TransportError:
            return False

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return  # never started, or already gone (a test killed it)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise AssertionError("smsxml sandbox did not stop on SIGINT") from None


@pytest.fixture
def start_cli(tmp_path: Path) -> Iterator[Callable[[str], CliSandbox]]:
    """Start ``smsxml sandbox`` processes with the given TOML; stopped after the test."""
    started: list[CliSandbox] = []

    def start(config: str) -> CliSandbox:
        folder = tmp_path / f"cli{len(started)}"
        folder.mkdir()
        started.append(CliSandbox(folder, config).__enter__())
        return started[-1]

    yield start
    for cli in started:
        cli.__exit__(None, None, None)
