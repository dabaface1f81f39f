"""The rules of an allmysms feed that XSD cannot say, checked per header and per recipient.

- ``DYNAMIC`` equals the number of distinct ``#param_n#`` placeholders in MESSAGE, and
  they are numbered 1…n without gaps (the placeholder syntax of public allmysms clients);
- every SMS carries exactly PARAM_1…PARAM_n;
- MOBILEPHONE is a valid number for its country (phonenumbers' metadata);
- DATE is a real calendar date;
- the message each recipient gets, after substitution, is at most 640 characters
  (allmysms status 111);
- a recipient listed twice is reported, with the line of its first appearance.

Both the streaming validator (feeds of millions of recipients) and the in-memory path
use these classes, so the rules live here once. The per-recipient path is hot: it does
arithmetic on lengths and never builds the substituted text.
"""

from __future__ import annotations

import re
import tempfile
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from smsxml.errors import Problem
from smsxml.numbers import is_valid_msisdn

__all__ = ["MAX_MESSAGE_LENGTH", "PLACEHOLDER", "DuplicateFinder", "FeedRules", "render"]

PLACEHOLDER = re.compile(r"#param_([0-9]+)#")
MAX_MESSAGE_LENGTH = 640
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def render(message: str, params: Sequence[str | None]) -> str:
    """MESSAGE with ``#param_n#`` replaced by the recipient's PARAM_n."""

    def value(match: re.Match[str]) -> str:
        index = int(match.group(1)) - 1
        return (params[index] or "") if 0 <= index < len(params) else match.group(0)

    return PLACEHOLDER.sub(value, message)


class FeedRules:
    """The checks of one feed: build it from the header, then feed it every recipient."""

    def __init__(
        self,
        message: str,
        dynamic: int | None,
        date: str | None = None,
        *,
        where: dict[str, tuple[int, int]] | None = None,
        sink: Callable[[Problem], None] | None = None,
    ) -> None:
        # with a sink, problems go out as they are found (bounded memory for feeds whose
        # every recipient is wrong); without, they are kept in ``problems``
        self.problems: list[Problem] = []
        self._sink = sink or self.problems.append
        at = where or {}
        nowhere = (0, 0)
        numbers = [int(n) for n in PLACEHOLDER.findall(message)]
        distinct = sorted(set(numbers))
        expected = dynamic or 0

        if distinct and dynamic is None:
            self._add(
                at.get("MESSAGE", nowhere),
                f"MESSAGE has {len(distinct)} placeholder(s) #param_n# but no DYNAMIC",
                "MESSAGE",
            )
        elif len(distinct) != expected:
            tag = "DYNAMIC" if "DYNAMIC" in at else "MESSAGE"
            self._add(
                at.get(tag, nowhere),
                f"DYNAMIC is {expected} but MESSAGE has {len(distinct)} distinct "
                "placeholder(s) #param_n#",
                tag,
            )
        if distinct and distinct != list(range(1, len(distinct) + 1)):
            found = ", ".join(f"#param_{n}#" for n in distinct)
            self._add(
                at.get("MESSAGE", nowhere),
                f"placeholders must be #param_1#…#param_{len(distinct)}# without gaps, "
                f"found {found}",
                "MESSAGE",
            )
        if date is not None:
            try:
                datetime.strptime(date, DATE_FORMAT)
            except ValueError:
                self._add(at.get("DATE", nowhere), f"DATE {date!r} is not a real date", "DATE")
        self.expected_tags = tuple(f"PARAM_{n}" for n in range(1, expected + 1))
        uses = Counter(numbers)
        self.static_length = len(PLACEHOLDER.sub("", message))
        # how often each PARAM_n appears in MESSAGE, by position
        self.param_uses = [uses.get(n, 0) for n in range(1, expected + 1)]

    def _add(self, where: tuple[int, int], message: str, tag: str = "") -> None:
        self._sink(Problem(where[0], where[1], message, tag))

    def check(
        self,
        where: tuple[int, int],
        mobile: str | None,
        tags: Sequence[str],
        values: Sequence[str | None],
        mobile_where: tuple[int, int] | None = None,
    ) -> None:
        """One recipient at ``where`` (line, column): its MOBILEPHONE text (found at
        ``mobile_where``, default ``where``), its PARAM tags and their texts, in order."""
        # A MOBILEPHONE that is not even digits is the schema's to report, not ours too.
        if mobile and mobile.isdigit() and mobile[0] != "0" and not is_valid_msisdn(mobile):
            self._add(
                mobile_where or where,
                f"MOBILEPHONE {mobile} is not a valid phone number",
                "MOBILEPHONE",
            )
        if tuple(tags) != self.expected_tags:
            want = ", ".join(self.expected_tags) or "no PARAM_n"
            got = ", ".join(tags) or "none"
            self._add(where, f"SMS must carry {want} (DYNAMIC), found {got}", "SMS")
            return
        length = self.static_length
        for uses, value in zip(self.param_uses, values, strict=False):
            if value:
                length += uses * len(value)
        if length > MAX_MESSAGE_LENGTH:
            self._add(
                where,
                f"the message for {mobile} is {length} characters after substitution "
                f"(at most {MAX_MESSAGE_LENGTH})",
                "SMS",
            )


