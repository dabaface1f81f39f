"""The bridge as a WSGI application for production servers: ``gunicorn -c
server/gunicorn.conf.py smsxml.server.wsgi:application``.

Settings come from the environment and ``SMSXML_CONFIG`` (a TOML file), as for
``smsxml serve``. Each worker process builds its own bridge after the fork (database
connections and threads do not survive a fork). One worker of a gunicorn master runs
dispatch and delivery tracking (``SMSXML_DISPATCH_LOCK``, set by the shipped config: the
worker holding that file lock does; when it dies, another takes over), so that rate
limits hold per node and providers are polled once; without it, every worker dispatches.
Several machines share the queue through the database's leases. The in-process
sandboxes are for ``smsxml serve``: under gunicorn, point the providers at real gateways
or at a separate ``smsxml sandbox``.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import IO, Any

from smsxml.server.app import BridgeApp
from smsxml.server.background import settle_heap
from smsxml.server.settings import Settings

__all__ = ["application", "warm_up"]

log = logging.getLogger("smsxml.server")

_bridge: BridgeApp | None = None
_lock = threading.Lock()
_dispatch_lock: IO[bytes] | None = None  # held by the worker that dispatches


def _get() -> BridgeApp:
    global _bridge
    if _bridge is None:
        with _lock:
            if _bridge is None:
                settings = Settings.load(None)
                if not settings.public_url:  # host and port are gunicorn's bind, not these
                    log.warning(
                        "SMSXML_PUBLIC_URL is not set: the WSDL and callback URLs say %s",
                        settings.address,
                    )
                if settings.sandbox:
                    settings = settings.model_copy(update={"sandbox": False})
                bridge = BridgeApp(settings)
                _start_background(bridge, os.environ.get("SMSXML_DISPATCH_LOCK"))
                atexit.register(bridge.stop)
                _bridge = bridge
    return _bridge


def _start_background(bridge: BridgeApp, lock_path: str | None) -> None:
    """Start dispatch and tracking now, or (with ``lock_path``) once this process holds
    that file lock: one worker at a time, the next when the holder's process ends."""
    if not lock_path:
        bridge.start()
        return

    def when_our_turn() -> None:
        global _dispatch_lock
        lock = open(lock_path, "a+b")  # noqa: SIM115 - held for the life of the process
        fcntl.flock(lock, fcntl.LOCK_EX)
        _dispatch_lock = lock  # closing it (even by garbage collection) would let go
        bridge.start()

    threading.Thread(target=when_our_turn, name="dispatch-turn", daemon=True).start()


def warm_up() -> None:
    """Build this worker's bridge now, then settle the heap (gunicorn's
    ``post_worker_init`` calls it, so that no request waits for either)."""
    _get()
    settle_heap()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI entry point (the bridge is built once per worker, before its first request)."""
    return _get()(environ, start_response)
