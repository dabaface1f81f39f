"""Long-running processes: daemon threads that stop together, a settled heap, bounded
malloc arenas."""

from __future__ import annotations

import gc
import platform
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from smsxml.server import background
from smsxml.server.background import Background, bound_malloc_arenas, settle_heap


def test_stop_asks_every_thread_and_waits_for_each() -> None:
    """Threads spawned on one Background all see ``stopping``, and stop() returns only
    once each has finished its clean-up."""
    work = Background()
    cleaned: list[str] = []
    lock = threading.Lock()

    def loop(label: str) -> None:
        work.stopping.wait()
        with lock:
            cleaned.append(label)

    for label in ("poller", "sender", "reporter"):
        work.spawn(label, loop, label)
    assert cleaned == []  # they wait for the stop
    work.stop(timeout=10)
    assert sorted(cleaned) == ["poller", "reporter", "sender"]


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The heap as the test found it, whatever the test froze."""
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_a_settled_heap_hides_what_was_built_from_the_collector() -> None:
    """After settle_heap the objects built so far are frozen: full collections no longer
    walk them."""
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    settle_heap()
    assert gc.get_freeze_count() > 0


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_malloc_arenas_are_capped_on_glibc() -> None:
    """On glibc the cap applies (checked in a child: it would change this test process)."""
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "from smsxml.server.background import bound_malloc_arenas as b; print(b())",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.stdout.strip() == "True", child.stderr


def test_without_a_c_library_the_arenas_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no C library is found (not glibc, say) nothing is applied, and it says so."""
    monkeypatch.setattr(background.ctypes.util, "find_library", lambda name: None)
    assert bound_malloc_arenas() is False
