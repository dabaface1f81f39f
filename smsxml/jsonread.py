"""Reading allmysms JSON feeds of any size: the header, then the recipients one at a time.

Read whole, a JSON feed cost 15-25 times its size in memory (issue 11: 300,000 recipients,
478-670 MB). ijson parses it with yajl in C (its wheels carry the ``yajl2_c`` backend;
:data:`BACKEND` says which one runs). The header, DATA's keys but SMS, is read as events
up to the SMS array: writers put SMS last (the vendor's example, our convert), which a
glance at the file's end confirms; otherwise the whole file is read as events for the
keys after it. Then ``ijson.items`` builds the SMS objects in C, one at a time. yajl
gives no positions: a syntax error is placed by feeding the file again to a parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import ijson
from lxml import etree

from smsxml.errors import BadInput, Problem
from smsxml.feedrules import PLACEHOLDER, render
from smsxml.feeds import CHILD_ORDER, fill_element
from smsxml.jsonplaces import count_chars

__all__ = [
    "BACKEND",
    "ROOT_EXPECTED",
    "Header",
    "inspect_json_recipients",
    "json_feed_parts",
    "open_json",
    "read_header",
    "syntax_error",
    "text_of",
]

#: the ijson backend in use: "yajl2_c" (C) wherever its wheel installed
BACKEND: str = ijson.backend

ROOT_EXPECTED = 'expected one root object, e.g. {"DATA": {...}}'
_BOM = b"\xef\xbb\xbf"
_RANK = {name: index for index, name in enumerate(CHILD_ORDER["DATA"])}
# SMS's array (or an empty one) closes DATA and the root: no key comes after it. (A key
# after SMS whose value is a list of objects would end the same way and go unread; the
# schema has no such field, so only a feed already wrong in other ways could hold one.)
_SMS_LAST = re.compile(rb"[}\[]\s*\]\s*\}\s*\}\s*\Z")


@contextmanager
def open_json(path: Path) -> Iterator[IO[bytes]]:
    """The file past its BOM, if any (yajl refuses one; the in-memory path allowed it)."""
    with path.open("rb") as handle:
        if handle.read(3) != _BOM:
            handle.seek(0)
        yield handle


def text_of(value: Any) -> str:
    """A JSON scalar as the XML text it becomes (``true`` → "1", null → "")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


# Syntax errors ---------------------------------------------------------------------


def syntax_error(path: Path, error: ijson.JSONError) -> BadInput:
    """yajl's message, at the line and column where it stopped: the file is fed again to
    a parser, in large pieces up to the failing one and then a byte at a time."""
    raw = error.args[0] if error.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    message = "invalid JSON: " + text.strip().split("\n")[0]
    offset = _failing_offset(path)
    line, column, seen = 1, 0, 0
    with open_json(path) as handle:
        start = handle.tell()
        while seen < offset - start and (chunk := handle.read(min(1 << 20, offset - start - seen))):
            seen += len(chunk)
            if (newline := chunk.rfind(b"\n")) >= 0:
                line += chunk.count(b"\n")
                column = count_chars(chunk[newline + 1 :])
            else:
                column += count_chars(chunk)
    return BadInput(Problem(line, column + 1, message))


def _failing_offset(path: Path) -> int:
    """The offset of the byte yajl refuses (the file's size when it ends too early)."""
    piece = 1 << 16

    events = ijson.sendable_list()  # emptied after each piece: only the error matters

    def feed(coro: Any, data: bytes) -> None:
        coro.send(data)
        del events[:]

    with open_json(path) as handle:
        start, coro, failing = handle.tell(), ijson.basic_parse_coro(events), None
        while chunk := handle.read(piece):
            try:
                feed(coro, chunk)
            except ijson.JSONError:
                failing = handle.tell() - len(chunk)
                break
        if failing is None:
            return path.stat().st_size
        handle.seek(start)
        coro = ijson.basic_parse_coro(events)
        while handle.tell() < failing:
            feed(coro, handle.read(min(piece, failing - handle.tell())))
        window = b""
        for _ in range(piece):
            byte = handle.read(1)
            window += byte
            try:
                feed(coro, byte)
            except ijson.JSONError:
                return failing + _token_start(window)
    return path.stat().st_size  # pragma: no cover - the failure repeats


def _token_start(window: bytes) -> int:
    """Where the token ending ``window`` starts: yajl refuses a string once it has read
    it whole, and a reader looks for its opening quote."""
    end = len(window) - 1
    if not window.endswith(b'"'):
        return end
    start = window.rfind(b'"', 0, end)
    while start > 0 and (start - len(window[:start].rstrip(b"\\"))) % 2:
        start = window.rfind(b'"', 0, start)
    return start if start >= 0 else end


# The header ------------------------------------------------------------------------


