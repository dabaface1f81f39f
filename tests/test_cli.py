"""The `smsxml` command as a user runs it: exit codes, FILE:LINE:COLUMN lines, no tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

EXAMPLE = ROOT / "examples" / "campaign.xml"
SMSXML = shutil.which("smsxml", path=str(Path(sys.executable).parent)) or "smsxml"


def smsxml(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script."""
    return subprocess.run(
        [SMSXML, *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_validate_a_valid_feed_exits_0() -> None:
    """A valid feed: exit 0, nothing on stdout, a one-line verdict on stderr."""
    run = smsxml("validate", str(EXAMPLE))
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    assert run.stderr.strip() == f"{EXAMPLE}: valid, 3 recipient(s)"


def test_validate_reports_each_problem_with_line_and_column(tmp_path: Path) -> None:
    """An invalid feed: exit 1 and one FILE:LINE:COLUMN line per problem."""
    bad = tmp_path / "bad.xml"
    bad.write_text(
        EXAMPLE.read_text(encoding="utf-8")
        .replace("<TPOA>Cabinet</TPOA>", "<TPOA>9</TPOA>")
        .replace("33698765432", "33612345678"),
        encoding="utf-8",
    )
    run = smsxml("validate", str(bad))
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"{bad}:8:3: Element 'TPOA'")
    assert lines[1] == f"{bad}:14:5: duplicate recipient 33612345678 (first listed on line 10)"
    assert "Traceback" not in run.stderr


def test_validate_several_files_fails_if_any_fails(tmp_path: Path) -> None:
    """With several files the exit status is 1 when one of them is invalid."""
    empty = tmp_path / "empty.xml"
    empty.write_text("")
    run = smsxml("validate", str(EXAMPLE), str(empty))
    assert run.returncode == 1
    assert run.stdout.strip() == f"{empty}:1:1: empty file"


def test_validate_recognises_answers_by_their_root(tmp_path: Path) -> None:
    """A net2sms answer is validated against its own schema."""
    good = tmp_path / "answer.xml"
    good.write_text(
        "<response><status>1</status><balance>12</balance><remarks>Success</remarks></response>"
    )
    bad = tmp_path / "bad-answer.xml"
    bad.write_text("<response>\n  <remarks>Success</remarks>\n</response>")
    assert smsxml("validate", str(good)).returncode == 0
    run = smsxml("validate", str(bad))
    assert run.returncode == 1 and run.stdout.startswith(f"{bad}:2:3: Element 'remarks'")


def test_validate_unknown_documents_say_what_is_known(tmp_path: Path) -> None:
    """An unknown root is one clear line naming the documents smsxml knows."""
    doc = tmp_path / "other.xml"
    doc.write_text("<html/>")
    run = smsxml("validate", str(doc))
    assert (
        run.returncode == 1 and "unknown document <html>" in run.stdout and "<DATA>" in run.stdout
    )


def test_validate_a_json_feed_reports_lines(tmp_path: Path) -> None:
    """A JSON feed is validated too, problems at the line of their object."""
    feed = tmp_path / "feed.json"
    feed.write_text(
        '{"DATA": {\n "MESSAGE": "Hi",\n "SMS": [\n  {"MOBILEPHONE": "33612345678"},\n'
        '  {"MOBILEPHONE": "12"}\n ]\n}}'
    )
    run = smsxml("validate", str(feed))
    assert run.returncode == 1
    assert run.stdout.startswith(f"{feed}:5:3: Element 'MOBILEPHONE'")


def test_missing_file_is_a_usage_error() -> None:
    """A file that does not exist: exit 2 with click's message, no traceback."""
    run = smsxml("validate", "/nonexistent/feed.xml")
    assert run.returncode == 2 and "does not exist" in run.stderr and "Traceback" not in run.stderr


def test_convert_round_trip_through_json_is_lossless(tmp_path: Path) -> None:
    """XML → JSON → XML gives back the same feed, and JSON carries every field."""
    # the example with a DATE (the vendor page's own, long past: convert does not judge it)
    scheduled = tmp_path / "scheduled.xml"
    scheduled.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace(
            "<TPOA>", "<DATE>2011-11-05 15:10:00</DATE>\n  <TPOA>"
        ),
        encoding="utf-8",
    )
    as_json = tmp_path / "feed.json"
    back = tmp_path / "back.xml"
    assert smsxml("convert", str(scheduled), "--to", "json", "-o", str(as_json)).returncode == 0
    data = json.loads(as_json.read_text(encoding="utf-8"))["DATA"]
    assert data["DATE"] == "2011-11-05 15:10:00" and data["SMS"][2]["PARAM_1"] == "Γιώργος"
    assert smsxml("convert", str(as_json), "--to", "xml", "-o", str(back)).returncode == 0
    again = smsxml("convert", str(back), "--to", "json")
    assert json.loads(again.stdout) == json.loads(as_json.read_text(encoding="utf-8"))


