"""The feed commands run in a memory budget that the number of recipients and of errors
does not move (issue 11): 1,000,000 JSON recipients and an error-dense feed, each ≤ 64 MiB
peak, through the real command line in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# The command's own entry point, in a process whose peak (VmHWM) is read as it exits:
# exact where sampling /proc from outside could miss the last moments, and ru_maxrss of a
# forked child starts from pytest's size (see test_feedstream).
PROBE = """
import atexit, sys
def peak():
    with open("/proc/self/status") as status:
        kib = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    sys.stderr.write(f"\\npeak-kib {kib}\\n")
atexit.register(peak)
from smsxml.cli import main
sys.argv = ["smsxml", *sys.argv[1:]]
main()
"""

BUDGET_MIB = 64
GROWTH_MIB = 10  # from 100,000 to 1,000,000 recipients


def _json_feed(path: Path, count: int, number: str = "336{:08d}") -> Path:
    with path.open("w", encoding="utf-8") as out:
        out.write('{"DATA": {\n  "MESSAGE": "Bonjour #param_1#",\n  "DYNAMIC": "1",\n')
        out.write('  "TPOA": "Shop",\n  "SMS": [\n')
        for i in range(count):
            sms = {"MOBILEPHONE": number.format(12000000 + i), "PARAM_1": f"Client{i % 1000}"}
            out.write(("    " if i == 0 else "   ,") + json.dumps(sms) + "\n")
        out.write("  ]\n}}\n")
    return path


def _xml_feed(path: Path, count: int, number: str) -> Path:
    with path.open("w", encoding="utf-8") as out:
        out.write("<DATA>\n  <MESSAGE>Bonjour #param_1#</MESSAGE>\n  <DYNAMIC>1</DYNAMIC>\n")
        for i in range(count):
            mobile = number.format(12000000 + i)
            out.write(f"  <SMS><MOBILEPHONE>{mobile}</MOBILEPHONE><PARAM_1>A</PARAM_1></SMS>\n")
        out.write("</DATA>\n")
    return path


def _peak_mib(*args: str, expect: int = 0) -> float:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=600,
    )
    assert run.returncode == expect, run.stderr[-2000:]
    return int(run.stderr.rsplit("peak-kib ", 1)[1]) / 1024


@pytest.mark.slow
def test_a_million_json_recipients_fit_the_budget(tmp_path: Path) -> None:
    """validate, convert (both ways) and inspect of 1,000,000 JSON recipients each peak
    ≤ 64 MiB, and validate within 10 MiB of its peak at 100,000."""
    small = _json_feed(tmp_path / "100k.json", 100_000)
    large = _json_feed(tmp_path / "1m.json", 1_000_000)
    as_xml = tmp_path / "1m.xml"
    peaks = {
        "validate 100k": _peak_mib("validate", str(small)),
        "validate 1M": _peak_mib("validate", str(large)),
        "inspect 1M": _peak_mib("inspect", str(large)),
        "convert json→xml 1M": _peak_mib("convert", str(large), "--to", "xml", "-o", str(as_xml)),
        "convert xml→json 1M": _peak_mib(
            "convert", str(as_xml), "--to", "json", "-o", str(tmp_path / "back.json")
        ),
    }
    assert max(peaks.values()) <= BUDGET_MIB, peaks
    assert peaks["validate 1M"] - peaks["validate 100k"] <= GROWTH_MIB, peaks
    assert as_xml.read_text(encoding="utf-8").count("<SMS>") == 1_000_000


@pytest.mark.slow
@pytest.mark.parametrize("syntax", ["json", "xml"])
@pytest.mark.parametrize(
    "number", ["3012{:08d}", "x{:08d}"], ids=["invalid-numbers", "schema-violations"]
)
def test_error_dense_feeds_fit_the_budget(tmp_path: Path, syntax: str, number: str) -> None:
    """400,000 recipients, every one wrong, every problem printed: ≤ 64 MiB, as for 40,000
    (memory does not follow the number of errors)."""
    make = _json_feed if syntax == "json" else _xml_feed
    peaks = [
        _peak_mib(
            "validate",
            "--max-errors",
            "0",
            str(make(tmp_path / f"{n}.{syntax}", n, number)),
            expect=1,
        )
        for n in (40_000, 400_000)
    ]
    assert peaks[1] <= BUDGET_MIB and peaks[1] - peaks[0] <= GROWTH_MIB, peaks
