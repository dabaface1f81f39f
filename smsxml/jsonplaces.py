"""Where the objects of a JSON feed are: found on demand, for the problems that are shown.

ijson's parser (yajl) gives events without positions. So a streamed JSON feed names each
problem by the ordinal of its SMS object (0 for the DATA object), and :class:`JsonPlaces`
turns an ordinal into the line and column of the object's opening brace, as the
in-memory path places them (columns in characters, a BOM not counted). It reads the file
forward with one regular expression that skips strings whole; only shown problems are
placed, so a valid feed is never read twice and an error-dense one only as far as its
last shown problem. Asking for an earlier object (the first listing of a duplicate)
restarts from a checkpoint kept every 1,024 objects: memory stays small and fixed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["JsonPlaces", "count_chars"]

_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*'
# A whole string, one structural character, a number or literal (true, false, null), or a
# string cut by the end of the buffer.
_TOKEN = re.compile(
    rb"(?P<s>%s\")|(?P<c>[{}\[\]:])|(?P<v>[-0-9tfn][^,\]}\s]*)|(?P<cut>%s\\?\Z)"
    % (_STRING, _STRING)
)
# A whole object holding no object or array (an SMS, mostly): skipped in one match.
_FLAT = re.compile(rb'\{[^{}\[\]"]*(?:%s"[^{}\[\]"]*)*\}' % _STRING)
_CONTINUATION = bytes(range(0x80, 0xC0))  # UTF-8 bytes that do not start a character
_BOM = b"\xef\xbb\xbf"
_DATA, _SMS = b'"DATA"', b'"SMS"'


def count_chars(data: bytes) -> int:
    """The characters in UTF-8 ``data`` (a character cut at either end counts once)."""
    return len(data.translate(None, _CONTINUATION))


@dataclass(frozen=True)
class _Mark:
    """Where scanning may start again: before SMS object ``ordinal + 1``."""

    ordinal: int
    offset: int
    line: int
    column: int
    stack: str  # the open containers: D = DATA's object, A = the SMS array


class JsonPlaces:
    """``places(n)`` → (line, column) of SMS object n (1-based), or of DATA's object for 0."""

    CHUNK = 1 << 20
    EVERY = 1024

    def __init__(self, path: Path) -> None:
        self._path = path
        self._marks = [_Mark(0, 0, 1, 0, "")]
        self._recent: dict[int, tuple[int, int]] = {}
        self._scan: Iterator[tuple[int, int, int]] | None = None
        self._at = -1  # the last ordinal the scan reached

    def __call__(self, ordinal: int) -> tuple[int, int]:
        if ordinal in self._recent:
            return self._recent[ordinal]
        if self._scan is None or ordinal <= self._at:
            before = [m for m in self._marks if m.ordinal < ordinal]
            mark = before[-1] if before else self._marks[0]
            self._scan, self._at = self._objects(mark), mark.ordinal - 1
        for found, line, column in self._scan:
            self._at = found
            if len(self._recent) > 256:
                self._recent.clear()
            self._recent[found] = (line, column)
            if found == ordinal:
                return line, column
        self._scan = None
        return (1, 1)

    def line(self, ordinal: int) -> int:
        return self(ordinal)[0]

    def close(self) -> None:
        self._scan = None

    def _objects(self, mark: _Mark) -> Iterator[tuple[int, int, int]]:
        """(ordinal, line, column) of DATA's object and each SMS object from ``mark`` on."""
        ordinal, line, column, stack = mark.ordinal, mark.line, mark.column, list(mark.stack)
        string = key = b""
        with self._path.open("rb") as handle:
            handle.seek(mark.offset)
            if mark.offset == 0 and handle.read(3) != _BOM:
                handle.seek(0)
            base, carry = handle.tell(), b""
            while chunk := handle.read(self.CHUNK):
                buffer, carry, done, position = carry + chunk, b"", 0, 0
                while match := _TOKEN.search(buffer, position):
                    kind, token, position = match.lastgroup, match.group(), match.end()
                    if kind == "cut" or (kind == "v" and position == len(buffer)):
                        carry = buffer[match.start() :]  # completed by the next chunk
                        break
                    if kind == "s" and len(stack) <= 2:
                        string = token
                    if kind != "c" and stack[-1:] != ["A"]:
                        continue
                    if kind == "c" and token == b":":
                        if len(stack) <= 2:
                            key = string
                        continue
                    if kind == "c" and token in b"}]":
                        stack.pop()
                        continue
                    top = stack[-1] if stack else ""
                    sms = top == "A" or (top == "D" and key == _SMS and token == b"{")
                    is_data = top == "{" and len(stack) == 1 and key == _DATA and token == b"{"
                    if sms or is_data:
                        at = match.start()
                        newlines = buffer.count(b"\n", done, at)
                        if newlines:
                            line += newlines
                            column = count_chars(buffer[buffer.rfind(b"\n", done, at) + 1 : at])
                        else:
                            column += count_chars(buffer[done:at])
                        done = at
                        ordinal += sms
                        new_mark = self._marks[-1].ordinal < ordinal - 1
                        if top == "A" and ordinal % self.EVERY == 0 and new_mark:
                            self._marks.append(
                                _Mark(ordinal - 1, base + at, line, column, "".join(stack))
                            )
                        yield ordinal, line, column + 1
                    if kind != "c":
                        continue  # a string or scalar in the SMS array: nothing opens
                    if is_data:
                        stack.append("D")
                    elif top == "D" and key == _SMS and token == b"[":
                        stack.append("A")
                    elif sms and (flat := _FLAT.match(buffer, match.start())):
                        position = flat.end()  # the object is skipped whole: nothing to open
                    else:
                        stack.append(token.decode())
                end = len(buffer) - len(carry)
                newlines = buffer.count(b"\n", done, end)
                if newlines:
                    line += newlines
                    column = count_chars(buffer[buffer.rfind(b"\n", done, end) + 1 : end])
                else:
                    column += count_chars(buffer[done:end])
                base += end
