"""Validate and inspect allmysms XML feeds of any size, streaming, in bounded memory.

One pass does everything in the common case: libxml2 validates the stream against the
XSD while Python applies the rules beyond it to each ``<SMS>`` as it goes by, then frees
it (research/perf-calibration.md §3: iterparse with ``schema=`` and direct child access
is the fastest validating approach here). libxml2 reports schema violations without a
line, so when there are any, a second pass validates each entry on its own to place
them; a last pass over the raw lines finds the column of every problem.
"""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lxml import etree

from smsxml import xmlsafe
from smsxml.errors import BadInput, Problem
from smsxml.feedrules import MAX_MESSAGE_LENGTH, DuplicateFinder, FeedRules, render
from smsxml.feeds import (
    FEED_SCHEMA,
    check_recipient,
    header_skeleton,
    rules_for,
    xml_where,
)
from smsxml.numbers import is_valid_msisdn
from smsxml.text import count_parts, encoding_for

__all__ = ["FeedReport", "FeedSummary", "fill_columns", "inspect_xml_feed", "validate_xml_feed"]

Progress = Callable[[int], None]
_PROGRESS_EVERY = 1 << 14  # recipients between two progress reports


@dataclass
class FeedReport:
    """What validating one feed found."""

    recipients: int = 0
    problems: list[Problem] = field(default_factory=list)


class _CountingReader:
    """A file wrapper that tells how many bytes lxml has read (for the progress bar)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.consumed += len(data)
        return data


def validate_xml_feed(path: str | Path, *, progress: Progress | None = None) -> FeedReport:
    """Every problem of an XML feed: not well-formed, schema, and the rules beyond it."""
    path = Path(path)
    schema = xmlsafe.load_schema(FEED_SCHEMA)
    report = FeedReport()
    duplicates = DuplicateFinder(expected=max(1, path.stat().st_size // 64))
    rules = None
    schema_failed = False
    with path.open("rb") as raw:
        reader = _CountingReader(raw)
        stream = xmlsafe.ElementStream(reader, tag="SMS", schema=schema)
        try:
            stream_iter = iter(stream)
            first = next(stream_iter, None)
            if first is not None:
                header = list(first.itersiblings(preceding=True))[::-1]
                rules = rules_for(header, xml_where, first.getparent())
                report.recipients = _check_stream(
                    first, stream_iter, rules, duplicates, reader, progress
                )
        except BadInput as error:
            if all(problem.line == 0 for problem in error.problems):
                schema_failed = True
            else:  # not well-formed: nothing after this point can be read
                report.problems += error.problems
    if progress is not None:
        progress(path.stat().st_size)
    if schema_failed:
        try:
            report.problems += _locate_schema_problems(path, schema)
        except BadInput as error:  # what libxml2 stopped at once validation had failed
            report.problems += error.problems
    if rules is not None:
        report.problems += rules.problems
    report.problems += duplicates.problems()
    report.problems = fill_columns(path, sorted(report.problems))
    return report


def _check_stream(
    first: etree._Element,
    rest: Iterator[etree._Element],
    rules: FeedRules,
    duplicates: DuplicateFinder,
    reader: _CountingReader,
    progress: Progress | None,
) -> int:
    """The hot loop: the rules and the duplicate finder on every SMS; returns the count.

    Written for speed (about a microsecond of Python per recipient): an entry shaped as
    DYNAMIC says (MOBILEPHONE then PARAM_1…n) takes the fast path, with its number
    checked and its substituted length computed inline; anything else goes through
    :func:`check_recipient` for a precise message.
    """
    size = len(rules.expected_tags) + 1
    last_tag = rules.expected_tags[-1] if rules.expected_tags else "MOBILEPHONE"
    uses = rules.param_uses
    static_length = rules.static_length
    limit = MAX_MESSAGE_LENGTH
    add = duplicates.add
    count = 0
    for sms in itertools.chain((first,), rest):
        count += 1
        first_child = sms[0] if len(sms) else None
        if (
            first_child is None
            or len(sms) != size
            or first_child.tag != "MOBILEPHONE"
            or sms[-1].tag != last_tag
        ):
            check_recipient(sms, (sms.sourceline or 0, 0), rules, duplicates)
            continue
        mobile = first_child.text or ""
        if not (mobile.isdigit() and mobile[0] != "0" and is_valid_msisdn(mobile)):
            check_recipient(sms, (sms.sourceline or 0, 0), rules, duplicates)
            continue
        if uses:
            length = static_length
            for index, weight in enumerate(uses, 1):
                text = sms[index].text
                if text:
                    length += weight * len(text)
            if length > limit:
                check_recipient(sms, (sms.sourceline or 0, 0), rules, duplicates)
                continue
        add(int(mobile), first_child.sourceline or 0)
        if progress is not None and not count % _PROGRESS_EVERY:
            progress(reader.consumed)
    return count


def _locate_schema_problems(path: Path, schema: etree.XMLSchema) -> list[Problem]:
    """Second pass: each SMS validated alone, the header and stray elements together."""
    problems: list[Problem] = []
    header: list[etree._Element] = []
    misplaced: list[etree._Element] = []
    last: etree._Element | None = None
    stream = xmlsafe.ElementStream(path, tag="SMS")
    for sms in stream:
        between = []
        for sibling in sms.itersiblings(preceding=True):
            if sibling.tag == "SMS":
                break
            between.append(copy.deepcopy(sibling))
        (misplaced if last is not None else header).extend(reversed(between))
        if not schema.validate(sms):
            problems += [xmlsafe.log_problem(entry) for entry in schema.error_log]
        last = sms
    root = stream.root
    if root is None:
        return problems or [Problem(1, 1, "empty document")]
    if root.tag != "DATA":
        return [Problem(root.sourceline or 1, 0, f"expected <DATA>, found <{root.tag}>", root.tag)]
    if last is None:
        header = [copy.deepcopy(element) for element in root]
    else:
        misplaced += [copy.deepcopy(element) for element in last.itersiblings()]
    if not schema.validate(header_skeleton(header, misplaced)):
        problems += [xmlsafe.log_problem(entry) for entry in schema.error_log]
    if last is None:
        problems.append(Problem(root.sourceline or 1, 0, "DATA has no SMS", "DATA"))
    return problems


def fill_columns(path: Path, problems: list[Problem]) -> list[Problem]:
    """Give a column to problems that have a line and a tag but no column, by finding the
    tag's start on that line of the file (libxml2 gives schema errors no column)."""
    wanted: dict[int, list[int]] = {}
    for index, problem in enumerate(problems):
        if problem.line and not problem.column and problem.tag:
            wanted.setdefault(problem.line, []).append(index)
    if not wanted:
        return problems
    result = list(problems)
    last_line = max(wanted)
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            if number in wanted:
                text = raw.decode("utf-8", errors="replace")
                for index in wanted[number]:
                    problem = result[index]
                    found = text.find("<" + problem.tag)
                    result[index] = problem.at(number, found + 1 if found >= 0 else 1)
            if number >= last_line:
                break
    return result


