"""The streaming validator: same verdicts as the in-memory path, placed to the column,
in bounded memory whatever the feed's size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from smsxml import feeds
from smsxml.errors import BadInput, Problem
from smsxml.feedstream import fill_columns, inspect_xml_feed, validate_xml_feed

GOOD = """<?xml version="1.0" encoding="UTF-8"?>
<DATA>
  <MESSAGE><![CDATA[Hello #param_1#]]></MESSAGE>
  <DYNAMIC>1</DYNAMIC>
  <TPOA>Shop</TPOA>
  <SMS><MOBILEPHONE>33612345678</MOBILEPHONE><PARAM_1>Ann</PARAM_1></SMS>
  <SMS><MOBILEPHONE>306912345678</MOBILEPHONE><PARAM_1>Νίκος</PARAM_1></SMS>
</DATA>
"""

BAD = """<DATA>
  <MESSAGE>Hello #param_1#</MESSAGE>
  <DYNAMIC>1</DYNAMIC>
  <TPOA>1Shop</TPOA>
  <SMS><MOBILEPHONE>33612345678</MOBILEPHONE><PARAM_1>Ann</PARAM_1></SMS>
  <SMS><MOBILEPHONE>3361234x678</MOBILEPHONE><PARAM_1>Bob</PARAM_1></SMS>
  <SMS><MOBILEPHONE>301234567890</MOBILEPHONE><PARAM_1>Cy</PARAM_1></SMS>
  <SMS><MOBILEPHONE>33612345679</MOBILEPHONE></SMS>
  <SMS><MOBILEPHONE>33612345678</MOBILEPHONE><PARAM_1>Ann</PARAM_1></SMS>
  <SMS><MOBILEPHONE>33612345670</MOBILEPHONE><PARAM_1>Dee</PARAM_1><FOO/></SMS>
  <CAMPAIGN_NAME>late</CAMPAIGN_NAME>
</DATA>
"""


def _write(tmp_path: Path, text: str, name: str = "feed.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_feed_has_no_problems(tmp_path: Path) -> None:
    """A valid feed streams through with its recipients counted and nothing reported."""
    report = validate_xml_feed(_write(tmp_path, GOOD))
    assert report.recipients == 2 and report.problems == []


def test_every_problem_is_found_and_placed(tmp_path: Path) -> None:
    """Schema and rule problems all come out, each at its line and column."""
    path = _write(tmp_path, BAD)
    report = validate_xml_feed(path)
    got = [
        (
            p.line,
            p.column,
            p.message.split(":")[0] if p.message.startswith("Element") else p.message,
        )
        for p in report.problems
    ]
    assert got == [
        (4, 3, "Element 'TPOA'"),
        (6, 8, "Element 'MOBILEPHONE'"),
        (7, 8, "MOBILEPHONE 301234567890 is not a valid phone number"),
        (8, 3, "SMS must carry PARAM_1 (DYNAMIC), found none"),
        (9, 8, "duplicate recipient 33612345678 (first listed on line 5)"),
        (10, 68, "Element 'FOO'"),
        (10, 3, "SMS must carry PARAM_1 (DYNAMIC), found PARAM_1, FOO"),
        (11, 3, "Element 'CAMPAIGN_NAME'"),
    ]


def test_streaming_and_in_memory_agree(tmp_path: Path) -> None:
    """The streaming validator finds what the in-memory validator finds, at the same lines."""
    path = _write(tmp_path, BAD)
    streamed = validate_xml_feed(path).problems
    with pytest.raises(BadInput) as caught:
        feeds.feed_from_xml(BAD.encode())
    in_memory = fill_columns(path, caught.value.problems)
    assert sorted((p.line, p.message) for p in streamed) == sorted(
        (p.line, p.message) for p in in_memory
    )


def test_not_well_formed_stops_with_line_and_column(tmp_path: Path) -> None:
    """A feed cut short is reported where libxml2 stopped, never passed as valid."""
    path = _write(tmp_path, GOOD.replace("</DATA>", "<SMS><MOBILEPHONE>1"))
    report = validate_xml_feed(path)
    assert [(p.line, p.column, p.message) for p in report.problems] == [
        (9, 1, "Premature end of data in tag MOBILEPHONE line 8")
    ]


@pytest.mark.parametrize(
    ("broken", "line"),
    [("</PARAM_1></SMS>", 6), ("Ann", 6)],
    ids=["mismatched-tag", "bare-ampersand"],
)
def test_malformed_feeds_never_pass(tmp_path: Path, broken: str, line: int) -> None:
    """A mismatched tag or a bare '&' is reported at its line, never passed as valid."""
    replacement = {"</PARAM_1></SMS>": "</PARAM_1></SMX>", "Ann": "A&nn"}[broken]
    report = validate_xml_feed(_write(tmp_path, GOOD.replace(broken, replacement, 1)))
    assert report.problems and report.problems[0].line == line


def test_wrong_root_is_reported(tmp_path: Path) -> None:
    """A document whose root is not DATA is one clear problem."""
    report = validate_xml_feed(_write(tmp_path, "<FEED><SMS/></FEED>"))
    assert [p.message for p in report.problems] == ["expected <DATA>, found <FEED>"]


def test_progress_is_reported_up_to_the_file_size(tmp_path: Path) -> None:
    """The progress callback ends at the file size (the CLI's bar reaches 100 %)."""
    path = _write(tmp_path, GOOD)
    seen: list[int] = []
    validate_xml_feed(path, progress=seen.append)
    assert seen[-1] == path.stat().st_size


def test_inspect_counts_parts_after_substitution(tmp_path: Path) -> None:
    """inspect sees the Greek name force UCS-2 for one recipient only."""
    rows: list[tuple[str, str, int]] = []
    summary = inspect_xml_feed(_write(tmp_path, GOOD), each=lambda *row: rows.append(row))
    assert rows == [("33612345678", "GSM", 1), ("306912345678", "UCS-2", 1)]
    assert summary.total_parts == 2 and summary.encodings == {"GSM": 1, "UCS-2": 1}


def test_doctype_is_refused_while_streaming(tmp_path: Path) -> None:
    """The streaming path refuses a DOCTYPE like every other parser."""
    path = _write(tmp_path, '<!DOCTYPE DATA [<!ENTITY x "y">]>\n' + GOOD.split("\n", 1)[1])
    report = validate_xml_feed(path)
    assert "DOCTYPE" in report.problems[0].message


# VmHWM, not ru_maxrss: after a fork (rather than a vfork) the child's ru_maxrss starts
# from the parent's size, here pytest's (~110 MB), whatever the child itself uses.
MEMORY_PROBE = """
import sys
from smsxml.feedstream import validate_xml_feed
report = validate_xml_feed(sys.argv[1])
assert report.recipients == int(sys.argv[2]) and not report.problems, report.problems[:3]
peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(int(peak.split()[1]) // 1024)
"""


def _make_feed(path: Path, count: int) -> None:
    with path.open("w") as out:
        out.write("<DATA><MESSAGE>Hi #param_1#</MESSAGE><DYNAMIC>1</DYNAMIC><TPOA>Shop</TPOA>\n")
        for i in range(count):
            number = f"336{12000000 + i:08d}"
            out.write(f"<SMS><MOBILEPHONE>{number}</MOBILEPHONE><PARAM_1>Jo</PARAM_1></SMS>\n")
        out.write("</DATA>\n")


def _peak_mib(path: Path, count: int) -> int:
    run = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(path), str(count)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return int(run.stdout.strip())


@pytest.mark.slow
def test_memory_stays_flat_from_100k_to_1m_recipients(tmp_path: Path) -> None:
    """Validating 1,000,000 recipients peaks within 10 MiB of 100,000, and under 64 MiB."""
    small, large = tmp_path / "100k.xml", tmp_path / "1m.xml"
    _make_feed(small, 100_000)
    _make_feed(large, 1_000_000)
    small_peak, large_peak = _peak_mib(small, 100_000), _peak_mib(large, 1_000_000)
    assert large_peak <= 64, large_peak
    assert large_peak - small_peak <= 10, (small_peak, large_peak)


def test_problems_leave_before_the_feed_is_read(tmp_path: Path) -> None:
    """The first problem is handed out while most of the feed is still unread: emit stops
    the validation, and the progress never reached the end of the file."""
    path = tmp_path / "big.xml"
    with path.open("w") as out:
        out.write(
            "<DATA><MESSAGE>Hi</MESSAGE>\n<SMS><MOBILEPHONE>301234567890</MOBILEPHONE></SMS>\n"
        )
        for i in range(140_000):
            out.write(f"<SMS><MOBILEPHONE>336{12000000 + i:08d}</MOBILEPHONE></SMS>\n")
        out.write("</DATA>\n")
    seen: list[int] = []

    class Stop(Exception):
        pass

    def emit(problem: Problem) -> None:
        raise Stop(f"{problem.line}:{problem.column}")

    with pytest.raises(Stop, match="^2:6$"):
        validate_xml_feed(path, progress=seen.append, emit=emit)
    assert all(position < path.stat().st_size for position in seen)


def test_a_schema_dense_feed_is_judged_whole(tmp_path: Path) -> None:
    """When the schema fails early the first pass stops there; the second pass still finds
    the schema's problems and the rules' for every later recipient, each once."""
    path = _write(
        tmp_path,
        "<DATA><MESSAGE>Hi</MESSAGE>\n"
        "<SMS><MOBILEPHONE>301234567890</MOBILEPHONE></SMS>\n"
        "<SMS><MOBILEPHONE>x1</MOBILEPHONE></SMS>\n"
        "<SMS><MOBILEPHONE>301234567891</MOBILEPHONE></SMS>\n"
        "<SMS><MOBILEPHONE>33612345678</MOBILEPHONE><FOO/></SMS>\n"
        "<SMS><MOBILEPHONE>301234567890</MOBILEPHONE></SMS>\n"
        "</DATA>\n",
    )
    shown: list[Problem] = []
    report = validate_xml_feed(path, emit=shown.append)
    assert [(p.line, p.message.split(":")[0][:36]) for p in shown] == [
        (2, "MOBILEPHONE 301234567890 is not a va"),
        (3, "Element 'MOBILEPHONE'"),
        (4, "MOBILEPHONE 301234567891 is not a va"),
        (5, "Element 'FOO'"),
        (5, "SMS must carry no PARAM_n (DYNAMIC),"),
        (6, "MOBILEPHONE 301234567890 is not a va"),
        (6, "duplicate recipient 301234567890 (fi"),
    ]
    assert (report.count, report.recipients, report.problems) == (7, 5, [])
    with pytest.raises(BadInput) as caught:
        feeds.feed_from_xml(path.read_bytes())
    in_memory = fill_columns(path, caught.value.problems)
    assert sorted(shown) == sorted(in_memory)
