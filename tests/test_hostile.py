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
