"""The workers' side of the writer process (:mod:`smsxml.server.writer`): the frames on
its Unix socket, and :class:`WriterClient`, through which the store hands it a send.

On the wire: frames of JSON (never pickle) after a 4-byte length.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time
from datetime import datetime

from smsxml.errors import InsufficientCredit
from smsxml.server.acceptance import NewMessage
from smsxml.server.accounts import AccountInfo

__all__ = ["ANSWER_TIMEOUT", "WriterClient", "decode", "encode", "receive_frame", "send_frame"]

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