@dataclass
class FeedSummary:
    """What ``smsxml inspect`` tells about a feed."""

    recipients: int = 0
    encodings: Counter[str] = field(default_factory=Counter)
    parts: Counter[int] = field(default_factory=Counter)  # parts → recipients

    @property
    def total_parts(self) -> int:
        return sum(parts * count for parts, count in self.parts.items())


def iter_xml_recipients(path: str | Path) -> Iterator[tuple[str, str]]:
    """(MOBILEPHONE, the message it gets after substitution) for every SMS, streaming."""
    stream = xmlsafe.ElementStream(Path(path), tag="SMS")
    message = None
    for sms in stream:
        if message is None:
            root = sms.getparent()
            message = root.findtext("MESSAGE") if root is not None else ""
        children = list(sms)
        mobile = children[0].text if children else ""
        yield mobile or "", render(message or "", [c.text for c in children[1:]])


def inspect_xml_feed(
    path: str | Path, *, each: Callable[[str, str, int], None] | None = None
) -> FeedSummary:
    """Recipients, encodings and SMS parts of a feed; ``each(mobile, encoding, parts)`` is
    called per recipient when given."""
    summary = FeedSummary()
    for mobile, text in iter_xml_recipients(path):
        encoding = encoding_for(text).value
        parts = count_parts(text)
        summary.recipients += 1
        summary.encodings[encoding] += 1
        summary.parts[parts] += 1
        if each is not None:
            each(mobile, encoding, parts)
    return summary
