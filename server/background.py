"""Long-running processes: daemon threads that stop together (the dispatcher's workers
and the delivery tracker's pollers share this lifecycle), and a settled heap."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Background", "settle_heap"]


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
