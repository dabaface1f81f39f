"""Daemon threads that stop together: the dispatcher's workers and the delivery
tracker's pollers share this lifecycle."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Background"]


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
