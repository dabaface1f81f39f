"""Chores done once across every process sharing a database: polling one provider,
POSTing clients' delivery reports.

Each chore has a turn, a lock that one process at a time holds: on PostgreSQL a
session-level advisory lock on a connection kept for it (released by the server when
the holder's connection or process dies, so another node takes over), on a SQLite file
a file lock beside the database (every process of the node shares the file). A process
asks for the turn before each round of the chore and keeps it until it stops.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
from typing import IO, TYPE_CHECKING, Any

from smsxml.server.store import sqlite_file

if TYPE_CHECKING:
    from smsxml.server.store import Store

__all__ = ["Turn"]

log = logging.getLogger("smsxml.server")


def _key(chore: str) -> int:
    """A stable signed 64-bit advisory lock key for ``chore``."""
    digest = hashlib.sha256(f"smsxml:{chore}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Turn:
    """One chore's turn: :meth:`mine` says whether this process holds it (taking it when
    it is free)."""

    def __init__(self, store: Store, chore: str) -> None:
        self.store = store
        self.chore = chore
        self._connection: Any = None  # PostgreSQL: the session holding the lock
        self._file: IO[bytes] | None = None  # SQLite: the locked file
        self._lock = threading.Lock()

    def mine(self) -> bool:
        with self._lock:
            try:
                return self._held() or self._take()
            except Exception:  # the database away: not ours until it answers again
                log.warning("cannot take the turn of %s", self.chore, exc_info=True)
                self._drop()
                return False

    def _held(self) -> bool:
        if self._file is not None:
            return True
        if self._connection is None:
            return False
        cursor = self._connection.cursor()  # still alive? (the lock dies with it)
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        return True

    def _take(self) -> bool:
        path = sqlite_file(self.store.url)
        if self.store.is_sqlite:
            if path is None:  # in-memory: no other process can share it
                return True
            handle = open(f"{path}-{self.chore}.lock", "a+b")  # noqa: SIM115 - kept while held
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._file = handle
            return True
        # Any, as self._connection: SQLAlchemy types driver_connection as Optional
        connection: Any = self.store.engine.raw_connection()
        connection.driver_connection.autocommit = True
        cursor = connection.cursor()
        try:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (_key(self.chore),))
            taken = bool(cursor.fetchone()[0])
        finally:
            cursor.close()
        if taken:
            self._connection = connection
        else:  # back to the pool as it came: a pooled connection left in autocommit would
            connection.driver_connection.autocommit = False  # make transactions no-ops
            connection.close()
        return taken

    def release(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the file releases the flock
            self._file = None
        if self._connection is not None:
            try:
                self._connection.invalidate()  # the session ends: so does the lock
            except Exception:
                log.debug("closing the turn's connection failed", exc_info=True)
            self._connection = None
