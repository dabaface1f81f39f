"""bench/load.py, short: concurrent SOAP clients against gunicorn with the shipped
configuration answer without an error, and the server's memory stays bounded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT


@pytest.mark.slow  # 11-19 s: gunicorn's start and warm-up, 3 s of load (CI runs -m slow too)
def test_short_load_run_has_no_errors_and_flat_memory(tmp_path: Path) -> None:
    """8 clients for 3 s: calls answered, 0 errors (non-2xx, faults, socket), the client's
    own checks saw both operations, and RSS at the end ≤ 1.5 × start + 30 MB."""
    figures_file = tmp_path / "load.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "load.py"),
            "--seconds",
            "3",
            "--clients",
            "8",
            "--warmup",
            "1",
            "--floor-seconds",
            "0",
            "--sample",
            "0",
            "--json",
            str(figures_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(figures_file.read_text())
    bridge = figures["bridge"]
    assert bridge["errors"] == 0, bridge["error_sample"]
    assert bridge["sends"] > 0 and bridge["queries"] > 0
    assert bridge["calls"] == bridge["sends"] + bridge["queries"]
    assert bridge["rss_start_mb"] > 0
    assert bridge["rss_end_mb"] <= 1.5 * bridge["rss_start_mb"] + 30, bridge
    assert figures["floor"] is None
