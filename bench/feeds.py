"""Benchmark: `smsxml validate` on allmysms feeds of 1,000,000 recipients, against floors.

Generates the feeds (XML: 100,000 and 1,000,000 recipients, every one valid and
personalised; the same 1,000,000 as JSON; and error-dense feeds of 400,000 recipients whose
every number is invalid, as XML and JSON — issue 11's 20 MB case), then, interleaved, runs
each measurement in its own process:

- ``smsxml validate FILE`` — the real command, every check on (XSD, numbers, DYNAMIC and
  PARAMs, substituted length, duplicates); on the error-dense feeds it exits 1 after
  printing the first 100 problems and counting the rest (the default --max-errors);
- the floors, each reading the same file and doing nothing else: for XML, lxml
  ``iterparse(schema=…)`` with direct child access (research/perf-calibration.md §3,
  method c1′); for JSON, ``ijson.items`` (yajl2_c) with direct key access.

Prints MB/s, recipients/s and peak RSS (the child's VmHWM) for each, and the ratios to
the floor, as medians. Targets (issues 2 and 11): ≥ 20 MB/s, ≤ 64 MB peak at 1M, the 1M
peak within 10 MB of 100k; JSON within the same bounds; error-dense feeds ≤ 64 MB.

    .venv/bin/python bench/feeds.py [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
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

JSON_FLOOR = """
import sys
import ijson
assert ijson.backend == "yajl2_c", ijson.backend
count = 0
with open(sys.argv[1], "rb") as data:
    for sms in ijson.items(data, "DATA.SMS.item"):
        mobile, param = sms["MOBILEPHONE"], sms["PARAM_1"]
        count += 1