def test_convert_refuses_an_invalid_feed(tmp_path: Path) -> None:
    """An invalid feed is not converted: exit 1 with its problems, no output file left."""
    bad = tmp_path / "bad.xml"
    bad.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace("<DYNAMIC>1</DYNAMIC>", "<DYNAMIC>2</DYNAMIC>")
    )
    out = tmp_path / "out.json"
    run = smsxml("convert", str(bad), "--to", "json", "-o", str(out))
    assert run.returncode == 1 and "DYNAMIC is 2" in run.stdout and not out.exists()


def test_inspect_prints_parts_per_recipient() -> None:
    """inspect: recipients, encodings and parts, per recipient on request."""
    run = smsxml("inspect", str(EXAMPLE), "--per-recipient", "--json")
    assert run.returncode == 0
    rows, summary = run.stdout.split("{", 1)
    assert rows.splitlines() == [
        "33612345678\tGSM\t1",
        "33698765432\tGSM\t1",
        "306912345678\tUCS-2\t1",
    ]
    assert json.loads("{" + summary) == {
        "recipients": 3,
        "encodings": {"GSM": 2, "UCS-2": 1},
        "parts_per_recipient": {"1": 3},
        "total_parts": 3,
    }


@pytest.mark.parametrize("args", [("--help",), ("validate", "--help"), ("codegen", "--help")])
def test_help_is_available(args: tuple[str, ...]) -> None:
    """Every command explains itself."""
    run = smsxml(*args)
    assert run.returncode == 0 and "Usage:" in run.stdout


def test_large_files_get_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal, validating a file over 8 MB draws a progress bar up to 100 %."""
    import pty

    feed = tmp_path / "big.xml"
    with feed.open("w") as out:
        out.write("<DATA><MESSAGE>Hi</MESSAGE>\n")
        for i in range(180_000):
            out.write(f"<SMS><MOBILEPHONE>336{12000000 + i:08d}</MOBILEPHONE></SMS>\n")
        out.write("</DATA>\n")
    assert feed.stat().st_size > 8 * 1024 * 1024
    primary, secondary = pty.openpty()
    run = subprocess.run(
        [SMSXML, "validate", str(feed)],
        stderr=secondary,
        stdout=subprocess.PIPE,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    os.close(secondary)
    drawn = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        drawn += chunk
    os.close(primary)
    assert run.returncode == 0
    assert b"validating big.xml" in drawn and b"100%" in drawn
    assert b"valid, 180000 recipient(s)" in drawn


def _numbers_feed(path: Path, numbers: list[str]) -> Path:
    """An XML feed, one SMS per line from line 3 on, with these MOBILEPHONEs."""
    lines = [f"  <SMS><MOBILEPHONE>{n}</MOBILEPHONE></SMS>" for n in numbers]
    path.write_text("<DATA>\n  <MESSAGE>Hi</MESSAGE>\n" + "\n".join(lines) + "\n</DATA>\n")
    return path


def test_validate_prints_problems_in_the_order_found(tmp_path: Path) -> None:
    """Problems leave as they are found, not sorted at the end: the duplicate on line 4 is
    only known once the whole feed is read, so it follows the bad number of line 5."""
    feed = _numbers_feed(tmp_path / "feed.xml", ["33612345678", "33612345678", "301234567890"])
    run = smsxml("validate", str(feed))
    assert run.returncode == 1
    assert run.stdout.splitlines() == [
        f"{feed}:5:8: MOBILEPHONE 301234567890 is not a valid phone number",
        f"{feed}:4:8: duplicate recipient 33612345678 (first listed on line 3)",
    ]


def test_validate_max_errors_prints_a_count_of_the_rest(tmp_path: Path) -> None:
    """--max-errors N prints N problems, then one line counting the others; 0 prints all."""
    feed = _numbers_feed(tmp_path / "feed.xml", [f"3012345678{i:02d}" for i in range(7)])
    run = smsxml("validate", "--max-errors", "2", str(feed))
    assert run.returncode == 1
    assert run.stdout.splitlines() == [
        f"{feed}:3:8: MOBILEPHONE 301234567800 is not a valid phone number",
        f"{feed}:4:8: MOBILEPHONE 301234567801 is not a valid phone number",
        f"{feed}: 5 more problem(s) not shown (--max-errors 2)",
    ]
    assert run.stderr.strip() == f"{feed}: 7 problem(s), 7 recipient(s)"
    every = smsxml("validate", "--max-errors", "0", str(feed))
    assert len(every.stdout.splitlines()) == 7 and "more problem" not in every.stdout


def test_validate_format_json_gives_one_object_per_line(tmp_path: Path) -> None:
    """--format json: each line parses, one object per problem, then each file's summary."""
    feed = _numbers_feed(tmp_path / "feed.xml", ["33612345678", "301234567890", "1"])
    run = smsxml("validate", "--format", "json", "--max-errors", "1", str(feed), str(EXAMPLE))
    assert run.returncode == 1
    objects = [json.loads(line) for line in run.stdout.splitlines()]
    assert objects == [
        {
            "file": str(feed),
            "line": 4,
            "column": 8,
            "message": "MOBILEPHONE 301234567890 is not a valid phone number",
        },
        # "1": refused by the schema's pattern and by the number rules
        {"file": str(feed), "valid": False, "problems": 3, "not_shown": 2, "recipients": 3},
        {"file": str(EXAMPLE), "valid": True, "problems": 0, "not_shown": 0, "recipients": 3},
    ]


