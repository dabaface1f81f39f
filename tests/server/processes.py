"""Servers in processes of their own, for the tests that kill them: `smsxml` commands,
waiting for them to answer, finding their helper processes, and a node of `smsxml
sandbox` beside `smsxml serve` on a SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import zeep

from smsxml.sandbox.app import SENT_PATH

from ..conftest import free_port, wait_for


def smsxml(*args: str, log: Path) -> subprocess.Popen[bytes]:
    """`smsxml ARGS` in a process of its own, its output appended to ``log``."""
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "smsxml.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )


def wait_http(
    url: str,
    timeout: float = 60,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Wait until ``url`` answers; fail at once if ``process`` (the server) died, and show
    the end of its ``log`` either way: on a loaded CI machine that is all there is to read."""

    def up() -> bool:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{process.args} exited ({process.returncode})" + tail())
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    def tail() -> str:
        return "; its log ends:\n" + log.read_text(errors="replace")[-4000:] if log else ""

    try:
        wait_for(up, timeout=timeout, interval=0.1)
    except AssertionError as error:
        if "exited" in str(error):
            raise
        raise AssertionError(f"{url} did not answer within {timeout}s" + tail()) from None


def children(master: int) -> dict[int, bytes]:
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


def helpers(master: int, module: bytes) -> list[int]:
    """The helper processes of ``master`` whose command line holds ``module`` (e.g.
    ``python -m smsxml.server.worker``)."""
    return [pid for pid, command in children(master).items() if module in command]


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


class SqliteNode:
    """`smsxml sandbox` (its ``sandbox`` TOML) and `smsxml serve` on a SQLite file, every
    route to the sandbox's iSMS (``isms``: more of its provider settings), each in a
    process of its own; :meth:`stop` ends both."""

    def __init__(self, tmp_path: Path, *, sandbox: str, dispatch: str, isms: str = "") -> None:
        self.port, sandbox_port = free_port(), free_port()
        self.sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        self.database = tmp_path / "bridge.sqlite3"
        self.log = tmp_path / "processes.log"
        sandbox_toml, config = tmp_path / "sandbox.toml", tmp_path / "bridge.toml"
        sandbox_toml.write_text(sandbox)
        config.write_text(
            f'database_url = "sqlite:///{self.database}"\nroutes = {{ "*" = ["isms"] }}\n'
            f"[dispatch]\n{dispatch}"
            f'[providers.isms]\nkind = "isms"\nbase_url = "{self.sandbox_url}/isms"\n'
            f'poll_interval = 0.2\n{isms}options = {{ username = "demo", password = "demo" }}\n'
        )
        self._serve = ["serve", "--port", str(self.port), "--no-sandbox", "--config", str(config)]
        self.sandbox = smsxml(
            "sandbox", "--port", str(sandbox_port), "--config", str(sandbox_toml), log=self.log
        )
        self.bridge = smsxml(*self._serve, log=self.log)
        try:
            wait_http(f"{self.sandbox_url}{SENT_PATH}/isms", process=self.sandbox, log=self.log)
            self._wait_bridge()
        except BaseException:
            self.stop()
            raise

    def _wait_bridge(self) -> None:
        wait_http(f"http://127.0.0.1:{self.port}/healthz", process=self.bridge, log=self.log)

    def restart_bridge(self) -> None:
        """`smsxml serve` again, on the same file and port (the last one has exited)."""
        self.bridge = smsxml(*self._serve, log=self.log)
        self._wait_bridge()

    def service(self) -> Any:
        """A zeep client's service on the bridge (SOAP 1.1)."""
        return zeep.Client(f"http://127.0.0.1:{self.port}/soap?wsdl").service

    def send_each(self, numbers: list[str]) -> list[tuple[str, str]]:
        """One SOAP send of "Hi" per number, from the demo account: (message id, number)."""
        service = self.service()
        return [
            (service.send("demo", "demo", "Shop", {"recipients": [n]}, "Hi", "GSM", False), n)
            for n in numbers
        ]

    def final_states(self, sent: list[tuple[str, str]], timeout: float = 60) -> list[str]:
        """The state of each of ``sent`` (:meth:`send_each`) once all are final."""
        service = self.service()

        def all_final() -> list[str] | None:
            states = [service.query("demo", "demo", mid, n) for mid, n in sent]
            return states if all(s in ("Delivered", "Failed") for s in states) else None

        states: list[str] = wait_for(all_final, timeout=timeout, interval=0.3)
        return states

    def taken(self) -> Counter[str]:
        """How often the sandbox's iSMS took each recipient."""
        return Counter(httpx.get(f"{self.sandbox_url}{SENT_PATH}/isms", timeout=10).json())

    def stop(self) -> None:
        stop(self.bridge, self.sandbox)
