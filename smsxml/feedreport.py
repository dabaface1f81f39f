"""Where the problems of a feed go while it is read: out at once, or kept, never all of
them for nothing.

A feed of a million recipients that are all wrong has a million problems; keeping them
until the end made memory grow with the errors (264 MB for 400,000, issue 11). The
validators hand each problem to a :class:`Reporter` as soon as it is found: it counts
every one, places the first ``limit`` (a column for XML, a line for JSON: work done only
for what is shown) and passes them on, or keeps them for a library caller.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from smsxml.errors import Problem

__all__ = ["DEFAULT_MAX_ERRORS", "ColumnFiller", "FeedReport", "Reporter"]

#: problems shown per file by ``smsxml validate`` before the rest are only counted: a
#: screenful is what a person reads, and a tool that wants them all passes 0
DEFAULT_MAX_ERRORS = 100

Emit = Callable[[Problem], None]


@dataclass
class FeedReport:
    """What validating one document found: ``count`` problems in all, ``shown`` of them
    passed on (the others were only counted), ``problems`` those kept (none when they
    were streamed out)."""

    recipients: int = 0
    problems: list[Problem] = field(default_factory=list)
    count: int = 0
    shown: int = 0

    @property
    def hidden(self) -> int:
        """How many problems were counted but not passed on (past the limit)."""
        return self.count - self.shown


class Reporter:
    """Counts every problem; places and passes on (``emit``) or keeps the first ``limit``.

    ``limit`` None keeps them all. ``place`` is set by the validator, which knows how its
    source finds a position (it is only called for problems within the limit).
    """

    def __init__(self, emit: Emit | None = None, limit: int | None = None) -> None:
        self.report = FeedReport()
        self.limit = limit
        self.place: Callable[[Problem], Problem] | None = None
        self.streaming = emit is not None
        self._emit = emit or self.report.problems.append

    def __call__(self, problem: Problem) -> None:
        self.report.count += 1
        if self.limit is not None and self.report.count > self.limit:
            return
        self.report.shown += 1
        self._emit(self.place(problem) if self.place is not None else problem)

    def extend(self, problems: list[Problem]) -> None:
        for problem in problems:
            self(problem)


class ColumnFiller:
    """Gives a column to an XML problem that has a line and a tag but no column (libxml2
    gives schema errors none) by finding the tag on that line, reading the file forward.

    Problems come in nearly ascending lines (one recipient's MOBILEPHONE problem before
    its SMS problem), so the last lines read are kept; a line further back (duplicates,
    reported at the end) starts the reading over from the top.
    """

    _KEEP = 64
    _LONGEST = 4096

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: IO[bytes] | None = None
        self._number = 0
        self._recent: deque[tuple[int, bytes]] = deque(maxlen=self._KEEP)

    def __call__(self, problem: Problem) -> Problem:
        if not problem.line or problem.column or not problem.tag:
            return problem
        raw = self._line(problem.line)
        if raw is None:
            return problem
        text = raw.decode("utf-8", errors="replace")
        found = text.find("<" + problem.tag)
        return problem.at(problem.line, found + 1 if found >= 0 else 1)

    def _line(self, wanted: int) -> bytes | None:
        for number, raw in self._recent:
            if number == wanted:
                return raw
        if self._file is None or wanted < self._number:
            if self._file is not None:
                self._file.close()
            self._file = self._path.open("rb")
            self._number = 0
        for raw in self._file:
            self._number += 1
            if len(raw) <= self._LONGEST:  # a minified feed is one line: not kept
                self._recent.append((self._number, raw))
            if self._number == wanted:
                return raw
        return None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
