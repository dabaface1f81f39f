"""SMS text rules: which encoding a text needs, how long it is, and how it splits into parts.

The rules follow GSM 03.38 / 3GPP TS 23.038 and match Twilio's message-segment-calculator:

* A text is sent in GSM-7 when every character is in the default alphabet or its extension
  table; one character outside both makes the WHOLE message UCS-2.
* An SMS carries 140 octets (1120 bits). A concatenated part spends 6 of them on the user
  data header (UDH), hence 160/153 septets in GSM-7 and 70/67 UTF-16 code units in UCS-2.
* Parts are filled character by character, so a 2-unit character (an extension-table
  character, ESC + code, or a surrogate pair in UCS-2) is never cut in two: when only one
  unit is left in a part, it moves whole to the next part and that unit goes unused.
* An empty text is one part of length 0: gateways still send (and bill) one SMS for it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "GSM_LIMITS",
    "UCS2_LIMITS",
    "Encoding",
    "Limits",
    "SmsParts",
    "count_parts",
    "encoding_for",
    "is_gsm7",
    "septet_length",
    "split",
]


class Encoding(enum.Enum):
    """Data coding of a whole message; the values are the iSMS ``coding=`` spellings."""

    GSM7 = "GSM"
    UCS2 = "UCS-2"


class Limits(NamedTuple):
    """Capacity of one SMS, in septets (GSM-7) or UTF-16 code units (UCS-2)."""

    single: int  # a message that fits one SMS has no UDH
    per_part: int  # each part of a concatenated message loses 6 octets to the UDH


_SMS_BITS = 140 * 8
_UDH_BITS = 6 * 8
GSM_LIMITS = Limits(_SMS_BITS // 7, (_SMS_BITS - _UDH_BITS) // 7)  # 160, 153
UCS2_LIMITS = Limits(_SMS_BITS // 16, (_SMS_BITS - _UDH_BITS) // 16)  # 70, 67

# The default alphabet, indexed by septet value, 16 a row. Index 0x1B is ESC, the switch to
# the extension table, not a character: it is kept here only so the indexes stay right.
_ESC = "\x1b"
GSM7_BASIC: str = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# Extension-table characters and their codes; each is sent as ESC + code, two septets.
GSM7_EXTENSION = MappingProxyType(
    {
        "\f": 0x0A,
        "^": 0x14,
        "{": 0x28,
        "}": 0x29,
        "\\": 0x2F,
        "[": 0x3C,
        "~": 0x3D,
        "]": 0x3E,
        "|": 0x40,
        "€": 0x65,
    }
)

_BASIC = GSM7_BASIC.replace(_ESC, "")
_EXT = "".join(GSM7_EXTENSION)
_EXT_SET = frozenset(_EXT)
# Character classes compiled once: the regex engine scans a string in C, not a Python loop.
_NOT_BASIC = re.compile(f"[^{re.escape(_BASIC)}]")
_NOT_GSM = re.compile(f"[^{re.escape(_BASIC + _EXT)}]")
_EXT_RE = re.compile(f"[{re.escape(_EXT)}]")
_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")  # 2 UTF-16 code units: a surrogate pair
# The ASCII part of both tables as bytes: all-ASCII text is checked with bytes.translate.
_ASCII_BASIC = "".join(c for c in _BASIC if c.isascii()).encode("ascii")
_ASCII_EXT = "".join(c for c in _EXT if c.isascii()).encode("ascii")
_GSM_SINGLE = GSM_LIMITS.single


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can be sent in GSM-7 (default alphabet plus extension table)."""
    return _NOT_GSM.search(text) is None


def encoding_for(text: str) -> Encoding:
    """The encoding a gateway picks: GSM-7 if it can, else UCS-2 for the whole message."""
    return Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2


def septet_length(text: str) -> int:
    """GSM-7 length in septets: extension characters count 2 (ESC + code).

    Raises ValueError naming the first character GSM-7 cannot carry, and its index.
    """
    bad = _NOT_GSM.search(text)
    if bad is not None:
        char = bad.group()
        raise ValueError(
            f"{char!r} (U+{ord(char):04X}) at index {bad.start()} is not in the GSM 03.38 alphabet"
        )
    return len(text) + len(_EXT_RE.findall(text))


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2  # strict: a lone surrogate cannot be sent


