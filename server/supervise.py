"""Helper processes beside a server (the writer, the dispatcher): started with the
server, started again when they exit, stopped with it.

A helper is given its parent's pid and exits by itself when that process is gone (a
parent killed outright runs no clean-up), so no helper outlives its server.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

from smsxml.server.settings import Settings

__all__ = ["DispatchProcess", "Supervised", "parent_alive"]

log = logging.getLogger("smsxml.server")


def parent_alive(parent: int) -> bool:
    """Whether this process's parent is still ``parent`` (an orphan is adopted by init)."""
    return os.getppid() == parent


class Supervised:
    """One helper process, kept running until :meth:`stop`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        ready: Callable[[], bool] = lambda: True,
        ready_timeout: float = 60.0,
    ) -> None:
        """``stdin``: written to the helper at each start (its settings); ``ready``: what
        says it has started (waited for, at most ``ready_timeout`` seconds)."""
        self.name = name
        self.argv = list(argv)
        self.stdin = stdin
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    def start(self) -> Supervised:
        self._spawn()
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"{self.name}-supervisor", daemon=True
        )
        self._supervisor.start()
        return self

    def _spawn(self) -> None:
        self.process = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE if self.stdin is not None else None
        )
        if self.stdin is not None and self.process.stdin is not None:
            self.process.stdin.write(self.stdin)
            self.process.stdin.close()
        deadline = time.monotonic() + self.ready_timeout
        while not self.ready() and self.process.poll() is None:
            if time.monotonic() > deadline:
                log.warning("the %s process is not ready yet", self.name)
                return
            time.sleep(0.05)

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            if self.process is not None and self.process.poll() is not None:
                log.warning(
                    "the %s process exited (%s): starting it again",
                    self.name,
                    self.process.returncode,
                )
                _forget_metrics(self.process.pid)
                self._spawn()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask it to stop (SIGTERM), wait ``timeout`` seconds, then kill it."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None:
            _forget_metrics(self.process.pid)


def _forget_metrics(pid: int) -> None:
    """A dead helper's live gauges (``smsxml_dispatching``) no longer count in /metrics
    (prometheus_client's multiprocess mode keeps a file per process until told)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # unannotated


class DispatchProcess(Supervised):
    """``python -m smsxml.server.worker`` beside a server, given its settings on stdin: the
    server's, less what only the server does (sandboxes, the demo account)."""

    def __init__(self, settings: Settings) -> None:
        helper = settings.model_copy(update={"sandbox": False, "demo": False})
        super().__init__(
            "dispatcher",
            [sys.executable, "-m", "smsxml.server.worker", str(os.getpid())],
            stdin=helper.model_dump_json().encode(),
        )