assert count == int(sys.argv[3])
"""

MESSAGE = "Bonjour #param_1#, votre colis arrive demain. STOP au 36180"


def make_feed(path: Path, count: int, number: str = "336{:08d}") -> None:
    """A feed of French mobiles (valid), one parameter each, like a real campaign; or,
    with ``number`` "3012{:08d}", Greek numbers that cannot exist (all invalid)."""
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<DATA>\n')
        out.write(f"  <MESSAGE><![CDATA[{MESSAGE}]]></MESSAGE>\n  <DYNAMIC>1</DYNAMIC>\n")
        out.write("  <CAMPAIGN_NAME>bench</CAMPAIGN_NAME>\n  <TPOA>Livraison</TPOA>\n")
        for i in range(count):
            out.write(
                f"  <SMS><MOBILEPHONE>{number.format(12000000 + i)}</MOBILEPHONE>"
                f"<PARAM_1>Client{i % 1000}</PARAM_1></SMS>\n"
            )
        out.write("</DATA>\n")


def make_json_feed(path: Path, count: int, number: str = "336{:08d}") -> None:
    """The same feed as allmysms JSON, one SMS object per line."""
    with path.open("w", encoding="utf-8") as out:
        header = {"MESSAGE": MESSAGE, "DYNAMIC": "1", "CAMPAIGN_NAME": "bench", "TPOA": "Livraison"}
        out.write('{"DATA": {\n' + json.dumps(header)[1:-1] + ',\n  "SMS": [\n')
        for i in range(count):
            sms = {"MOBILEPHONE": number.format(12000000 + i), "PARAM_1": f"Client{i % 1000}"}
            out.write(("    " if i == 0 else "   ,") + json.dumps(sms) + "\n")
        out.write("  ]\n}}\n")


def run(argv: list[str], expect: int = 0) -> tuple[float, float, float]:
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
    if os.waitstatus_to_exitcode(status_code) != expect:
        raise SystemExit(f"failed: {' '.join(argv)}\n{child.stderr.read().decode()}")
    return elapsed, peak_kb / 1024, usage.ru_utime + usage.ru_stime


#: name → (file name, recipients, maker, number format, floor script, exit status of validate)
CASES = {
    "xml 100k": ("feed_100k.xml", 100_000, make_feed, "336{:08d}", FLOOR, 0),
    "xml 1M": ("feed_1M.xml", 1_000_000, make_feed, "336{:08d}", FLOOR, 0),
    "json 1M": ("feed_1M.json", 1_000_000, make_json_feed, "336{:08d}", JSON_FLOOR, 0),
    "xml dense": ("dense_400k.xml", 400_000, make_feed, "3012{:08d}", FLOOR, 1),
    "json dense": ("dense_400k.json", 400_000, make_json_feed, "3012{:08d}", JSON_FLOOR, 1),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep the generated feeds in this folder")
    args = parser.parse_args()

    workdir = Path(args.keep or tempfile.mkdtemp(prefix="smsxml-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    schema = str(ROOT / "schemas" / "allmysms" / "feed.xsd")
    feeds = {}
    for case, (name, count, maker, number, _floor, _status) in CASES.items():
        feeds[case] = workdir / name
        if not feeds[case].exists():
            maker(feeds[case], count, number)

    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for _ in range(args.repeat):  # interleaved: A, B, A, B …
        for case, (_name, count, _maker, _number, floor, status) in CASES.items():
            path = str(feeds[case])
            results.setdefault(("smsxml validate", case), []).append(
                run([SMSXML, "validate", "--quiet", path], expect=status)
            )
            results.setdefault(("floor", case), []).append(
                run([sys.executable, "-c", floor, path, schema, str(count)])
            )

    def median(key: tuple[str, str], index: int) -> float:
        return statistics.median(sample[index] for sample in results[key])

    sizes = ", ".join(f"{case} = {feeds[case].stat().st_size / 1e6:.1f} MB" for case in CASES)
    print(f"feeds: {sizes}; medians of {args.repeat} runs\n")
    header = f"{'method':<17}{'feed':>11}{'time s':>8}{'MB/s':>7}{'recips/s':>10}{'CPU s':>7}"
    print(header + f"{'MB/CPU s':>9}{'peak RSS MB':>12}")
    for method, case in results:
        seconds, cpu = median((method, case), 0), median((method, case), 2)
        size_mb = feeds[case].stat().st_size / 1e6
        print(
            f"{method:<17}{case:>11}{seconds:>8.2f}{size_mb / seconds:>7.1f}"
            f"{CASES[case][1] / seconds:>10,.0f}{cpu:>7.2f}{size_mb / cpu:>9.1f}"
            f"{median((method, case), 1):>12.1f}"
        )
    print()
    for case in CASES:
        if case == "xml 100k":
            continue
        ours, floor = ("smsxml validate", case), ("floor", case)
        print(
            f"ratio smsxml/floor, {case:>10}: speed {median(floor, 0) / median(ours, 0):.2f} "
            f"(wall), {median(floor, 2) / median(ours, 2):.2f} (CPU), "
            f"peak RSS {median(ours, 1) / median(floor, 1):.2f}"
        )

    def mbps(case: str) -> float:
        return feeds[case].stat().st_size / 1e6 / median(("smsxml validate", case), 0)

    def peak(case: str) -> float:
        return median(("smsxml validate", case), 1)

    growth = peak("xml 1M") - peak("xml 100k")
    print(f"smsxml peak RSS growth 100k → 1M (XML): {growth:+.1f} MB")
    verdicts = {
        "XML: ≥ 20 MB/s, ≤ 64 MB, growth ≤ 10 MB": mbps("xml 1M") >= 20
        and peak("xml 1M") <= 64
        and growth <= 10,
        "JSON: ≥ 20 MB/s, ≤ 64 MB": mbps("json 1M") >= 20 and peak("json 1M") <= 64,
        "error-dense: ≤ 64 MB": peak("xml dense") <= 64 and peak("json dense") <= 64,
    }
    for target, met in verdicts.items():
        print(f"targets ({target}): {'met' if met else 'NOT met'}")
    if not args.keep:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
