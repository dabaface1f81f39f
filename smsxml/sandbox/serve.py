"""``smsxml sandbox``: the sandboxes served by granian, in one worker process.

Why granian: werkzeug's development server parses HTTP in Python and answers about
1,400 sends/s on a 2-core machine; granian parses and writes HTTP in Rust, off the GIL,
so the Python thread that runs spends its time on the sandbox itself (figures in
docs/sandbox.md, measured by ``bench/sandbox.py``).

Why one process: the sandbox's state (accounts, messages, each provider's own stores,
fault counters and rate-limit windows, the seeded random generator) lives in that
process's memory exactly as under :class:`~smsxml.sandbox.SandboxServer`, so every answer
is the same; one process already serves about twice the 5,000 requests/s asked, while
sharing that state between processes would put every request through a shared store for
at most one more core, which the load generator needs too.

Why werkzeug still, when a provider has ``drop_rate``: a dropped connection is closed
without a byte of answer, which needs the connection's socket; granian gives a WSGI
application none (an exception there becomes a 500, a failing body a truncated 200).
"""

from __future__ import annotations

import encodings.idna  # noqa: F401 - see _when_listening
import gc
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from functools import partial

from granian.constants import HTTPModes, Interfaces
from granian.log import LogLevels
from granian.server import MPServer

from smsxml.sandbox.app import SandboxServer, WSGIApp, make_app
from smsxml.sandbox.core import Sandbox, SandboxConfig

__all__ = ["THREADS", "free_port", "granian_server", "needs_werkzeug", "sandbox_app", "serve"]

#: Python threads answering at once (granian's own default for WSGI): a thread waits out
#: a ``latency`` fault, so this bounds latency-faulted throughput (512 / 0.05 s = 10,240/s);
#: threads start only when needed, and fewer measured no faster without faults
THREADS = 512
#: seconds the worker has to stop before it is killed: on Ctrl-C it gets SIGINT from the
#: terminal and SIGTERM from granian's main process at once, and then sometimes never
#: leaves granian's shutdown wait (nothing in it needs saving: the state is in memory)
STOP_TIMEOUT = 3
#: how often the worker freezes survivors out of the cyclic collector's sight, and looks
#: whether granian's main process is still there (seconds)
HOUSEKEEPING_EVERY = 1.0


def needs_werkzeug(config: SandboxConfig) -> bool:
    """Whether a provider drops connections, which only werkzeug's server can do."""
    return any(faults.drop_rate > 0 for faults in config.faults.values())


def granian_server(target: str, host: str, port: int) -> MPServer:
    """Granian with one worker process for the WSGI application ``target``
    (``module:attr``; only a name when ``serve`` is given a ``target_loader``); the bench
    serves its floor with this same setup."""
    logging.getLogger("_granian").addFilter(_deliberate_threads)
    return MPServer(
        target,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=1,
        blocking_threads=THREADS,
        http=HTTPModes.http1,
        websockets=False,
        workers_kill_timeout=STOP_TIMEOUT,
        log_level=LogLevels.warning,
    )


def _deliberate_threads(record: logging.LogRecord) -> bool:
    """Drop granian's warning that THREADS is many for two cores: they wait, not compute."""
    return "Python threads" not in record.getMessage()


def sandbox_app(config: SandboxConfig) -> WSGIApp:
    """The sandboxes of ``config``, built in granian's worker process: threads do not
    survive its fork, so the callback thread starts here."""
    sandbox = Sandbox(config)
    app = make_app(sandbox)
    sandbox.start()
    threading.Thread(
        target=_housekeeping, args=(os.getppid(),), name="sandbox-housekeeping", daemon=True
    ).start()
    return app


def _housekeeping(parent: int) -> None:
    """Every second: freeze what survived so far, and leave if the main process is gone.

    Freezing moves objects out of the cyclic collector's sight. The store only grows (a
    load test leaves millions of messages) and its objects never become garbage; in view,
    each full collection rescans all of them and stalls every answer (190 ms at 100,000
    messages, growing with the store). Answers leave no cyclic garbage behind
    (``make_app`` breaks werkzeug's one cycle), so freezing keeps nothing that would
    have been freed.

    A worker whose main process was killed (SIGKILL skips granian's shutdown) would
    otherwise serve on, orphaned, holding the port.
    """
    while True:
        time.sleep(HOUSEKEEPING_EVERY)
        gc.freeze()
        if os.getppid() != parent:
            os._exit(0)


def free_port(host: str) -> int:
    """A port free on ``host`` now (granian binds in its worker, so port 0 cannot be
    read back from it)."""
    family, address = _resolve(host, 0)
    with socket.socket(family) as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def serve(config: SandboxConfig, host: str, port: int, ready: Callable[[str], None]) -> None:
    """Serve every sandbox on ``host:port`` until interrupted (SIGINT or SIGTERM);
    ``ready(url)`` is called once the port answers."""
    if needs_werkzeug(config):
        server = SandboxServer(config, host=host, port=port)  # bound from here on
        ready(server.url)
        server.serve_forever()
        return
    family, address = _resolve(host, port)  # granian takes IP addresses, not names
    _check_free(family, address, port)
    granian = granian_server("smsxml.sandbox.serve:sandbox_app", address, port)
    granian.on_startup(
        partial(_when_listening, address, port, partial(ready, f"http://{host}:{port}"))
    )
    granian.serve(target_loader=partial(sandbox_app, config), wrap_loader=False)


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, str]:
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    return family, str(address[0])


def _check_free(family: socket.AddressFamily, address: str, port: int) -> None:
    """Raise OSError (EADDRINUSE) if something listens on ``address:port``, as werkzeug's
    bind would: granian binds with SO_REUSEPORT, so a second sandbox would otherwise
    share the port with the first, the kernel handing connections to each in turn, each
    with its own state."""
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
        probe.bind((address, port))


def _when_listening(address: str, port: int, ready: Callable[[], None]) -> None:
    """Call ``ready`` from a thread once ``address:port`` accepts connections: granian's
    worker binds it only after loading the sandbox, after granian's own start-up.

    The thread runs while granian forks the worker: had it been importing then (the
    ``idna`` codec, on its first ``getaddrinfo``), the worker would inherit the module
    half-imported and fail every later lookup of a host (delivery callbacks); the codec
    is imported with this module instead."""

    def wait() -> None:
        while True:
            try:
                socket.create_connection((address, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.02)
        ready()

    threading.Thread(target=wait, name="sandbox-ready", daemon=True).start()
