"""Benchmark: `smsxml validate` on a 1,000,000-recipient allmysms feed, against the floor.

Generates the feeds (100,000 and 1,000,000 recipients, every one valid and personalised),
then, interleaved, runs each measurement in its own process:

- ``smsxml validate FILE`` — the real command, every check on (XSD, numbers, DYNAMIC and
  PARAMs, substituted length, duplicates);
- the floor: lxml ``iterparse(schema=…)`` over the same file with direct child access and
  nothing else (research/perf-calibration.md §3, method c1′).

Prints MB/s and peak RSS (the child's ru_maxrss) for each, and the ratios, as medians.
Targets (issue 2): ≥ 20 MB/s, ≤ 64 MB peak at 1M, and the 1M peak within 10 MB of 100k.

    .venv/bin/python bench/feeds.py [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMSXML = str(Path(sys.executable).parent / "smsxml")

FLOOR = """
import sys
from lxml import etree
schema = etree.XMLSchema(etree.parse(sys.argv[2]))
count = 0
for _, sms in etree.iterparse(sys.argv[1], events=("end",), tag="SMS", schema=schema):
    mobile, param = sms[0].text, sms[1].text
    count += 1
    sms.clear(keep_tail=False)
    while sms.getprevious() is not None:
        del sms.getparent()[0]
assert count == int(sys.argv[3])
"""


def make_feed(path: Path, count: int) -> None:
    """A valid feed: French mobiles, one parameter each, like a real campaign."""
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<DATA>\n')
        out.write("  <MESSAGE><![CDATA[Bonjour #param_1#, votre colis arrive demain. ")
        out.write("STOP au 36180]]></MESSAGE>\n  <DYNAMIC>1</DYNAMIC>\n")
        out.write("  <CAMPAIGN_NAME>bench</CAMPAIGN_NAME>\n  <TPOA>Livraison</TPOA>\n")
        for i in range(count):
            out.write(
                f"  <SMS><MOBILEPHONE>336{12000000 + i:08d}</MOBILEPHONE>"
                f"<PARAM_1>Client{i % 1000}</PARAM_1></SMS>\n"
            )
        out.write("</DATA>\n")


def run(argv: list[str]) -> tuple[float, float, float]:
    """Wall time (s), peak RSS (MB) and CPU time (s, user + system) of one child process.

    The peak is the child's VmHWM, sampled until it exits: ru_maxrss would start from the
    parent's size when the child was forked rather than vforked. CPU time is printed too
    because this machine is shared: under load the wall clock of both methods stretches
    unevenly, their CPU seconds much less."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kb = 0
    while True:
        pid, status_code, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        try:
            with open(f"/proc/{child.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            pass
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status_code) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{child.stderr.read().decode()}")
    return elapsed, peak_kb / 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep the generated feeds in this folder")
    args = parser.parse_args()

    workdir = Path(args.keep or tempfile.mkdtemp(prefix="smsxml-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    schema = str(ROOT / "schemas" / "allmysms" / "feed.xsd")
    sizes = {"100k": 100_000, "1M": 1_000_000}
    feeds = {}
    for name, count in sizes.items():
        feeds[name] = workdir / f"feed_{name}.xml"
        if not feeds[name].exists():
            make_feed(feeds[name], count)

    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for _ in range(args.repeat):  # interleaved: A, B, A, B …
        for name, count in sizes.items():
            path = str(feeds[name])
            results.setdefault(("smsxml validate", name), []).append(
                run([SMSXML, "validate", "--quiet", path])
            )
            results.setdefault(("floor", name), []).append(
                run([sys.executable, "-c", FLOOR, path, schema, str(count)])
            )

    def median(key: tuple[str, str], index: int) -> float:
        return statistics.median(sample[index] for sample in results[key])

    print(
        f"feeds: 100k = {feeds['100k'].stat().st_size / 1e6:.1f} MB, "
        f"1M = {feeds['1M'].stat().st_size / 1e6:.1f} MB; medians of {args.repeat} runs\n"
    )
    header = f"{'method':<18}{'feed':>6}{'time s':>9}{'MB/s':>8}{'CPU s':>8}{'MB/CPU s':>10}"
    print(header + f"{'peak RSS MB':>13}")
    for method, name in results:
        seconds, cpu = median((method, name), 0), median((method, name), 2)
        size_mb = feeds[name].stat().st_size / 1e6
        print(
            f"{method:<18}{name:>6}{seconds:>9.2f}{size_mb / seconds:>8.1f}{cpu:>8.2f}"
            f"{size_mb / cpu:>10.1f}{median((method, name), 1):>13.1f}"
        )
    ours, floor = ("smsxml validate", "1M"), ("floor", "1M")
    size = feeds["1M"].stat().st_size / 1e6
    ours_mbps, floor_mbps = size / median(ours, 0), size / median(floor, 0)
    print(
        f"\nratio smsxml/floor at 1M: speed {ours_mbps / floor_mbps:.2f} (wall), "
        f"{median(floor, 2) / median(ours, 2):.2f} (CPU), "
        f"peak RSS {median(ours, 1) / median(floor, 1):.2f}"
    )
    growth = median(ours, 1) - median(("smsxml validate", "100k"), 1)
    print(f"smsxml peak RSS growth 100k → 1M: {growth:+.1f} MB")
    verdict = ours_mbps >= 20 and median(ours, 1) <= 64 and growth <= 10
    print(f"targets (≥ 20 MB/s, ≤ 64 MB, growth ≤ 10 MB): {'met' if verdict else 'NOT met'}")
    if not args.keep:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
