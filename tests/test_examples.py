"""The examples in examples/ and the README run as shown."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import ROOT


def test_provider_examples_run_against_the_sandboxes() -> None:
    """examples/providers.py sends through all five clients and prints each answer."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "providers.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert [line.split()[0] for line in lines[:5]] == [
        "net2sms",
        "easysms",
        "smspartner",
        "isms",
        "allmysms",
    ]
    assert "status=101" in lines[4] and lines[-1].startswith("[StatusUpdate(")