@dataclass
class Header:
    """DATA's keys but SMS, decoded, and the ijson prefix of the recipients (None: no
    SMS key)."""

    values: dict[str, Any] = field(default_factory=dict)
    sms: str | None = None

    def elements(self) -> tuple[list[etree._Element], list[etree._Element]]:
        """The header as XML elements: those the schema knows (in its order), then the
        rest (placed after SMS, where the schema reports them), as the in-memory path."""
        ordered = sorted(self.values.items(), key=lambda kv: _RANK.get(kv[0], len(_RANK)))
        known: list[etree._Element] = []
        unknown: list[etree._Element] = []
        for name, value in ordered:
            for entry in value if isinstance(value, list) else [value]:
                element = fill_element(etree.Element(name), entry)
                (known if _RANK.get(name, len(_RANK)) < _RANK["SMS"] else unknown).append(element)
        return known, unknown

    def text(self, name: str) -> str:
        return text_of(self.values.get(name))


def read_header(path: str | Path) -> Header:
    """The header of the JSON feed at ``path`` (BadInput when it is not a feed's JSON)."""
    path = Path(path)
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 4096))
        sms_last = _SMS_LAST.search(handle.read()) is not None
    header = Header()
    with open_json(path) as handle:
        try:
            _scan_header(ijson.parse(handle, use_float=True), header, stop_at_sms=sms_last)
        except ijson.JSONError as error:
            raise syntax_error(path, error) from None
    return header


def _scan_header(
    events: Iterable[tuple[str, str, Any]], header: Header, *, stop_at_sms: bool
) -> None:
    """Fill ``header`` from parse events: the root must be ``{"DATA": {...}}``; each key of
    DATA but SMS is built into its value, SMS is skipped (or ends the scan)."""
    depth, name, skip, root_keys = 0, "", 0, 0
    builder: Any = None  # the value of the current header key, while it is read
    for _prefix, event, value in events:
        opens = event in ("start_map", "start_array")
        closes = event in ("end_map", "end_array")
        value_starts = depth == 2 and event not in ("map_key", "end_map")
        if depth == 0 and event != "start_map":
            raise BadInput(Problem(1, 1, ROOT_EXPECTED))
        if depth == 1 and (event == "map_key") and (root_keys or value != "DATA"):
            raise BadInput(Problem(1, 1, ROOT_EXPECTED))
        if depth == 1 and event not in ("map_key", "start_map", "end_map"):
            raise BadInput(Problem(1, 1, ROOT_EXPECTED))  # DATA is not an object
        root_keys += depth == 1 and event == "map_key"
        if skip:  # inside SMS, read again by the recipients' pass
            skip += opens - closes
        elif value_starts and builder is None and name == "SMS":
            header.sms = "DATA.SMS.item" if event == "start_array" else "DATA.SMS"
            if stop_at_sms:
                return
            skip = int(opens)
        elif value_starts or builder is not None:
            builder = builder or ijson.ObjectBuilder()
            builder.event(event, value)
            if not builder.containers:
                header.values[name], builder = builder.value, None
        elif depth == 2 and event == "map_key":
            name = value
        depth += opens - closes
    if not root_keys:
        raise BadInput(Problem(1, 1, ROOT_EXPECTED))


# Inspection and conversion -----------------------------------------------------------


def inspect_json_recipients(path: str | Path) -> Iterator[tuple[str, str]]:
    """(MOBILEPHONE, the message it gets after substitution) for every SMS, streaming."""
    header, recipients = json_feed_parts(path)
    message = text_of(header.get("MESSAGE"))
    highest = max((int(n) for n in PLACEHOLDER.findall(message)), default=0)
    names = [f"PARAM_{n}" for n in range(1, highest + 1)]
    for sms in recipients:
        yield sms.get("MOBILEPHONE", ""), render(message, [sms.get(name) for name in names])


def json_feed_parts(path: str | Path) -> tuple[dict[str, str], Iterator[dict[str, str]]]:
    """A JSON feed's header, in schema order, and its recipients, one at a time, every
    value as the text XML would hold."""
    path = Path(path)
    header = read_header(path)
    known, unknown = header.elements()
    # built from str keys, so str tags (types-lxml types .tag as anything it may be set to)
    parts = {cast(str, e.tag): e.text or "" for e in known + unknown}
    return parts, _recipients(path, header.sms)


def _recipients(path: Path, prefix: str | None) -> Iterator[dict[str, str]]:
    if prefix is None:
        return
    rank = {name: index for index, name in enumerate(CHILD_ORDER["SMS"])}
    orders: dict[tuple[str, ...], list[str]] = {}  # the keys of an SMS in schema order
    with open_json(path) as handle:
        try:
            for sms in ijson.items(handle, prefix, use_float=True):
                if not isinstance(sms, dict):
                    raise BadInput(Problem(1, 1, "an SMS is not an object"))
                keys = tuple(sms)
                order = orders.get(keys)
                if order is None:
                    order = sorted(keys, key=lambda k: rank.get(k, len(rank)))
                    if len(orders) < 64:  # a feed's SMS objects share a few key orders
                        orders[keys] = order
                yield {key: text_of(sms[key]) for key in order}
        except ijson.JSONError as error:
            raise syntax_error(path, error) from None
