"""smsxml.xmlsafe, the one place that builds XML parsers: quotas, refusals, positions,
streaming, schemas."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from lxml import etree

from smsxml import xmlsafe
from smsxml.errors import BadInput

from .strategies import xml_texts

FEED_SCHEMA = "allmysms/feed.xsd"


def _deep(depth: int) -> bytes:
    return b"<DATA>" + b"<a>" * depth + b"</a>" * depth + b"</DATA>"


def _sms_document(count: int) -> bytes:
    sms = b"".join(b"<SMS><MOBILEPHONE>%d</MOBILEPHONE></SMS>\n" % i for i in range(count))
    return b"<?xml version='1.0'?>\n<DATA><MESSAGE>Hi</MESSAGE>\n" + sms + b"</DATA>\n"


# quotas and refusals ------------------------------------------------------------------------


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


def test_tightened_is_a_copy() -> None:
    """tightened() changes the copy it returns, never the shared default quotas."""
    tight = xmlsafe.DEFAULT_LIMITS.tightened(max_bytes=100)
    assert tight.max_bytes == 100 and tight.max_depth == xmlsafe.DEFAULT_LIMITS.max_depth
    assert xmlsafe.DEFAULT_LIMITS.max_bytes == 10 * 1024 * 1024


def test_feed_limits_have_no_size_quota() -> None:
    """FEED_LIMITS takes more children than the default quota refuses (feeds of millions)."""
    many = b"<DATA>" + b"<SMS/>" * 50_001 + b"</DATA>"
    with pytest.raises(BadInput, match="more than 50000 children"):
        xmlsafe.parse(many)
    assert len(xmlsafe.parse(many, limits=xmlsafe.FEED_LIMITS)) == 50_001


@pytest.mark.parametrize("document", [b"", b"  \n\t", ""])
def test_an_empty_document_is_refused(document: bytes | str) -> None:
    """Nothing, or only whitespace, is "empty document" at 1:1, not a libxml2 message."""
    with pytest.raises(BadInput) as caught:
        xmlsafe.parse(document)
    assert (caught.value.line, caught.value.column, str(caught.value)) == (
        1,
        1,
        "line 1, column 1: empty document",
    )


def test_comments_and_cdata_leave_only_text() -> None:
    """Comments are dropped and CDATA becomes plain text (str input is read as UTF-8)."""
    root = xmlsafe.parse("<a>Γειά <![CDATA[x<y]]><!-- hidden --></a>")
    assert (root.text, len(root)) == ("Γειά x<y", 0)


def test_parse_file_checks_the_size_before_reading(tmp_path: Path) -> None:
    """A file over max_bytes is refused from its size; a small one parses."""
    path = tmp_path / "doc.xml"
    path.write_bytes(b"<a>" + b"x" * 200 + b"</a>")
    with pytest.raises(BadInput, match="larger than 100 bytes"):
        xmlsafe.parse_file(path, limits=xmlsafe.DEFAULT_LIMITS.tightened(max_bytes=100))
    assert xmlsafe.parse_file(str(path)).text == "x" * 200


def test_each_thread_gets_its_own_parser() -> None:
    """A thread reuses its parser; another thread, or keep_pis, gets another one."""
    other: list[etree.XMLParser] = []
    thread = threading.Thread(target=lambda: other.append(xmlsafe.new_parser()))
    thread.start()
    thread.join()
    assert xmlsafe.new_parser() is xmlsafe.new_parser()
    assert other[0] is not xmlsafe.new_parser()
    assert xmlsafe.new_parser(keep_pis=True) is not xmlsafe.new_parser()


@settings(max_examples=60, deadline=None)
@given(xml_texts)
def test_any_escaped_text_reads_back_unchanged(text: str) -> None:
    """Any text XML 1.0 can hold, escaped by lxml, is read back exactly."""
    element = etree.Element("a")
    element.text = text
    assert (xmlsafe.parse(etree.tostring(element, encoding="UTF-8")).text or "") == text


# streaming ----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["path", "file object"])
def test_a_stream_yields_each_element_and_frees_those_before(tmp_path: Path, source: str) -> None:
    """ElementStream yields each SMS in order and keeps at most one earlier sibling in the tree."""
    document = _sms_document(50)
    path = tmp_path / "feed.xml"
    path.write_bytes(document)
    stream = xmlsafe.ElementStream(path if source == "path" else io.BytesIO(document), tag="SMS")
    seen, earlier = [], []
    for element in stream:
        seen.append(element.findtext("MOBILEPHONE"))
        earlier.append(len(list(element.itersiblings(preceding=True))))
    assert seen == [str(i) for i in range(50)]
    assert max(earlier[2:]) <= 1
    assert stream.root is not None and stream.root.tag == "DATA"


@pytest.mark.parametrize("source", ["path", "file object"])
def test_a_stream_refuses_a_doctype_with_its_line(tmp_path: Path, source: str) -> None:
    """A DOCTYPE in the prolog is refused before the parser reads it, at its line."""
    document = b"<?xml version='1.0'?>\n<!-- note -->\n<!DOCTYPE x [<!ENTITY a 'b'>]>\n<x>&a;</x>"
    path = tmp_path / "doctype.xml"
    path.write_bytes(document)
    stream = xmlsafe.ElementStream(path if source == "path" else io.BytesIO(document), tag="x")
    with pytest.raises(BadInput) as caught:
        list(stream)
    assert caught.value.line == 3 and "DOCTYPE is not allowed" in str(caught.value)


def test_a_stream_stops_at_malformed_xml_with_line_and_column() -> None:
    """Malformed XML ends the stream at once, with libxml2's line and column."""
    stream = xmlsafe.ElementStream(io.BytesIO(b"<DATA><SMS>\n</DATA>"), tag="SMS")
    with pytest.raises(BadInput) as caught:
        list(stream)
    assert (caught.value.line, caught.value.column) == (2, 8)
    assert "mismatch" in caught.value.problems[0].message


