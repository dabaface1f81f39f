"""gunicorn's gthread worker with deadlines for reading a request (server/gunicorn.conf.py
uses it: ``worker_class``).

What gthread enforces by itself (gunicorn 23-27, read in its source and measured): a new
connection waits a few seconds for its first byte before it is put back on the poller,
kept-alive connections are closed after ``keepalive`` idle seconds, and
``worker_connections`` caps open connections per worker. Once a request's first byte is
in, a thread reads it with blocking reads and no deadline: measured on the shipped config
(1 worker, 4 threads), 6 connections sending a byte every 0.5 s were all still open after
20 s, and a normal request meanwhile timed out after 12 s.

Here each request gets ``header_timeout`` (settings ``http``) to send its headers, then
``body_timeout`` for its body and its answer (gunicorn hands the body to the application
as it comes, so the two cannot be told apart here); a watchdog thread shuts down the
socket of a late one, which ends its blocking read and frees the thread.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from smsxml.server.settings import HttpSettings, Settings

__all__ = ["DeadlineThreadWorker"]

CHECK_INTERVAL = 0.5  # seconds between the watchdog's looks


class DeadlineThreadWorker(ThreadWorker):
    """gthread, with a deadline on every request being read."""

    def init_process(self) -> None:
        self.deadlines: HttpSettings = Settings.load(None).http
        self._reading: dict[Any, float] = {}  # connection -> when it must be done
        self._reading_lock = threading.Lock()
        threading.Thread(target=self._watch, name="request-deadlines", daemon=True).start()
        super().init_process()

    def handle(self, conn: Any) -> Any:
        self._until(conn, self.deadlines.header_timeout)
        try:
            return super().handle(conn)
        finally:
            with self._reading_lock:
                self._reading.pop(conn, None)

    def handle_request(self, req: Any, conn: Any) -> Any:
        self._until(conn, self.deadlines.body_timeout)  # the headers are in
        return super().handle_request(req, conn)

    def _until(self, conn: Any, seconds: float) -> None:
        with self._reading_lock:
            self._reading[conn] = time.monotonic() + seconds

    def _watch(self) -> None:
        while True:
            time.sleep(CHECK_INTERVAL)  # a watchdog's period, not a synchronisation
            now = time.monotonic()
            with self._reading_lock:
                late = [conn for conn, deadline in self._reading.items() if deadline < now]
                for conn in late:
                    del self._reading[conn]
            for conn in late:
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns: closed
                except OSError:
                    pass