class DuplicateFinder:
    """Finds recipients listed twice, in bounded memory, for feeds of any size.

    A bitmap of hashed numbers says "certainly new" for almost every recipient; the few
    whose bit was already set are candidates. Every (number, line) goes to a spool file
    on disk, and :meth:`problems` re-reads it once to confirm candidates and find each
    duplicate's first line. Memory: the bitmap and the candidates; never the whole list.
    """

    _CHUNK = 1 << 16

    #: 2**26 bits (8 MiB): about 1.5 % false candidates at a million recipients; a fixed
    #: size, so memory does not grow with the feed (it must not, for any feed size)
    BITMAP_BITS = 1 << 26

    def __init__(self, bits: int = BITMAP_BITS) -> None:
        self._mask = bits - 1
        self._bitmap = bytearray(bits >> 3)
        self._candidates: set[int] = set()
        self._numbers = array("q")
        self._lines = array("q")  # places: column << 32 | line
        self._spool = tempfile.TemporaryFile(prefix="smsxml-dups-")
        self._spooled: list[int] = []  # the length of each chunk on disk

    def add(self, number: int, line: int, column: int = 0) -> None:
        slot = number & self._mask  # the last digits of MSISDNs spread well enough
        byte, bit = slot >> 3, 1 << (slot & 7)
        if self._bitmap[byte] & bit:
            self._candidates.add(number)
        else:
            self._bitmap[byte] |= bit
        self._numbers.append(number)
        self._lines.append(column << 32 | line)
        if len(self._numbers) >= self._CHUNK:
            self._flush()

    def add_batch(self, numbers: array[int], places: array[int]) -> None:
        """Many numbers at once, the streaming validator's path (one call per 65,536
        recipients), with their places packed as ``column << 32 | line``: a bare line
        for column 0, so that the caller builds no big int per recipient."""
        if not numbers:
            return
        if self._numbers:
            self._flush()
        bitmap, mask, candidates = self._bitmap, self._mask, self._candidates
        for number in numbers:  # add()'s test, with one bitmap read per number
            slot = number & mask
            byte = slot >> 3
            old = bitmap[byte]
            new = old | 1 << (slot & 7)
            if new == old:
                candidates.add(number)
            else:
                bitmap[byte] = new
        self._numbers, self._lines = numbers, places
        self._flush()

    def _flush(self) -> None:
        self._numbers.tofile(self._spool)
        self._lines.tofile(self._spool)
        self._spooled.append(len(self._numbers))
        self._numbers = array("q")
        self._lines = array("q")

    def _chunks(self) -> Iterator[tuple[array[int], array[int]]]:
        """Yield the spooled (numbers, lines) chunks, then the in-memory tail."""
        self._spool.seek(0)
        for size in self._spooled:
            numbers, lines = array("q"), array("q")
            numbers.fromfile(self._spool, size)
            lines.fromfile(self._spool, size)
            yield numbers, lines
        yield self._numbers, self._lines

    def problems(self) -> list[Problem]:
        """Every repeated recipient, at the line of each repetition."""
        return list(self.iter_problems())

    def close(self) -> None:
        """Drop the spool file (done by :meth:`iter_problems`; call when stopped before)."""
        self._spool.close()

    def iter_problems(self, line_of: Callable[[int], int] | None = None) -> Iterator[Problem]:
        """Every repeated recipient, one at a time, in the order they were added.

        ``line_of`` turns a stored line into the line printed for the first listing (a
        JSON feed stores the ordinal of each SMS object; its line is found on demand).
        """
        try:
            if not self._candidates:
                return
            first_line: dict[int, int] = {}
            for numbers, lines in self._chunks():
                if self._candidates.isdisjoint(numbers):
                    continue
                for index, number in enumerate(numbers):
                    if number not in self._candidates:
                        continue
                    line, column = lines[index] & 0xFFFFFFFF, lines[index] >> 32
                    if number not in first_line:
                        first_line[number] = line
                        continue
                    first = first_line[number] if line_of is None else line_of(first_line[number])
                    yield Problem(
                        line,
                        column,
                        f"duplicate recipient {number} (first listed on line {first})",
                        "MOBILEPHONE",
                    )
        finally:
            self._spool.close()