def test_a_stream_with_a_schema_collects_its_violations() -> None:
    """With a schema, violations are raised once the stream ends, tagged with their element."""
    document = (
        b"<DATA><MESSAGE>x</MESSAGE>\n<SMS><MOBILEPHONE>abc</MOBILEPHONE></SMS>\n"
        b"<SMS><MOBILEPHONE>33612345678</MOBILEPHONE></SMS></DATA>"
    )
    stream = xmlsafe.ElementStream(
        io.BytesIO(document), tag="SMS", schema=xmlsafe.load_schema(FEED_SCHEMA)
    )
    seen = []
    with pytest.raises(BadInput) as caught:
        for element in stream:
            seen.append(element.findtext("MOBILEPHONE"))
    assert seen == ["abc", "33612345678"]
    (problem,) = caught.value.problems
    assert problem.tag == "MOBILEPHONE" and "'abc'" in problem.message


# schemas ----------------------------------------------------------------------------------


def test_schema_is_loaded_from_local_files_only() -> None:
    """The feed schema compiles from schemas/ without any network access."""
    assert xmlsafe.load_schema("allmysms/feed.xsd") is xmlsafe.load_schema("allmysms/feed.xsd")


def test_schema_problems_carry_line_and_tag() -> None:
    """A valid tree has no problem; each violation names its line and its element."""
    schema = xmlsafe.load_schema(FEED_SCHEMA)
    good = b"<DATA><MESSAGE>Hi</MESSAGE><SMS><MOBILEPHONE>33612345678</MOBILEPHONE></SMS></DATA>"
    assert xmlsafe.schema_problems(schema, xmlsafe.parse(good)) == []
    bad = good.replace(b"<SMS>", b"\n\n<SMS>").replace(b"33612345678", b"+33612345678")
    (problem,) = xmlsafe.schema_problems(schema, xmlsafe.parse(bad))
    assert (problem.line, problem.tag) == (3, "MOBILEPHONE")