def _verdicts(path: Path) -> tuple[list[str], dict[str, object]]:
    """The messages (positions differ between syntaxes) and the summary of a validation."""
    run = smsxml("validate", "--format", "json", "--max-errors", "0", str(path))
    *problems, summary = [json.loads(line) for line in run.stdout.splitlines()]
    del summary["file"]
    return sorted(p["message"] for p in problems), summary


def test_a_json_feed_gets_the_verdicts_of_its_xml_twin(tmp_path: Path) -> None:
    """validate, convert and inspect say the same of a feed whether it is XML or JSON."""
    as_json = tmp_path / "campaign.json"
    assert smsxml("convert", str(EXAMPLE), "--to", "json", "-o", str(as_json)).returncode == 0
    assert _verdicts(as_json) == _verdicts(EXAMPLE) == ([], _verdicts(EXAMPLE)[1])
    assert _verdicts(EXAMPLE)[1]["recipients"] == 3
    inspected = [smsxml("inspect", str(p), "--per-recipient", "--json") for p in (EXAMPLE, as_json)]
    assert inspected[0].returncode == 0 and inspected[0].stdout == inspected[1].stdout
    back = smsxml("convert", str(as_json), "--to", "xml")
    assert back.returncode == 0 and "<PARAM_1>Γιώργος</PARAM_1>" in back.stdout

    # the same invalid feed, written in each syntax
    xml = tmp_path / "bad.xml"
    xml.write_text(
        EXAMPLE.read_text(encoding="utf-8")
        .replace("<TPOA>Cabinet</TPOA>", "<TPOA>9</TPOA>")
        .replace("33698765432", "301234567890")
        .replace("<PARAM_1>Jean</PARAM_1>", ""),
        encoding="utf-8",
    )
    data = json.loads(as_json.read_text(encoding="utf-8"))
    data["DATA"]["TPOA"] = "9"
    data["DATA"]["SMS"][1]["MOBILEPHONE"] = "301234567890"
    del data["DATA"]["SMS"][0]["PARAM_1"]
    bad_json = tmp_path / "bad.json"
    bad_json.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    messages, summary = _verdicts(bad_json)
    assert (messages, summary) == _verdicts(xml)
    assert len(messages) == 3 and summary["problems"] == 3


def test_convert_refuses_with_a_count_past_max_errors(tmp_path: Path) -> None:
    """convert prints the problems of a refused feed as validate does, the rest counted."""
    feed = _numbers_feed(tmp_path / "feed.xml", [f"3012345678{i:02d}" for i in range(4)])
    out = tmp_path / "out.json"
    run = smsxml("convert", str(feed), "--to", "json", "-o", str(out), "--max-errors", "1")
    assert run.returncode == 1 and not out.exists()
    assert run.stdout.splitlines()[1:] == [f"{feed}: 3 more problem(s) not shown (--max-errors 1)"]
