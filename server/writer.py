"""The writer process: one process commits the sends of every gunicorn worker of a node
(``server/gunicorn.conf.py`` starts it and tells the workers where it listens).

A durable commit costs an fsync (SQLite) or a WAL flush (PostgreSQL), and SQLite has one
writer at a time. Each worker
group-commits the sends of its own threads (:mod:`~smsxml.server.groupcommit`), but
workers still take turns, each paying its own fsync, and a worker's committing thread
shares the GIL with that worker's HTTP threads, so it holds the turn longer. Workers
hand each accepted send over a Unix socket to this process instead, whose threads do
nothing else: one commit then answers the sends of every worker. On PostgreSQL it took
durable one-recipient sends from 1,336 to 2,092 calls/s (bench/soap.py, 2 workers).

Nothing depends on it: a worker that cannot reach it (not started yet, restarting) or
gets no answer in time commits the send itself. A send carries the id its worker drew,
the primary key of its row, so a send the writer stored without answering is not stored
(or charged) twice (:meth:`Acceptance.commit`).

On the wire: frames of JSON (never pickle) after a 4-byte length
(:mod:`~smsxml.server.writerclient`, the workers' side), on a Unix socket only this user
can reach (its folder is 0700).
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import socket
import sys

from smsxml.errors import InsufficientCredit
from smsxml.server import logs
from smsxml.server.acceptance import NewMessage
from smsxml.server.background import settle_heap
from smsxml.server.settings import Settings
from smsxml.server.store import Store
from smsxml.server.supervise import Supervised, parent_alive
from smsxml.server.writerclient import ANSWER_TIMEOUT, decode, receive_frame, send_frame

__all__ = ["WriterProcess", "serve"]

log = logging.getLogger("smsxml.server.writer")


def serve(store: Store, path: str, *, parent: int | None = None) -> None:
    """Commit the sends that arrive on the Unix socket ``path``: every send that has
    arrived, from whichever worker, goes into the next transaction. Returns once the
    process ``parent`` is gone (never if None)."""
    if os.path.exists(path):
        os.unlink(path)  # left by a writer that died
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener,
        selectors.DefaultSelector() as selector,
    ):
        listener.bind(path)
        listener.listen(64)
        selector.register(listener, selectors.EVENT_READ)
        while parent is None or parent_alive(parent):
            batch: list[tuple[socket.socket, NewMessage]] = []
            for key, _ in selector.select(timeout=0.5):
                if key.data is None:
                    connection, _address = listener.accept()
                    connection.settimeout(ANSWER_TIMEOUT)  # a worker sends whole frames
                    selector.register(connection, selectors.EVENT_READ, connection)
                    continue
                connection = key.data
                try:
                    batch.append((connection, decode(receive_frame(connection))))
                except (EOFError, OSError, ValueError):
                    selector.unregister(connection)  # the worker closed its end
                    connection.close()
            if batch:
                _answer(store, batch)


def _answer(store: Store, batch: list[tuple[socket.socket, NewMessage]]) -> None:
    try:
        outcomes = store.acceptance.commit_many([message for _, message in batch])
    except Exception as error:  # e.g. the writers' turn: every worker commits itself
        log.exception("writer: a commit failed")
        outcomes = [error] * len(batch)
    for (connection, _), outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, InsufficientCredit):
            reply = ["insufficient", None]
        elif isinstance(outcome, BaseException):
            log.error("writer: a send could not be stored: %r", outcome)
            reply = ["error", type(outcome).__name__]
        else:
            reply = ["ok", outcome]
        try:
            send_frame(connection, json.dumps(reply).encode())
        except OSError:
            pass  # the worker is gone: it commits the send itself (or never asks again)


class WriterProcess(Supervised):
    """``python -m smsxml.server.writer`` beside gunicorn's master, started again if it
    exits; the master's ``on_exit`` stops it."""

    def __init__(self, path: str, *, ready_timeout: float = 60.0) -> None:
        self.path = path
        super().__init__(
            "writer",
            [sys.executable, "-m", "smsxml.server.writer", path, str(os.getpid())],
            ready=lambda: os.path.exists(path),
            ready_timeout=ready_timeout,
        )

    def _spawn(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)  # left by a writer that died: ready means listening again
        super()._spawn()


def main(argv: list[str] | None = None) -> None:
    """``python -m smsxml.server.writer SOCKET PARENT_PID``: settings as for the workers
    (``SMSXML_*``, ``SMSXML_CONFIG``)."""
    path, parent = argv or sys.argv[1:]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    settings = Settings.load(None)
    logs.configure(settings.log_level, "writer")
    store = Store(settings.database_url, synchronous=settings.sqlite_synchronous)
    settle_heap()  # every send waits for this process: no full collections of the imports
    try:
        serve(store, path, parent=int(parent))
    finally:
        store.close()


if __name__ == "__main__":
    main()
