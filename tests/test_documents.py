"""smsxml.documents: documents recognised by their root, and each validated its own way."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsxml.documents import KINDS, detect, validate_path
from smsxml.errors import BadInput
from smsxml.generated.net2sms import Response

UNKNOWN = (
    "unknown document <other>; smsxml knows <DATA> (allmysms feed), <RESPONSE> (allmysms "
    "answer), <response> (net2sms answer), <result> (SMS Partner answer)"
)


def _write(tmp_path: Path, data: bytes, name: str = "doc") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "name", "syntax"),
    [
        (b"<DATA/>", "allmysms feed", "xml"),
        (b"<RESPONSE/>", "allmysms answer", "xml"),
        (b"<?xml version='1.0'?>\n<!-- a note -->\n<response/>", "net2sms answer", "xml"),
        (b"<result/>", "SMS Partner answer", "xml"),
        (b'  \n{"DATA": {}}', "allmysms feed", "json"),
        (b"\xef\xbb\xbf[]", "allmysms feed", "json"),
    ],
)
def test_detect_names_the_kind_and_syntax(
    tmp_path: Path, data: bytes, name: str, syntax: str
) -> None:
    """XML is known by its root, whatever precedes it; JSON by its first character past a BOM."""
    kind, found = detect(_write(tmp_path, data))
    assert (kind.name, found) == (name, syntax)
    assert KINDS[kind.root] is kind


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty file"), (b"<other><x/></other>", UNKNOWN)],
)
def test_detect_refuses_empty_and_unknown_documents(
    tmp_path: Path, data: bytes, message: str
) -> None:
    """An empty file, or a root smsxml does not know (the known ones listed), is refused."""
    with pytest.raises(BadInput) as caught:
        detect(_write(tmp_path, data))
    assert caught.value.problems[0].message == message


def test_detect_opens_no_dtd_the_document_names(tmp_path: Path) -> None:
    """Reading the root of a document with an external DTD does not open that DTD."""
    from .hostile.harness import Tripwire

    tripwire = Tripwire(tmp_path / "external.dtd")
    try:
        path = _write(
            tmp_path, f'<!DOCTYPE response SYSTEM "{tripwire.path}">\n<response/>'.encode()
        )
        assert detect(path)[0].cls is Response
        assert "DOCTYPE is not allowed" in validate_path(path).problems[0].message
    finally:
        tripwire.close()
    assert tripwire.opens == 0


def test_a_valid_answer_has_no_problem(tmp_path: Path) -> None:
    """A schema-valid net2sms answer that binds is reported clean."""
    path = _write(tmp_path, b"<response><status>1</status><remarks>ok</remarks></response>")
    report = validate_path(path)
    assert (report.count, report.problems) == (0, [])


@pytest.mark.parametrize(
    ("data", "place", "tag"),
    [
        (
            b"<response>\n  <status>1</status>\n  <total>two</total><remarks/></response>",
            (3, 3),
            "total",
        ),
        (b"<RESPONSE>\n<status>42</status><statusText/></RESPONSE>", (2, 1), "status"),
    ],
)
def test_answer_schema_problems_get_a_column(
    tmp_path: Path, data: bytes, place: tuple[int, int], tag: str
) -> None:
    """An answer's schema problems are placed at the element they name, to the column."""
    (problem,) = validate_path(_write(tmp_path, data)).problems
    assert ((problem.line, problem.column), problem.tag) == (place, tag)


def test_problems_go_to_emit_up_to_the_limit(tmp_path: Path) -> None:
    """With emit and limit, the first problems are passed on and every one counted."""
    data = (
        b"<DATA>\n<MESSAGE>Hi</MESSAGE>\n<SMS><MOBILEPHONE>x</MOBILEPHONE></SMS>\n"
        b"<SMS><MOBILEPHONE>y</MOBILEPHONE></SMS></DATA>"
    )
    shown: list[object] = []
    report = validate_path(_write(tmp_path, data), emit=shown.append, limit=1)
    assert (report.count, report.shown, report.recipients, len(shown)) == (2, 1, 2, 1)
    assert report.problems == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<response>\xe9</response>", "Invalid bytes in character encoding"),
        (b'{"DATA": {"MESSAGE": "\xe9"}}', "invalid JSON: lexical error: invalid bytes in UTF8"),
        (b"<other/>", UNKNOWN),
    ],
)
def test_validate_turns_every_refusal_into_a_problem(
    tmp_path: Path, data: bytes, message: str
) -> None:
    """Bad bytes, in XML or JSON, or an unknown root: one problem, never an exception."""
    (problem,) = validate_path(_write(tmp_path, data)).problems
    assert problem.message.startswith(message)


@pytest.mark.parametrize("data", [b"hello world\n", b"<DATA attr=x>"])
def test_a_syntax_error_at_the_root_reads_like_any_other(tmp_path: Path, data: bytes) -> None:
    """A syntax error at the root gives its place once, in line and column, not in the text."""
    (problem,) = validate_path(_write(tmp_path, data)).problems
    assert problem.line == 1 and ", line 1, column" not in problem.message
