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

On the wire: frames of JSON (never pickle) after a 4-byte length, on a Unix socket only
this user can reach (its folder is 0700).
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

from smsxml.errors import InsufficientCredit
from smsxml.server import logs
from smsxml.server.acceptance import NewMessage
from smsxml.server.accounts import AccountInfo
from smsxml.server.background import settle_heap
from smsxml.server.supervise import Supervised, parent_alive

if TYPE_CHECKING:
    from smsxml.server.store import Store

__all__ = ["WriterClient", "WriterProcess", "serve"]

log = logging.getLogger("smsxml.server.writer")

#: how long a worker waits for the writer's answer before committing the send itself
ANSWER_TIMEOUT = 10.0
#: after the writer could not be reached, how long a worker commits alone before trying again
RETRY_AFTER = 1.0
_LENGTH = struct.Struct("!I")


def send_frame(connection: socket.socket, data: bytes) -> None:
    connection.sendall(_LENGTH.pack(len(data)) + data)


def receive_frame(connection: socket.socket) -> bytes:
    """One frame; EOFError if the other end closed (OSError, e.g. a timeout, as raised)."""
    (length,) = _LENGTH.unpack(_receive(connection, _LENGTH.size))
    return _receive(connection, length)


def _receive(connection: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return bytes(data)


def encode(message: NewMessage) -> bytes:
    account = message.account
    return json.dumps(
        [
            [account.id, account.name, account.credits],
            message.message_id,
            message.sender,
            message.text,
            message.coding,
            message.flash,
            message.pending,
            message.count,
            message.parts,
            message.send_at.isoformat() if message.send_at else None,
            message.dlr_url,
        ]
    ).encode()


def decode(frame: bytes) -> NewMessage:
    account, message_id, sender, text, coding, flash, pending, count, parts, send_at, dlr = (
        json.loads(frame)
    )
    return NewMessage(
        AccountInfo(*account),
        message_id,
        sender,
        text,
        coding,
        flash,
        pending,
        count,
        parts,
        datetime.fromisoformat(send_at) if send_at else None,
        dlr,
    )


class WriterClient:
    """A worker's way to the writer: one connection per thread."""

    def __init__(self, path: str, *, timeout: float = ANSWER_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._local = threading.local()
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []

    def commit(self, message: NewMessage) -> str | None:
        """The message's id once the writer committed it; None if the writer did not
        take it or did not answer (the caller commits it then). Raises
        :class:`InsufficientCredit` as :meth:`Acceptance.commit` does."""
        connection = self._connection()
        if connection is None:
            return None
        try:
            send_frame(connection, encode(message))
            kind, value = json.loads(receive_frame(connection))
        except (OSError, EOFError, ValueError) as error:
            log.warning("the writer process did not answer (%s): committing here", error)
            self._drop(connection)
            return None
        if kind == "ok":
            return str(value)
        if kind == "insufficient":
            raise InsufficientCredit(message.account.name)
        log.warning("the writer process could not commit (%s): committing here", value)
        return None

    def _connection(self) -> socket.socket | None:
        connection: socket.socket | None = getattr(self._local, "connection", None)
        if connection is None and time.monotonic() >= self._retry_at:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.settimeout(self.timeout)
            try:
                connection.connect(self.path)
            except OSError as error:
                connection.close()
                self._retry_at = time.monotonic() + RETRY_AFTER
                log.warning("the writer process is not reachable (%s): committing here", error)
                return None
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _drop(self, connection: socket.socket) -> None:
        self._local.connection = None
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)
        connection.close()

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()


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
    from smsxml.server.settings import Settings
    from smsxml.server.store import Store

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