@dataclass(frozen=True)
class SmsParts:
    """A text as it is sent: its encoding, its length and the SMS parts it takes."""

    encoding: Encoding
    length: int  # septets for GSM-7, UTF-16 code units for UCS-2
    parts: int  # number of SMS sent (and billed)
    per_part: int  # capacity of each part: the single limit when parts == 1
    remaining: int  # units still free in the last part
    segments: tuple[str, ...]  # the text of each part; ''.join(segments) is the text


def split(text: str, encoding: Encoding | None = None) -> SmsParts:
    """Split ``text`` into SMS parts; ``encoding=None`` picks it like a gateway does.

    Forcing GSM7 on text it cannot carry raises ValueError; forcing UCS2 is always allowed.
    """
    if encoding is None:
        encoding = encoding_for(text)
    if encoding is Encoding.GSM7:
        length, limits, wide = septet_length(text), GSM_LIMITS, _EXT_RE
    else:
        length, limits, wide = _utf16_length(text), UCS2_LIMITS, _ASTRAL_RE
    if length <= limits.single:
        return SmsParts(encoding, length, 1, limits.single, limits.single - length, (text,))

    capacity = limits.per_part
    wide_at = {match.start() for match in wide.finditer(text)}
    segments: list[str] = []
    start = used = 0
    for index in range(len(text)):
        cost = 2 if index in wide_at else 1
        if used + cost > capacity:  # does not fit: the whole character opens the next part
            segments.append(text[start:index])
            start, used = index, 0
        used += cost
    segments.append(text[start:])
    return SmsParts(encoding, length, len(segments), capacity, capacity - used, tuple(segments))


def _parts(length: int, limits: Limits, pair_at: Callable[[int], bool] | None) -> int:
    """Parts for an encoded message of ``length`` units; ``pair_at(u)`` says whether unit ``u``
    opens a 2-unit character (ESC, or a high surrogate); None when there are none.

    Only part boundaries are looked at: a part that would end between the two units of a pair
    ends one unit early instead, and the pair opens the next part.
    """
    single, per_part = limits
    if length <= single:
        return 1
    if pair_at is None:
        return -(-length // per_part)
    parts, start = 1, 0
    while length - start > per_part:
        end = start + per_part
        if pair_at(end - 1):
            end -= 1
        parts, start = parts + 1, end
    return parts


def count_parts(text: str) -> int:
    """Number of SMS parts for ``text``, the same as ``split(text).parts``, for bulk use.

    Builds no segments: all-ASCII text costs a bytes.translate, other text one regex scan that
    stops at the first non-GSM character; the encoded form is built only for a multi-part
    message holding 2-unit characters, and then only its part boundaries are looked at.
    """
    n = len(text)
    if text.isascii():
        odd = text.encode("ascii").translate(None, _ASCII_BASIC)
        if odd and odd.translate(None, _ASCII_EXT):  # a character GSM-7 lacks, e.g. tab or backtick
            return _parts(n, UCS2_LIMITS, None)  # ASCII has no surrogate pairs
        escapes = len(odd)
    else:
        escapes = 0
        for match in _NOT_BASIC.finditer(text):  # lazy: stops at the first non-GSM character
            if match.group() not in _EXT_SET:
                return _ucs2_parts(text)
            escapes += 1
    if not escapes or n + escapes <= _GSM_SINGLE:
        return _parts(n + escapes, GSM_LIMITS, None)
    septets = text  # the message as sent: ESC before each extension character
    for char in _EXT:
        if char in septets:
            septets = septets.replace(char, _ESC + char)
    return _parts(len(septets), GSM_LIMITS, lambda unit: septets[unit] == _ESC)


def _ucs2_parts(text: str) -> int:
    high = text.encode("utf-16-le")[1::2]  # high byte of each UTF-16 code unit
    return _parts(len(high), UCS2_LIMITS, lambda unit: 0xD8 <= high[unit] <= 0xDB)
