"""Hostile XML is refused, with a clear error, by every parsing entry point."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from smsxml import binding, feeds, xmlsafe
from smsxml.documents import validate_path
from smsxml.errors import BadInput
from smsxml.feedstream import validate_xml_feed
from smsxml.generated.allmysms import Data
from smsxml.generated.net2sms import Response

HOSTILE = Path(__file__).parent / "fixtures" / "hostile"
DOCTYPE_FILES = sorted(p.name for p in HOSTILE.glob("*.xml") if p.name != "xinclude.xml")


def _deep(depth: int) -> bytes:
    return b"<DATA>" + b"<a>" * depth + b"</a>" * depth + b"</DATA>"


def _via_parse(data: bytes, tmp: Path) -> None:
    xmlsafe.parse(data)


def _via_binding(data: bytes, tmp: Path) -> None:
    binding.from_xml(data, Data)


def _via_feed(data: bytes, tmp: Path) -> None:
    feeds.feed_from_xml(data)


def _via_stream(data: bytes, tmp: Path) -> None:
    path = tmp / "feed.xml"
    path.write_bytes(data)
    report = validate_xml_feed(path)
    if report.problems:
        raise BadInput(report.problems)


def _via_documents(data: bytes, tmp: Path) -> None:
    path = tmp / "doc.xml"
    path.write_bytes(data)
    report = validate_path(path)
    if report.problems:
        raise BadInput(report.problems)


ENTRY_POINTS: dict[str, Callable[[bytes, Path], None]] = {
    "xmlsafe.parse": _via_parse,
    "binding.from_xml": _via_binding,
    "feeds.feed_from_xml": _via_feed,
    "feedstream.validate_xml_feed": _via_stream,
    "documents.validate_path": _via_documents,
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("name", DOCTYPE_FILES)
def test_doctype_payloads_are_refused_everywhere(entry: str, name: str, tmp_path: Path) -> None:
    """Entities, DTDs and parameter entities are refused whatever the entry point."""
    data = (HOSTILE / name).read_bytes()
    with pytest.raises(BadInput) as caught:
        ENTRY_POINTS[entry](data, tmp_path)
    text = " ".join(p.message for p in caught.value.problems).lower()
    assert "doctype" in text or "entity" in text or "amplification" in text
    assert "EXPANDED" not in text and "root:" not in text


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_xinclude_is_never_processed(entry: str, tmp_path: Path) -> None:
    """An XInclude element stays an element (the schema refuses it); no file is read."""
    data = (HOSTILE / "xinclude.xml").read_bytes()
    if entry in ("xmlsafe.parse", "binding.from_xml"):
        if entry == "xmlsafe.parse":
            root = xmlsafe.parse(data)
            assert root.find("MESSAGE")[0].tag == "{http://www.w3.org/2001/XInclude}include"
            assert "root:" not in (root.findtext("MESSAGE") or "")
            return
    with pytest.raises(BadInput) as caught:
        ENTRY_POINTS[entry](data, tmp_path)
    assert "root:" not in str(caught.value.problems)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_deep_nesting_is_refused(entry: str, tmp_path: Path) -> None:
    """A document nested 5 000 deep is refused with a line, never a crash."""
    with pytest.raises(BadInput) as caught:
        ENTRY_POINTS[entry](_deep(5000), tmp_path)
    assert caught.value.problems[0].line >= 1


def test_depth_quota_is_cxf_like_and_tightenable() -> None:
    """Depth 100 passes, 101 is refused; a caller can tighten the quota."""
    xmlsafe.parse(_deep(98))
    with pytest.raises(BadInput, match="deeper than 100"):
        xmlsafe.parse(_deep(100))
    with pytest.raises(BadInput, match="deeper than 10"):
        xmlsafe.parse(_deep(10), limits=xmlsafe.DEFAULT_LIMITS.tightened(max_depth=10))


@pytest.mark.parametrize(
    ("document", "limits", "message"),
    [
        (b"<a>" + b"x" * 2000 + b"</a>", {"max_bytes": 1000}, "larger than 1000 bytes"),
        (b"<a>" + b"<b/>" * 11 + b"</a>", {"max_children": 10}, "more than 10 children"),
        (
            b"<a " + b" ".join(b'x%d="1"' % i for i in range(11)) + b"/>",
            {"max_attributes": 10},
            "more than 10 attributes",
        ),
        (
            b'<a x="' + b"y" * 101 + b'"/>',
            {"max_attribute_length": 100},
            "attribute value too long",
        ),
        (b"<a>" + b"y" * 101 + b"</a>", {"max_text_length": 100}, "text longer than 100"),
        (b"<a>" + b"<b/>" * 20 + b"</a>", {"max_elements": 10}, "more than 10 elements"),
    ],
)
def test_quotas_refuse_oversize_documents(
    document: bytes, limits: dict[str, int], message: str
) -> None:
    """Every quota refuses what exceeds it, with a message naming the quota."""
    with pytest.raises(BadInput, match=message):
        xmlsafe.parse(document, limits=xmlsafe.DEFAULT_LIMITS.tightened(**limits))


def test_default_size_quota_refuses_a_huge_answer() -> None:
    """An 11 MiB answer is refused before it is parsed."""
    with pytest.raises(BadInput, match="larger than"):
        binding.from_xml(b"<response>" + b" " * (11 * 1024 * 1024) + b"</response>", Response)


@pytest.mark.parametrize(
    ("document", "line", "column"),
    [
        (b"<DATA>\n  <MESSAGE>x</MESSAGE>\n  <SMS></DATA>", 3, 15),
        (b"<DATA>\n<MESSAGE>x", 2, 11),
        (b"\n\n<DATA attr=noquote/>", 3, 12),
    ],
)
def test_malformed_xml_reports_line_and_column(document: bytes, line: int, column: int) -> None:
    """Malformed XML is an error with libxml2's line and column, never recovered."""
    with pytest.raises(BadInput) as caught:
        xmlsafe.parse(document)
    assert (caught.value.line, caught.value.column) == (line, column)


