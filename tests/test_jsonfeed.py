"""Streamed JSON feeds: the in-memory path's verdicts at its positions, in bounded memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smsxml import feeds
from smsxml.errors import BadInput, Problem
from smsxml.jsonfeed import validate_json_feed

HEADER = '"MESSAGE": "Hi #param_1#", "DYNAMIC": "1", "TPOA": "Shop"'


def _sms(number: str, *params: str) -> str:
    fields = {"MOBILEPHONE": number} | {f"PARAM_{i}": p for i, p in enumerate(params, 1)}
    return json.dumps(fields, ensure_ascii=False)


def _in_memory(text: str) -> list[tuple[int, int, str]]:
    """What the whole-document path (json.loads, lxml, XSD, rules) finds, sorted."""
    try:
        root, positions = feeds.json_to_element(text)
        problems = feeds.tree_problems(root, positions.where)
    except BadInput as error:
        problems = error.problems
    return sorted((p.line, p.column, p.message) for p in problems)


def _streamed(path: Path) -> list[tuple[int, int, str]]:
    return [(p.line, p.column, p.message) for p in validate_json_feed(path).problems]


FEEDS = {
    "valid": f'{{"DATA": {{{HEADER}, "SMS": [{_sms("33612345678", "Ann")}]}}}}',
    "every-kind": (
        '{"DATA": {\n  "MESSAGE": "Hi #param_1#",\n  "DYNAMIC": "1",\n  "TPOA": "1Shop",\n'
        '  "DATE": "2026-02-30 10:00:00",\n  "SMS": [\n'
        f"    {_sms('33612345678', 'Ann')},\n"
        f"    {_sms('3361234x678', 'Bob')},\n"
        f"    {_sms('301234567890', 'Cy')},\n"
        f"    {_sms('33612345679')},\n"
        f"    {_sms('33612345678', 'Ann')},\n"
        f"    {_sms('33612345670', 'Dee', 'extra')},\n"
        f"    {_sms('33612345671', 'x' * 700)},\n"
        '    {"MOBILEPHONE": 33612345672, "PARAM_1": true, "FOO": null},\n'
        '    {"MOBILEPHONE": "33612345673", "PARAM_1": {"nested": "1"}}\n'
        "  ]\n}}"
    ),
    "keys-in-any-order": (
        f'{{"DATA": {{"SMS": [{_sms("33612345678")}, {_sms("301234567890")}], '
        '"CAMPAIGN_NAME": "late", "MESSAGE": "Hi", "UNKNOWN": "x"}}'
    ),
    "no-sms": f'{{"DATA": {{{HEADER}}}}}',
    "empty-sms": f'{{"DATA": {{{HEADER}, "SMS": []}}}}',
    "one-sms-object": f'{{"DATA": {{"MESSAGE": "Hi", "SMS": {_sms("3361234")}}}}}',
    "bom-and-non-ascii": (
        f'\ufeff{{"DATA": {{"MESSAGE": "Γειά #param_1#", "DYNAMIC": 1,\n"SMS": [\n'
        f"{_sms('306912345678', 'Νίκος')}, {_sms('3069123')}]}}}}"
    ),
    "two-root-keys": '{"DATA": {"MESSAGE": "Hi"}, "MORE": 1}',
    "not-an-object": '["DATA"]',
}


@pytest.mark.parametrize("name", list(FEEDS))
def test_streamed_json_agrees_with_the_in_memory_path(tmp_path: Path, name: str) -> None:
    """Each problem of the whole-document path comes out of the stream, at its line and
    column, and nothing else does."""
    path = tmp_path / "feed.json"
    path.write_text(FEEDS[name], encoding="utf-8")
    expected = _in_memory(FEEDS[name].lstrip("\ufeff"))
    assert _streamed(path) == expected
    if name != "valid":
        assert expected  # each case but the first has something to find


def test_an_sms_that_is_not_an_object_is_placed_at_its_value(tmp_path: Path) -> None:
    """A string or number in the SMS array is reported where it stands, and the objects
    after it keep their own places (the whole-document path puts it at 1:1)."""
    path = tmp_path / "odd.json"
    path.write_text(
        '{"DATA": {"MESSAGE": "Hi", "SMS": [\n  "odd", 12,\n  {"MOBILEPHONE": "301234567890"}]}}',
        encoding="utf-8",
    )
    got = [(p.line, p.column, p.message[:20]) for p in validate_json_feed(path).problems]
    assert (2, 3, "Element 'SMS': Chara") in got and (2, 10, "Element 'SMS': Chara") in got
    assert (3, 3, "MOBILEPHONE 30123456") in got


@pytest.mark.parametrize(
    "text",
    [
        '{"DATA": {\n  "MESSAGE": "Hi",\n  "SMS": [}\n}',
        '{"DATA": {"MESSAGE": "Hi", "SMS": [\n\n  {"a" "b"}]}}',
    ],
    ids=["stray-brace", "missing-colon"],
)
def test_syntax_errors_are_placed_where_the_parser_stopped(tmp_path: Path, text: str) -> None:
    """A broken document is one problem, at the line and column the stdlib decoder names."""
    path = tmp_path / "broken.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(json.JSONDecodeError) as stdlib:
        json.loads(text)
    problems = validate_json_feed(path).problems
    assert len(problems) == 1 and problems[0].message.startswith("invalid JSON: parse error")
    assert (problems[0].line, problems[0].column) == (stdlib.value.lineno, stdlib.value.colno)


def test_a_truncated_feed_is_reported_at_its_end(tmp_path: Path) -> None:
    """A feed cut short mid-recipient is never passed as valid: premature EOF at its end."""
    path = tmp_path / "cut.json"
    path.write_text(f'{{"DATA": {{{HEADER}, "SMS": [{_sms("33612345678", "A")},\n {{"MOB', "utf-8")
    (problem,) = validate_json_feed(path).problems
    assert (problem.line, problem.column) == (2, 7) and "premature EOF" in problem.message


def test_problems_leave_before_the_feed_is_read(tmp_path: Path) -> None:
    """The first problem is handed out while most of the feed is still unread: emit stops
    the validation, and the progress never reached the end of the file."""
    path = tmp_path / "big.json"
    sms = [_sms("301234567890", "A")] + [_sms(f"336{12000000 + i:08d}", "A") for i in range(70_000)]
    path.write_text(f'{{"DATA": {{{HEADER}, "SMS": [\n' + ",\n".join(sms) + "]}}", "utf-8")
    seen: list[int] = []

    class Stop(Exception):
        pass

    def emit(problem: Problem) -> None:
        raise Stop(problem.message)

    with pytest.raises(Stop, match="301234567890"):
        validate_json_feed(path, progress=seen.append, emit=emit)
    assert all(position < path.stat().st_size for position in seen)


def test_only_the_first_problems_are_kept_and_all_are_counted(tmp_path: Path) -> None:
    """With a limit, the report keeps that many problems and counts every one."""
    path = tmp_path / "dense.json"
    sms = ", ".join(_sms(f"3012345678{i:02d}", "A") for i in range(50))
    path.write_text(f'{{"DATA": {{{HEADER}, "SMS": [{sms}]}}}}', "utf-8")
    report = validate_json_feed(path, limit=3)
    assert (report.count, len(report.problems), report.recipients) == (50, 3, 50)
