"""``smsxml convert`` and ``smsxml inspect``: feeds in and out of XML and JSON, streamed.

Both syntaxes are read one SMS at a time (XML with lxml's iterparse, JSON with ijson) and
written as they are read, so converting a feed of millions of recipients costs the memory
of one recipient, not of the feed (issue 11: 300,000 recipients from JSON took 819 MB).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO, cast
from xml.sax.saxutils import escape

from smsxml import xmlsafe
from smsxml.documents import detect, validate_path
from smsxml.errors import BadInput, Problem
from smsxml.feedreport import Emit, FeedReport
from smsxml.feedstream import FeedSummary, iter_xml_recipients
from smsxml.jsonread import inspect_json_recipients, json_feed_parts
from smsxml.text import count_parts, encoding_for

__all__ = ["FeedRefused", "convert_feed", "inspect_feed"]

_string = json.encoder.encode_basestring  # a JSON string, non-ASCII kept (the C one)
_CR = {"\r": "&#13;"}
Parts = tuple[dict[str, str], Iterator[dict[str, str]]]


class FeedRefused(BadInput):
    """The feed is invalid, so it was not converted; ``report`` says how (its problems
    are empty when they were streamed out as found)."""

    def __init__(self, report: FeedReport) -> None:
        super().__init__(report.problems or [Problem(0, 0, f"{report.count} problem(s)")])
        self.report = report


def _require_feed(path: Path) -> str:
    kind, syntax = detect(path)
    if kind.root != "DATA":
        raise BadInput(Problem(1, 1, f"only allmysms feeds convert; this is a {kind.name}"))
    return syntax


def convert_feed(
    path: Path, target: str, out: TextIO, *, emit: Emit | None = None, limit: int | None = None
) -> None:
    """Write the feed at ``path`` to ``out`` as ``target`` ("json" or "xml"), one SMS at a
    time. It is validated first (problems to ``emit`` as ``smsxml validate`` prints them,
    or kept): an invalid feed raises :class:`FeedRefused` and nothing is written."""
    syntax = _require_feed(path)
    report = validate_path(path, emit=emit, limit=limit)
    if report.count or report.problems:
        raise FeedRefused(report)
    header, recipients = _xml_parts(path) if syntax == "xml" else json_feed_parts(path)
    (_write_json if target == "json" else _write_xml)(header, recipients, out)


def _xml_parts(path: Path) -> Parts:
    """An XML feed's header and its recipients, as the texts of their elements."""
    stream = iter(xmlsafe.ElementStream(path, tag="SMS"))
    first = next(stream)  # a valid feed has one
    # parsed elements have str tags (types-lxml types .tag as anything it may be set to)
    siblings = reversed(list(first.itersiblings(preceding=True)))
    header = {cast(str, e.tag): e.text or "" for e in siblings}

    def recipients() -> Iterator[dict[str, str]]:
        yield {cast(str, child.tag): child.text or "" for child in first}
        for sms in stream:
            yield {cast(str, child.tag): child.text or "" for child in sms}

    return header, recipients()


def _write_json(header: dict[str, str], recipients: Iterator[dict[str, str]], out: TextIO) -> None:
    """The document :func:`smsxml.feeds.feed_to_json` builds, written one SMS at a time
    (each object spelt out here: json.dumps per recipient took four times as long)."""
    opening = json.dumps({"DATA": {**header, "SMS": [0]}}, ensure_ascii=False, indent=2)
    before, after = opening.split("\n      0\n")
    out.write(before + "\n")
    separator = "      {\n"
    for sms in recipients:
        fields = ",\n".join(f"        {_string(k)}: {_string(v)}" for k, v in sms.items())
        out.write(f"{separator}{fields}\n      }}")
        separator = ",\n      {\n"
    out.write("\n" + after + "\n")


def _write_xml(header: dict[str, str], recipients: Iterator[dict[str, str]], out: TextIO) -> None:
    """The document :func:`smsxml.feeds.feed_to_xml` builds, written one SMS at a time."""
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n<DATA>\n')
    for tag, text in header.items():
        out.write(f"  {_element(tag, text)}\n")
    for sms in recipients:
        out.write("  <SMS>\n")
        for tag, text in sms.items():
            out.write(f"    {_element(tag, text)}\n")
        out.write("  </SMS>\n")
    out.write("</DATA>\n")


def _element(tag: str, text: str) -> str:
    # a carriage return would come back as a line feed unless escaped (XML 1.0 §2.11)
    return f"<{tag}>{escape(text, _CR)}</{tag}>"


def inspect_feed(path: Path, *, each: Callable[[str, str, int], None] | None = None) -> FeedSummary:
    """Recipients, encodings and parts per recipient of the feed at ``path``, streamed."""
    syntax = _require_feed(path)
    recipients = iter_xml_recipients(path) if syntax == "xml" else inspect_json_recipients(path)
    summary = FeedSummary()
    for mobile, text in recipients:
        encoding, parts = encoding_for(text).value, count_parts(text)
        summary.recipients += 1
        summary.encodings[encoding] += 1
        summary.parts[parts] += 1
        if each is not None:
            each(mobile, encoding, parts)
    return summary
