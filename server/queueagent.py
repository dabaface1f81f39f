"""On SQLite, the dispatcher's SQL in a process of its own, with one thread.

SQLite has one writer at a time, and every send the endpoint accepts waits for that turn.
In the dispatch process, the thread holding the turn competes for the GIL with dozens of
sender threads: Python's sqlite3 gives up the GIL at every step of a statement and at
COMMIT, and taking it back took longer than the SQL. Measured on 2 cores, 20,000 rows
drained while the endpoint took sends: the dispatcher held the write lock about 20 s of
25 with under 1.5 s of CPU, and gunicorn's endpoint accepted 59–333 sends/s (551–673
with this process and the line of :meth:`~smsxml.server.store.Store.writer_turn`). Here
the turn's holder has no other thread to wait for.

The dispatcher's threads call :class:`QueueAgent` as they would call
:class:`~smsxml.server.queue.DeliveryQueue`; each call goes over a pipe to the child
process, which runs it on its own store and answers. Calls take turns (the child has one
thread, and SQLite would serialise their writes anyway). The pipe is an unnamed socket
pair between this process and its child, so pickle crosses no boundary another process
can reach.

If the child dies, the call in progress fails (the dispatcher tries again, and the rows'
leases protect them meanwhile) and the next call starts a new child. The child exits
when its pipe closes: when :meth:`QueueAgent.close` is called or this process is gone.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from smsxml.server.queue import Claimed, Outcomes

__all__ = ["QueueAgent", "QueueAgentError"]

log = logging.getLogger("smsxml.server.dispatch")

#: the calls the child answers: :class:`~smsxml.server.queue.Claims`
_CALLS = frozenset({"claim", "record", "renew", "heartbeat", "leave"})


class QueueAgentError(RuntimeError):
    """A call the child process could not answer (its error, or the child died)."""


class QueueAgent:
    """The dispatcher's queue calls, run by a child process on its own store."""

    def __init__(
        self, database_url: str, *, synchronous: str = "FULL", log_level: str = "INFO"
    ) -> None:
        self.database_url = database_url
        self.synchronous = synchronous
        self.log_level = log_level
        self._context = multiprocessing.get_context("spawn")  # no copy of our threads
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._pipe: Connection | None = None

    def start(self) -> QueueAgent:
        with self._lock:
            self._start()
        return self

    def _start(self) -> None:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(self.database_url, self.synchronous, self.log_level, theirs),
            name="smsxml-queue",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._process, self._pipe = process, ours

    @property
    def pid(self) -> int | None:
        """The child's process id (None before :meth:`start`, after :meth:`close`)."""
        process = self._process
        return process.pid if process is not None else None

    def close(self, timeout: float = 10.0) -> None:
        """Stop the child once the call in progress, if any, is answered."""
        with self._lock:
            pipe, process = self._pipe, self._process
            self._pipe = self._process = None
        if pipe is not None:
            pipe.close()  # the child sees the end of its pipe and exits
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join()

    def _call(self, name: str, *args: Any) -> Any:
        with self._lock:
            if self._process is None or not self._process.is_alive() or self._pipe is None:
                if self._process is not None:
                    log.warning("the queue process is gone: starting it again")
                    self._drop()
                self._start()
            assert self._pipe is not None
            try:
                self._pipe.send((name, args))
                ok, value = self._pipe.recv()
            except (EOFError, OSError) as error:
                self._drop()
                raise QueueAgentError(f"the queue process did not answer {name}: {error}") from None
        if not ok:
            raise QueueAgentError(f"{name} failed in the queue process: {value}")
        return value

    def _drop(self) -> None:
        """Forget a child that died (its pipe closed, its exit status collected)."""
        if self._pipe is not None:
            self._pipe.close()
        if self._process is not None:
            self._process.join(1.0)
        self._pipe = self._process = None

    # DeliveryQueue's calls ---------------------------------------------------------------

    def claim(self, owner: str, limit: int, lease: float) -> list[Claimed]:
        claimed: list[Claimed] = self._call("claim", owner, limit, lease)
        return claimed

    def record(self, outcomes: Outcomes, first_polls: Mapping[str, float] | None = None) -> None:
        self._call("record", outcomes, dict(first_polls or {}))

    def renew(self, owner: str, ids: Sequence[int], lease: float) -> None:
        self._call("renew", owner, list(ids), lease)

    def heartbeat(self, owner: str, lease: float) -> int:
        return int(self._call("heartbeat", owner, lease))

    def leave(self, owner: str) -> None:
        self._call("leave", owner)


def _serve(database_url: str, synchronous: str, log_level: str, pipe: Connection) -> None:
    """The child: answer calls until the pipe closes. Signals are its parent's to act on
    (a terminal's Ctrl-C, a service manager's SIGTERM reach the whole group): the parent
    still has outcomes to record before it stops."""
    from smsxml.server import logs
    from smsxml.server.store import Store

    logs.configure(log_level, "queue")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    store = Store(database_url, synchronous=synchronous)
    try:
        while True:
            try:
                name, args = pipe.recv()
            except (EOFError, OSError):
                return
            try:
                if name not in _CALLS:
                    raise ValueError(f"no such call: {name}")
                answer = (True, getattr(store.queue, name)(*args))
            except Exception as error:
                log.exception("queue process: %s failed", name)
                answer = (False, f"{type(error).__name__}: {error}")
            pipe.send(answer)
    finally:
        store.close()
