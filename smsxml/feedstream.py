"""Validate and inspect allmysms XML feeds of any size, streaming, in bounded memory.

One pass does everything in the common case: libxml2 validates the stream against the
XSD while Python applies the rules beyond it to each ``<SMS>`` as it goes by, then frees
it (research/perf-calibration.md §3: iterparse with ``schema=`` and direct child access
is the fastest validating approach here). libxml2 reports schema violations without a
line, so when there are any, a second pass validates each entry on its own to place
them; a last pass over the raw lines finds the column of every problem.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import itertools
import warnings
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from lxml import etree

from smsxml import xmlsafe
from smsxml.errors import BadInput, Problem
from smsxml.feedreport import ColumnFiller, Emit, FeedReport, Reporter
from smsxml.feedrules import MAX_MESSAGE_LENGTH, DuplicateFinder, FeedRules, render
from smsxml.feeds import (
    FEED_SCHEMA,
    check_recipient,
    header_skeleton,
    rules_for,
    xml_where,
)
from smsxml.numbers import msisdn_checker
from smsxml.text import count_parts, encoding_for

__all__ = ["FeedReport", "FeedSummary", "fill_columns", "inspect_xml_feed", "validate_xml_feed"]

Progress = Callable[[int], None]


class _Position:
    """Where the parser is in the file, for the progress bar: libxml2 reads the file
    itself (faster), so the position is estimated from the line of the latest element,
    against the file's line count (counted first, at C speed)."""

    def __init__(self, path: Path) -> None:
        self.size = path.stat().st_size
        lines = 0
        with path.open("rb") as data:
            while chunk := data.read(1 << 20):
                lines += chunk.count(b"\n")
        self.bytes_per_line = self.size / max(1, lines)

    def at(self, line: int) -> int:
        return min(self.size, int(line * self.bytes_per_line))


def validate_xml_feed(
    path: str | Path,
    *,
    progress: Progress | None = None,
    emit: Emit | None = None,
    limit: int | None = None,
) -> FeedReport:
    """Every problem of an XML feed: not well-formed, schema, and the rules beyond it.

    With ``emit``, each problem goes out as soon as it is found, placed to the column, in
    the order found, and the report only counts them; without, they are kept and sorted.
    Either way only the first ``limit`` are placed and passed on (None: all).
    """
    path = Path(path)
    reporter = Reporter(emit, limit)
    if reporter.streaming:
        filler = ColumnFiller(path)
        reporter.place = filler
    try:
        _validate(path, reporter, progress)
    finally:
        if reporter.streaming:
            filler.close()
    report = reporter.report
    if not reporter.streaming:
        report.problems = fill_columns(path, sorted(report.problems))
    return report


class _SchemaFailed(Exception):
    """An SMS broke the schema: the first pass stops there (libxml2 would keep every later
    violation in its log until the end, memory growing with the errors)."""


def _validate(path: Path, reporter: Reporter, progress: Progress | None) -> None:
    with contextlib.closing(DuplicateFinder()) as duplicates:
        _validate_with(path, reporter, progress, duplicates)


def _validate_with(
    path: Path, reporter: Reporter, progress: Progress | None, duplicates: DuplicateFinder
) -> None:
    schema = xmlsafe.load_schema(FEED_SCHEMA)
    schema_failed = False
    rules = None
    seen = [0]  # recipients the first pass judged by the rules
    tell = None
    if progress is not None:
        position = _Position(path)
        tell = lambda line: progress(position.at(line))  # noqa: E731 - a one-liner
    stream = iter(xmlsafe.ElementStream(path, tag="SMS", schema=schema))
    try:
        first = next(stream, None)
        if first is not None:
            header = list(first.itersiblings(preceding=True))[::-1]
            data = cast(etree._Element, first.getparent())  # an <SMS> is inside its <DATA>
            rules = rules_for(header, xml_where, data, sink=reporter)
            _check_stream(first, stream, rules, duplicates, tell, schema, seen)
            reporter.report.recipients = seen[0]
    except _SchemaFailed:
        schema_failed = True
        _abandon(stream)
    except BadInput as error:
        if all(problem.line == 0 for problem in error.problems):
            schema_failed = True
        else:  # not well-formed: nothing after this point can be read
            reporter.extend(error.problems)
    except BaseException:  # the caller's emit stopped us, or ^C
        _abandon(stream)
        raise
    if progress is not None:
        progress(path.stat().st_size)
    if schema_failed:
        try:
            count = _locate_schema_problems(path, schema, reporter, rules, duplicates, seen[0])
            reporter.report.recipients = count
        except BadInput as error:  # what libxml2 stopped at once validation had failed
            reporter.extend(error.problems)
    for problem in duplicates.iter_problems():
        reporter(problem)


