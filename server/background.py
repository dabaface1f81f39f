"""Long-running processes: daemon threads that stop together (the dispatcher's workers
and the delivery tracker's pollers share this lifecycle), and a settled heap."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Background", "bound_malloc_arenas", "settle_heap"]

#: glibc malloc arenas a server process may use (mallopt's M_ARENA_MAX, parameter -8)
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8


class Background:
    """A set of daemon threads that watch one ``stopping`` event."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def spawn(self, label: str, target: Callable[..., Any], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=label, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every thread to stop and wait for each (at most ``timeout`` seconds)."""
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()


def settle_heap() -> None:
    """Once a long-running process has built everything, hide those objects from the
    garbage collector (gc.freeze): otherwise every full collection walks the ~100,000
    objects of the imports, a 50-120 ms pause for every request in flight (measured
    under load); later collections then only walk what requests leave behind."""
    gc.collect()
    gc.freeze()


def bound_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for the threads created from now on; whether it applied.

    glibc gives each thread that allocates its own arena (up to 8 per core), and each keeps
    the high-water mark of the largest request its thread served: after 100,000-recipient
    sends on each of its 8 threads, `smsxml serve` held 250 MiB more for good (480 MiB
    through spyne). Two arenas bound that (48 MiB measured); the threads allocate under
    the GIL anyway, so they hardly contend for them. Not glibc (musl, macOS): nothing.

    The endpoints only (serve, gunicorn): the dispatch worker's 64 senders did contend
    (single-recipient dispatch ~10 % slower in paired runs), and its requests are small."""
    path = ctypes.util.find_library("c")
    if path is None:
        return False
    mallopt = getattr(ctypes.CDLL(path), "mallopt", None)
    return mallopt is not None and bool(mallopt(_M_ARENA_MAX, arenas))
