"""Validating allmysms JSON feeds of any size, streamed, with the XML path's verdicts.

The header (:mod:`smsxml.jsonread`) is judged by the XSD and the rules as XML's is; then
each SMS object, as ijson builds it, goes through the hot loop: the common case is judged
in a few dict look-ups, anything off through the XSD and
:func:`~smsxml.feeds.check_recipient`, for the XML path's own messages. A problem carries
the ordinal of its SMS object until it is shown; :class:`~smsxml.jsonplaces.JsonPlaces`
then finds its line and column.
"""

from __future__ import annotations

import contextlib
import re
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import ijson
from lxml import etree

from smsxml import xmlsafe
from smsxml.errors import BadInput, Problem
from smsxml.feedreport import Emit, FeedReport, Reporter
from smsxml.feedrules import MAX_MESSAGE_LENGTH, DuplicateFinder, FeedRules
from smsxml.feeds import (
    CHILD_ORDER,
    FEED_SCHEMA,
    check_recipient,
    fill_element,
    header_skeleton,
    rules_for,
)
from smsxml.jsonplaces import JsonPlaces
from smsxml.jsonread import open_json, read_header, syntax_error
from smsxml.numbers import msisdn_checker

__all__ = ["validate_json_feed"]

# characters XML 1.0 cannot hold: a value carrying one must go the slow way and be refused
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_PARAM_MAX = 640  # the XSD's Param maxLength


def validate_json_feed(
    path: str | Path,
    *,
    progress: Callable[[int], None] | None = None,
    emit: Emit | None = None,
    limit: int | None = None,
) -> FeedReport:
    """Every problem of a JSON feed, as :func:`~smsxml.feedstream.validate_xml_feed` does
    for XML: streamed to ``emit`` as found (the first ``limit`` placed), or kept, sorted."""
    path = Path(path)
    reporter = Reporter(emit, limit)
    places = JsonPlaces(path)
    reporter.place = lambda problem: (
        problem if problem.column else problem.at(*places(problem.line))
    )
    try:
        _validate(path, reporter, places, progress)
    except BadInput as error:  # not JSON, or not a feed: nothing after it can be read
        reporter.extend(error.problems)
    finally:
        places.close()
    if progress is not None:
        progress(path.stat().st_size)
    if not reporter.streaming:
        reporter.report.problems.sort()
    return reporter.report


def _validate(
    path: Path, reporter: Reporter, places: JsonPlaces, progress: Callable[[int], None] | None
) -> None:
    """Problems carry the ordinal of their SMS object as line (0: DATA), column 0."""
    header = read_header(path)
    known, unknown = header.elements()
    schema = xmlsafe.load_schema(FEED_SCHEMA)
    if not schema.validate(header_skeleton(known, unknown)):
        for entry in schema.error_log:
            reporter(xmlsafe.log_problem(entry, (0, 0)))
    nowhere = lambda _element, _index: (0, 0)  # noqa: E731 - every header place is DATA's
    rules = rules_for(known + unknown, nowhere, etree.Element("DATA"), sink=reporter)
    with contextlib.closing(DuplicateFinder()) as duplicates:
        _check_all(path, header.sms, rules, duplicates, schema, reporter, places, progress)


def _check_all(
    path: Path,
    prefix: str | None,
    rules: FeedRules,
    duplicates: DuplicateFinder,
    schema: etree.XMLSchema,
    reporter: Reporter,
    places: JsonPlaces,
    progress: Callable[[int], None] | None,
) -> None:
    count = 0
    if prefix is not None:
        with open_json(path) as handle:
            tell = (lambda: progress(handle.tell())) if progress is not None else None
            items = ijson.items(handle, prefix, use_float=True)
            try:
                count = _check_recipients(items, rules, duplicates, schema, reporter, tell)
            except ijson.JSONError as error:
                raise syntax_error(path, error) from None
    reporter.report.recipients = count
    if not count:
        reporter(Problem(0, 0, "DATA has no SMS", "DATA"))
    for problem in duplicates.iter_problems(places.line):
        reporter(problem)


_SMS_ORDER = CHILD_ORDER["SMS"]
_SMS_NAMES = frozenset(_SMS_ORDER)
_MSISDN = re.compile("[1-9][0-9]{6,14}", re.ASCII).fullmatch  # the XSD's Msisdn


def _plain(sms: Any) -> bool:
    """Whether the XSD would accept this SMS object: the XSD's Recipient in Python, for
    the recipients the rules refuse (an error-dense feed would otherwise cost a schema
    validation per recipient)."""
    if type(sms) is not dict or not _SMS_NAMES.issuperset(sms):
        return False
    mobile = sms.get("MOBILEPHONE")
    if type(mobile) is not str or not _MSISDN(mobile):
        return False
    for value in sms.values():
        if type(value) is not str or len(value) > _PARAM_MAX or _NOT_XML.search(value):
            return False
    return True


def _check_recipients(
    items: Iterable[Any],
    rules: FeedRules,
    duplicates: DuplicateFinder,
    schema: etree.XMLSchema,
    emit: Emit,
    tell: Callable[[], None] | None,
) -> int:
    """The hot loop, as the XML path's: what XSD and the rules would refuse is looked for
    in a few dict look-ups; anything off is judged the slow way, for exact messages."""
    size = len(rules.expected_tags) + 1
    uses = tuple(zip(rules.expected_tags, rules.param_uses, strict=True))
    static_length, limit = rules.static_length, MAX_MESSAGE_LENGTH
    is_valid = msisdn_checker("")
    not_xml = _NOT_XML.search
    numbers, ordinals = array("q"), array("q")
    count = 0

    def slow(sms: Any, ordinal: int) -> None:
        if _plain(sms):  # the schema would pass it: the rules decide, no XSD needed
            params = [k for k in _SMS_ORDER if k in sms and k != "MOBILEPHONE"]
            mobile = sms["MOBILEPHONE"]
            rules.check((ordinal, 0), mobile, params, [sms[k] for k in params])
            if mobile.isdigit():
                duplicates.add(int(mobile), ordinal)
            return
        try:
            element = fill_element(etree.Element("SMS"), sms)
        except (BadInput, ValueError) as error:  # nested lists, text XML cannot hold
            reason = error.problems[0].message if isinstance(error, BadInput) else str(error)
            emit(Problem(ordinal, 0, reason, "SMS"))
            return
        if not schema.validate(element):
            for entry in schema.error_log:
                emit(xmlsafe.log_problem(entry, (ordinal, 0)))
        check_recipient(element, (ordinal, 0), rules, duplicates, parsed=False)

    try:
        for sms in items:
            count += 1
            mobile = sms.get("MOBILEPHONE") if type(sms) is dict else None
            if type(mobile) is not str or len(sms) != size:
                slow(sms, count)
                continue
            if is_valid(mobile) is None:
                is_valid = msisdn_checker(mobile[:3])
                if is_valid(mobile) is None:
                    slow(sms, count)
                    continue
            length = static_length
            for tag, weight in uses:
                value = sms.get(tag)
                if type(value) is not str or len(value) > _PARAM_MAX or not_xml(value):
                    length = limit + 1
                    break
                length += weight * len(value)
            if length > limit:
                slow(sms, count)
                continue
            numbers.append(int(mobile))
            ordinals.append(count)
            if not count & 0xFFFF:
                duplicates.add_batch(numbers, ordinals)
                numbers, ordinals = array("q"), array("q")
                if tell is not None:
                    tell()
    finally:
        duplicates.add_batch(numbers, ordinals)
    return count