def _abandon(stream: Iterator[etree._Element]) -> None:
    """Stop a parse half-way. lxml opened the file itself and closes it only at the end
    of the document: dropping the parse closes it through the garbage collector, with a
    ResourceWarning that says nothing useful here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        del stream
        gc.collect()


def _check_stream(
    first: etree._Element,
    rest: Iterator[etree._Element],
    rules: FeedRules,
    duplicates: DuplicateFinder,
    tell: Callable[[int], None] | None,
    schema: etree.XMLSchema,
    seen: list[int],
) -> None:
    """The hot loop: the rules and the duplicate finder on every SMS, counted in ``seen``.

    Written for speed (about a microsecond of Python per recipient). The schema checks
    the shape of every entry as the stream goes, so the fast path only asks what XSD
    cannot: the PARAM count DYNAMIC implies (with the sequence's order, the right count
    and a last PARAM_n are PARAM_1…n), the number's validity and the substituted length.
    Anything off goes through :func:`check_recipient` for a precise message.
    """
    size = len(rules.expected_tags) + 1
    last_tag = rules.expected_tags[-1] if rules.expected_tags else None
    uses = tuple(enumerate(rules.param_uses, 1))
    # the weight of the only PARAM when there is one (the common case: no loop), else 0
    only_weight = rules.param_uses[0] if len(rules.param_uses) == 1 else 0
    static_length = rules.static_length
    limit = MAX_MESSAGE_LENGTH
    # the test of the latest number's calling code, tried first: a feed's numbers mostly
    # share one, and the test is then a single regex call (code, length, digits, validity)
    is_valid = msisdn_checker("")
    numbers, lines = array("q"), array("q")
    add_number, add_line = numbers.append, lines.append
    count = 0

    def slow(sms: etree._Element) -> None:
        """What the fast path doubts: the rules for exact messages, then the schema alone
        on this entry (still whole), to stop the pass at the first violation."""
        check_recipient(sms, (sms.sourceline or 0, 0), rules, duplicates)
        if not schema.validate(sms):
            raise _SchemaFailed

    try:  # the stream raises at its end when the schema failed: keep what was read
        for sms in itertools.chain((first,), rest):
            count += 1
            if len(sms) != size:
                slow(sms)
                continue
            mobile_element = sms[0]
            mobile = mobile_element.text or ""
            if is_valid(mobile) is None:
                is_valid = msisdn_checker(mobile[:3])
                if is_valid(mobile) is None:
                    slow(sms)
                    continue
            if uses:
                if only_weight:
                    param = sms[1]
                    length = static_length + only_weight * len(param.text or "")
                else:
                    length = static_length
                    for index, weight in uses:
                        param = sms[index]
                        length += weight * len(param.text or "")
                # param is the last PARAM: one proxy for its text and its tag
                if length > limit or param.tag != last_tag:
                    slow(sms)
                    continue
            add_number(int(mobile))
            add_line(mobile_element.sourceline or 0)  # column 0: filled in at the end
            if not count & 0xFFFF:
                duplicates.add_batch(numbers, lines)
                numbers, lines = array("q"), array("q")
                add_number, add_line = numbers.append, lines.append
                if tell is not None:
                    tell(sms.sourceline or 0)
    finally:
        duplicates.add_batch(numbers, lines)
        seen[0] = count


def _locate_schema_problems(
    path: Path,
    schema: etree.XMLSchema,
    emit: Emit,
    rules: FeedRules | None,
    duplicates: DuplicateFinder,
    judged: int,
) -> int:
    """Second pass, once the schema failed: each SMS validated alone, the header and stray
    elements together; the rules for the recipients after the ``judged`` first (the first
    pass stopped there). Returns the number of recipients."""
    header: list[etree._Element] = []
    misplaced: list[etree._Element] = []
    last: etree._Element | None = None
    count = 0
    stream = xmlsafe.ElementStream(path, tag="SMS")
    for sms in stream:
        if stream.root is not None and stream.root.tag != "DATA":
            continue  # one clear problem, below, rather than one per entry (read to the
            # end: lxml closes the file it opened only then)
        count += 1
        between = []
        for sibling in sms.itersiblings(preceding=True):
            if sibling.tag == "SMS":
                break
            between.append(copy.deepcopy(sibling))
        (misplaced if last is not None else header).extend(reversed(between))
        if not schema.validate(sms):
            for entry in schema.error_log:
                emit(xmlsafe.log_problem(entry))
        if rules is not None and count > judged:
            check_recipient(sms, (sms.sourceline or 0, 0), rules, duplicates)
        last = sms
    root = stream.root
    if root is None:
        emit(Problem(1, 1, "empty document"))
        return 0
    if root.tag != "DATA":
        tag = cast(str, root.tag)  # parsed: a str tag (types-lxml allows bytes, QName)
        emit(Problem(root.sourceline or 1, 0, f"expected <DATA>, found <{tag}>", tag))
        return 0
    if last is None:
        header = [copy.deepcopy(element) for element in root]
    else:
        misplaced += [copy.deepcopy(element) for element in last.itersiblings()]
    if not schema.validate(header_skeleton(header, misplaced)):
        for entry in schema.error_log:
            emit(xmlsafe.log_problem(entry))
    if last is None:
        emit(Problem(root.sourceline or 1, 0, "DATA has no SMS", "DATA"))
    return count


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