def test_truncated_document_is_not_recovered() -> None:
    """A truncated answer is an error (xsdata's own handler would accept it)."""
    with pytest.raises(BadInput):
        binding.from_xml(b"<response><status>1</status><remarks>Succ", Response)


def test_cli_refuses_hostile_input_without_traceback(tmp_path: Path) -> None:
    """`smsxml validate` on an entity bomb exits 1 with FILE:LINE:COLUMN, no traceback."""
    path = tmp_path / "bomb.xml"
    path.write_bytes((HOSTILE / "billion_laughs.xml").read_bytes())
    run = subprocess.run(
        [sys.executable, "-m", "smsxml.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert run.stdout.startswith(f"{path}:")
    assert "Traceback" not in run.stderr + run.stdout


@pytest.mark.parametrize(
    "document",
    [b'<?xml-stylesheet href="x"?><a><b/></a>', b"<a><?php x?><b/></a>", b"<a/><?after pi?>"],
)
def test_processing_instructions_are_dropped_or_refused(document: bytes) -> None:
    """By default a processing instruction is dropped (feeds); with ``refuse_pis`` (SOAP
    1.1 §3) it is refused with its line."""
    root = xmlsafe.parse(document)
    assert not list(root.iter(xmlsafe.etree.ProcessingInstruction))
    with pytest.raises(BadInput, match="processing instructions are not allowed"):
        xmlsafe.parse(document, refuse_pis=True)
    kept = xmlsafe.parse(b"<?xml version='1.0'?><!-- c --><a><!-- d --></a>", refuse_pis=True)
    assert kept.tag == "a"


@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
@pytest.mark.parametrize("entry", ["xmlsafe.parse", "feedstream.validate_xml_feed"])
def test_an_external_dtd_on_a_local_path_is_never_opened(
    entry: str, codec: str, tmp_path: Path
) -> None:
    """``<!DOCTYPE DATA SYSTEM "/a/path">`` is refused without opening the path (with
    lxml's collect_ids=False libxml2 opened it: a FIFO there hung the parse), also in
    UTF-16, which a scan of the raw bytes for ``<!DOCTYPE`` does not see."""
    from .hostile.harness import Tripwire

    tripwire = Tripwire(tmp_path / "external.dtd")
    try:
        declaration = f'<?xml version="1.0" encoding="{codec.upper()}"?>\n'
        document = f'{declaration}<!DOCTYPE DATA SYSTEM "{tripwire.path}">\n<DATA/>'
        with pytest.raises(BadInput, match="DOCTYPE is not allowed"):
            ENTRY_POINTS[entry](document.encode(codec), tmp_path)
    finally:
        tripwire.close()
    assert tripwire.opens == 0
