"""smsxml.feedreport: where a feed's problems go while it is read, and the columns the
schema's problems lack."""

from __future__ import annotations

from pathlib import Path

from smsxml.errors import Problem
from smsxml.feedreport import DEFAULT_MAX_ERRORS, ColumnFiller, FeedReport, Reporter


def test_the_reporter_counts_beyond_its_limit() -> None:
    """Reporter: the first `limit` go to emit, placed; the rest only add to the count."""
    shown: list[Problem] = []
    reporter = Reporter(shown.append, limit=2)
    reporter.place = lambda problem: problem.at(problem.line, 9)
    for line in range(1, 6):
        reporter(Problem(line, 0, "bad"))
    assert [(p.line, p.column) for p in shown] == [(1, 9), (2, 9)]
    assert (reporter.report.count, reporter.report.hidden, reporter.report.problems) == (5, 3, [])


def test_without_emit_the_reporter_keeps_them_all() -> None:
    """No emit and no limit: every problem is kept, unplaced, in the report."""
    reporter = Reporter()
    reporter.extend([Problem(line, 0, "bad") for line in range(1, 4)])
    assert not reporter.streaming
    assert [p.line for p in reporter.report.problems] == [1, 2, 3]
    assert (reporter.report.count, reporter.report.shown, reporter.report.hidden) == (3, 3, 0)


def test_a_limit_of_zero_only_counts() -> None:
    """limit=0 keeps nothing and still counts every problem (a summary line)."""
    reporter = Reporter(limit=0)
    reporter.extend([Problem(1, 0, "bad")] * 5)
    assert reporter.report == FeedReport(problems=[], count=5, shown=0)
    assert reporter.report.hidden == 5


def test_the_default_limit_is_a_screenful() -> None:
    """smsxml validate shows 100 problems per file by default."""
    assert DEFAULT_MAX_ERRORS == 100


def _feed(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "feed.xml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_column_filler_finds_the_tag_on_its_line(tmp_path: Path) -> None:
    """A tagged problem gets the column of "<tag" on its line, counted in characters."""
    path = _feed(
        tmp_path,
        [
            "<DATA>",
            "<MESSAGE>Γειά</MESSAGE>  <TPOA>1x</TPOA>",
            "  <SMS><MOBILEPHONE>x</MOBILEPHONE></SMS>",
        ],
    )
    filler = ColumnFiller(path)
    try:
        tpoa = filler(Problem(2, 0, "bad TPOA", tag="TPOA"))
        mobile = filler(Problem(3, 0, "bad number", tag="MOBILEPHONE"))
    finally:
        filler.close()
    assert (tpoa.line, tpoa.column, tpoa.tag) == (2, 26, "TPOA")
    assert (mobile.line, mobile.column) == (3, 8)


def test_the_column_filler_leaves_placed_or_untagged_problems_alone(tmp_path: Path) -> None:
    """Placed, untagged or lineless problems pass as they are; a missing tag gives column 1."""
    path = _feed(tmp_path, ["<DATA>", "<SMS/>"])
    filler = ColumnFiller(path)
    placed = Problem(2, 4, "x", tag="SMS")
    untagged = Problem(2, 0, "x")
    nowhere = Problem(0, 0, "x", tag="SMS")
    assert [filler(p) for p in (placed, untagged, nowhere)] == [placed, untagged, nowhere]
    assert filler(Problem(1, 0, "x", tag="SMS")).column == 1
    assert filler(Problem(40, 0, "x", tag="SMS")).column == 0
    filler.close()


def test_the_column_filler_goes_back_to_earlier_lines(tmp_path: Path) -> None:
    """Problems out of order (a duplicate's first line, far back) are still placed."""
    lines = ["<DATA>"] + [f"{' ' * (i % 7)}<SMS>{i}</SMS>" for i in range(1, 301)] + ["</DATA>"]
    path = _feed(tmp_path, lines)
    filler = ColumnFiller(path)
    asked = [300, 299, 2, 250, 3]  # 2 and 3 are past the lines it keeps
    columns = [filler(Problem(line, 0, "x", tag="SMS")).column for line in asked]
    filler.close()
    assert columns == [(line - 1) % 7 + 1 for line in asked]
