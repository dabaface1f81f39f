"""Dispatch and delivery tracking in a process of their own, without the SOAP endpoint.

``smsxml worker`` runs one; run one or several per node beside endpoints that only
accept (``smsxml serve --no-dispatch``, or gunicorn with ``SMSXML_DISPATCH__WORKERS=0``):
they share the queue through the database (claims with leases, ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL). Provider callbacks still arrive at the endpoints
(``public_url``), which apply them.

``smsxml serve`` and the shipped gunicorn config start one as their helper
(:class:`~smsxml.server.supervise.DispatchProcess`): dispatch is CPU work for many
threads, and sharing a process (a GIL) with the SOAP endpoint starved the endpoint's
answers (20 sends/s accepted while dispatching, against 500 with dispatch next door).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

from sqlalchemy import make_url

from smsxml.sandbox.core import SandboxConfig
from smsxml.server import logs
from smsxml.server.app import BridgeApp
from smsxml.server.background import settle_heap
from smsxml.server.queueagent import QueueAgent
from smsxml.server.settings import Settings
from smsxml.server.supervise import parent_alive

__all__ = ["run_worker"]

log = logging.getLogger("smsxml.server")


def run_worker(
    settings: Settings, sandbox_config: SandboxConfig | None = None, *, parent: int | None = None
) -> None:
    """Dispatch and track until SIGTERM or SIGINT (or until the process ``parent`` is
    gone); then finish the calls in flight and give back the rows not yet sent."""
    if settings.dispatch.workers <= 0:
        raise ValueError("a worker needs dispatch.workers ≥ 1")
    if not settings.public_url:
        log.warning("public_url is not set: providers cannot reach the callback URLs")
    sandbox = None
    provider_urls: dict[str, str] = {}
    if settings.sandbox:  # the in-process sandboxes, as `smsxml serve` has them
        from smsxml.sandbox import PREFIXES, SandboxServer

        sandbox = SandboxServer(sandbox_config).start()
        provider_urls = {kind: sandbox.client_url(kind) for kind in PREFIXES}
    agent = None
    on_sqlite = make_url(settings.database_url).get_backend_name() == "sqlite"
    if settings.dispatch.queue_process and on_sqlite:
        agent = QueueAgent(
            settings.database_url,
            synchronous=settings.sqlite_synchronous,
            log_level=settings.log_level,
        ).start()
    app = BridgeApp(
        settings.model_copy(update={"demo": False}),
        provider_urls=provider_urls,
        dispatch_queue=agent,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        app.start()
        settle_heap()
        log.info("dispatching from %s", settings.database_url.split("@")[-1])
        while not stop.wait(0.5):
            if parent is not None and not parent_alive(parent):
                log.warning("the server is gone: stopping")
                break
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        app.stop()  # records the last outcomes, through the agent
        if agent is not None:
            agent.close()
        if sandbox is not None:
            sandbox.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m smsxml.server.worker PARENT_PID``, the settings as JSON on stdin (so
    that the server's flags, and its sandboxes' addresses, reach it; no secret in the
    environment or the command line)."""
    (parent,) = argv or sys.argv[1:]
    settings = Settings.model_validate_json(sys.stdin.buffer.read())
    logs.configure(settings.log_level, "dispatch")
    os.nice(settings.dispatch.nice)  # its server's answers first: a client waits on them
    run_worker(settings, parent=int(parent))


if __name__ == "__main__":
    main()
