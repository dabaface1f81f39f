"""``smsxml convert`` and ``smsxml inspect``: feeds in and out of XML and JSON.

XML feeds are read streaming (they may hold millions of recipients); JSON feeds are
read whole (JSON has no standard streaming parser in the standard library).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from smsxml import xmlsafe
from smsxml.documents import detect, validate_path
from smsxml.errors import BadInput, Problem
from smsxml.feedrules import render
from smsxml.feeds import feed_from_json, feed_from_xml, feed_to_json, feed_to_xml
from smsxml.feedstream import FeedSummary, inspect_xml_feed
from smsxml.text import count_parts, encoding_for

__all__ = ["convert_feed", "inspect_feed"]


def _require_feed(path: Path) -> str:
    kind, syntax = detect(path)
    if kind.root != "DATA":
        raise BadInput(Problem(1, 1, f"only allmysms feeds convert; this is a {kind.name}"))
    return syntax


def convert_feed(path: Path, target: str, out: TextIO) -> None:
    """Write the feed at ``path`` to ``out`` as ``target`` ("json" or "xml")."""
    syntax = _require_feed(path)
    report = validate_path(path)
    if report.problems:
        raise BadInput(report.problems)
    if syntax == "xml" and target == "json":
        _stream_xml_to_json(path, out)
        return
    if syntax == "xml":
        feed = feed_from_xml(path.read_bytes(), check=False)
    else:
        feed = feed_from_json(path.read_text(encoding="utf-8-sig"), check=False)
    if target == "json":
        out.write(feed_to_json(feed) + "\n")
    else:
        out.write(feed_to_xml(feed).decode("utf-8").rstrip("\n") + "\n")


def _stream_xml_to_json(path: Path, out: TextIO) -> None:
    """XML → JSON one SMS at a time, the same document :func:`feed_to_json` builds."""
    header: dict[str, Any] | None = None
    for sms in xmlsafe.ElementStream(path, tag="SMS"):
        if header is None:
            header = {e.tag: e.text or "" for e in reversed(list(sms.itersiblings(preceding=True)))}
            opening = json.dumps({"DATA": {**header, "SMS": [0]}}, ensure_ascii=False, indent=2)
            before, after = opening.split("\n      0\n")
            out.write(before + "\n")
            separator = ""
        item = json.dumps({c.tag: c.text or "" for c in sms}, ensure_ascii=False, indent=2)
        out.write(separator + "\n".join("      " + line for line in item.splitlines()))
        separator = ",\n"
    out.write("\n" + after + "\n")


def inspect_feed(path: Path, *, each: Callable[[str, str, int], None] | None = None) -> FeedSummary:
    """Recipients, encodings and parts per recipient of the feed at ``path``."""
    if _require_feed(path) == "xml":
        return inspect_xml_feed(path, each=each)
    feed = feed_from_json(path.read_text(encoding="utf-8-sig"), check=False)
    summary = FeedSummary()
    for sms in feed.sms:
        params = [getattr(sms, f"param_{n}") for n in range(1, 21)]
        text = render(feed.message, params)
        encoding, parts = encoding_for(text).value, count_parts(text)
        summary.recipients += 1
        summary.encodings[encoding] += 1
        summary.parts[parts] += 1
        if each is not None:
            each(sms.mobilephone, encoding, parts)
    return summary
