"""Helper processes beside a server: started with it, started again when they exit,
stopped (killed if need be) with it, and gone when their parent is."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from smsxml.server.supervise import Supervised, parent_alive

from ..conftest import wait_for


def test_a_helper_knows_whether_its_parent_is_still_there() -> None:
    """This process's parent is alive for it; any other pid is not its parent."""
    assert parent_alive(os.getppid())
    assert not parent_alive(os.getpid())


def test_a_helper_that_exits_is_started_again_with_its_settings(tmp_path: Path) -> None:
    """A helper that exits (a crash) is started again, given the same stdin each time;
    once stopped, it is not."""
    starts = tmp_path / "starts"
    helper = Supervised(
        "recorder",
        [sys.executable, "-c", f"import sys; open({str(starts)!r}, 'a').write(sys.stdin.read())"],
        stdin=b"settings\n",
    ).start()
    try:
        wait_for(lambda: starts.exists() and starts.read_text().count("\n") >= 2, timeout=30)
    finally:
        helper.stop(timeout=10)
    assert set(starts.read_text().splitlines()) == {"settings"}
    assert helper.process is not None and helper.process.poll() is not None


def test_a_helper_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    """stop() asks with SIGTERM, then kills a helper that has not exited in time."""
    ready = tmp_path / "ready"
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        f" open({str(ready)!r}, 'w').close(); time.sleep(120)"
    )
    helper = Supervised("stubborn", [sys.executable, "-c", stubborn], ready=ready.exists)
    helper.start()
    assert ready.exists()  # start() waited for it
    helper.stop(timeout=0.5)
    assert helper.process is not None and helper.process.returncode == -signal.SIGKILL
