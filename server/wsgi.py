"""The bridge as a WSGI application for production servers: ``gunicorn -c
server/gunicorn.conf.py smsxml.server.wsgi:application``.

Settings come from the environment and ``SMSXML_CONFIG`` (a TOML file), as for
``smsxml serve``. Each worker process builds its own bridge after the fork (database
connections and threads do not survive a fork). The shipped config runs dispatch and
delivery tracking in a process of its own beside the workers, which then only accept
(``SMSXML_DISPATCH__WORKERS=0``); without it, every worker dispatches too. Several
machines share the queue through the database's leases. The in-process
sandboxes are for ``smsxml serve``: under gunicorn, point the providers at real gateways
or at a separate ``smsxml sandbox``.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from smsxml.server import logs
from smsxml.server.app import BridgeApp
from smsxml.server.background import settle_heap
from smsxml.server.settings import Settings

__all__ = ["application", "warm_up"]

log = logging.getLogger("smsxml.server")

_bridge: BridgeApp | None = None
_lock = threading.Lock()


def _get() -> BridgeApp:
    global _bridge
    if _bridge is None:
        with _lock:
            if _bridge is None:
                settings = Settings.load(None)
                logs.configure(settings.log_level)
                if not settings.public_url:  # host and port are gunicorn's bind, not these
                    log.warning(
                        "SMSXML_PUBLIC_URL is not set: the WSDL and callback URLs say %s",
                        settings.address,
                    )
                if settings.sandbox:
                    settings = settings.model_copy(update={"sandbox": False})
                bridge = BridgeApp(settings)
                bridge.start()  # nothing to start when dispatch runs elsewhere
                atexit.register(bridge.stop)
                _bridge = bridge
    return _bridge


def warm_up() -> None:
    """Build this worker's bridge now, then settle the heap (gunicorn's
    ``post_worker_init`` calls it, so that no request waits for either)."""
    _get()
    settle_heap()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI entry point (the bridge is built once per worker, before its first request)."""
    return _get()(environ, start_response)
