"""`smsxml serve`'s HTTP server: waitress, with deadlines for reading a request and a cap
on open connections, so that slow or stalled clients cannot hold connections forever.

What waitress enforces by itself (3.0, read in its source): ``channel_timeout`` closes a
connection *idle* that long, but every byte received counts as activity, so a client
sending a byte every few seconds (slow loris) is never idle; ``connection_limit`` stops
accepting beyond that many open connections. So the deadlines are added here: the
channel stamps when a request's first byte and the end of its headers arrive, and the
server's maintenance pass (every second) closes a connection whose headers took longer
than ``header_timeout`` or whose body took longer than ``body_timeout``. Once a request
is whole, the application's own time is not limited here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from smsxml.server.settings import HttpSettings
from smsxml.server.soap import SOAP_LIMITS

__all__ = ["create_server"]

#: seconds between the maintenance passes that enforce the deadlines (waitress's own
#: default, 30 s, would let a 10 s deadline run to 40)
CHECK_INTERVAL = 1


class _DeadlineChannel(HTTPChannel):
    """A connection that knows since when it has been reading its current request."""

    request_began: float | None = None
    headers_done: float | None = None

    def received(self, data: bytes) -> bool:
        now = time.monotonic()
        if self.request is None and data:
            self.request_began, self.headers_done = now, None
        result: bool = super().received(data)
        if self.request is None:  # the request is whole (and handed on): no deadline
            self.request_began = self.headers_done = None
        elif self.headers_done is None and self.request.headers_finished:
            self.headers_done = now
        return result

    def late(self, now: float, deadlines: HttpSettings) -> bool:
        if self.headers_done is not None:
            return now - self.headers_done > deadlines.body_timeout
        if self.request_began is not None:
            return now - self.request_began > deadlines.header_timeout
        return False


class _DeadlineServer(TcpWSGIServer):
    channel_class = _DeadlineChannel
    deadlines = HttpSettings()

    def maintenance(self, now: float) -> None:
        # types-waitress is wrong in two places here: waitress passes time.time() (a float)
        # and keeps active_channels as a dict of fd -> channel
        super().maintenance(now)  # type: ignore[arg-type]  # idle ones (channel_timeout)
        moment = time.monotonic()
        for channel in list(self.active_channels.values()):  # type: ignore[attr-defined]
            if isinstance(channel, _DeadlineChannel) and channel.late(moment, self.deadlines):
                channel.will_close = True  # the loop closes it on its next pass


def create_server(
    application: Callable[..., Any],
    settings: HttpSettings,
    *,
    host: str,
    port: int,
    threads: int,
    ident: str,
) -> TcpWSGIServer:
    """A waitress server on ``host:port`` (the first address it resolves to) with the
    deadlines and the connection cap of ``settings``."""
    adjustments = Adjustments(
        host=host,
        port=port,
        threads=threads,
        ident=ident,
        channel_timeout=settings.idle_timeout,
        connection_limit=settings.connection_limit,
        cleanup_interval=CHECK_INTERVAL,
        # refused with 413 as soon as the headers declare more: waitress's default (1 GiB)
        # would buffer it, or hold the connection until the body deadline
        max_request_body_size=SOAP_LIMITS.max_bytes,
        # the bridge reads X-Forwarded-For itself, from LoginSettings.trusted_proxies only
        # (smsxml.server.logins), the same under waitress and gunicorn
        clear_untrusted_proxy_headers=False,
    )
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adjustments.threads)
    server = _DeadlineServer(
        application,
        {},
        dispatcher=dispatcher,
        adj=adjustments,
        # after parsing, listen holds socket tuples; types-waitress types it as the strings
        sockinfo=adjustments.listen[0],  # type: ignore[arg-type]
    )
    server.deadlines = settings
    return server
