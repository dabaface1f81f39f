"""Tests for smsxml.text: GSM 03.38 tables, encoding choice, lengths and the split into parts."""

import dataclasses
import math
import string
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsxml.text import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM_LIMITS,
    UCS2_LIMITS,
    Encoding,
    SmsParts,
    count_parts,
    encoding_for,
    is_gsm7,
    septet_length,
    split,
)

# Every position of the default alphabet that is not plain printable ASCII, by Unicode name, so
# that a look-alike (Latin A for Greek Alpha, the Ohm sign for Omega...) cannot slip in.
NAMED_POSITIONS = {
    0x00: "\N{COMMERCIAL AT}",
    0x01: "\N{POUND SIGN}",
    0x02: "\N{DOLLAR SIGN}",
    0x03: "\N{YEN SIGN}",
    0x04: "\N{LATIN SMALL LETTER E WITH GRAVE}",
    0x05: "\N{LATIN SMALL LETTER E WITH ACUTE}",
    0x06: "\N{LATIN SMALL LETTER U WITH GRAVE}",
    0x07: "\N{LATIN SMALL LETTER I WITH GRAVE}",
    0x08: "\N{LATIN SMALL LETTER O WITH GRAVE}",
    0x09: "\N{LATIN CAPITAL LETTER C WITH CEDILLA}",
    0x0A: "\N{LINE FEED}",
    0x0B: "\N{LATIN CAPITAL LETTER O WITH STROKE}",
    0x0C: "\N{LATIN SMALL LETTER O WITH STROKE}",
    0x0D: "\N{CARRIAGE RETURN}",
    0x0E: "\N{LATIN CAPITAL LETTER A WITH RING ABOVE}",
    0x0F: "\N{LATIN SMALL LETTER A WITH RING ABOVE}",
    0x10: "\N{GREEK CAPITAL LETTER DELTA}",
    0x11: "\N{LOW LINE}",
    0x12: "\N{GREEK CAPITAL LETTER PHI}",
    0x13: "\N{GREEK CAPITAL LETTER GAMMA}",
    0x14: "\N{GREEK CAPITAL LETTER LAMDA}",
    0x15: "\N{GREEK CAPITAL LETTER OMEGA}",
    0x16: "\N{GREEK CAPITAL LETTER PI}",
    0x17: "\N{GREEK CAPITAL LETTER PSI}",
    0x18: "\N{GREEK CAPITAL LETTER SIGMA}",
    0x19: "\N{GREEK CAPITAL LETTER THETA}",
    0x1A: "\N{GREEK CAPITAL LETTER XI}",
    0x1B: "\N{ESCAPE}",
    0x1C: "\N{LATIN CAPITAL LETTER AE}",
    0x1D: "\N{LATIN SMALL LETTER AE}",
    0x1E: "\N{LATIN SMALL LETTER SHARP S}",
    0x1F: "\N{LATIN CAPITAL LETTER E WITH ACUTE}",
    0x24: "\N{CURRENCY SIGN}",
    0x40: "\N{INVERTED EXCLAMATION MARK}",
    0x5B: "\N{LATIN CAPITAL LETTER A WITH DIAERESIS}",
    0x5C: "\N{LATIN CAPITAL LETTER O WITH DIAERESIS}",
    0x5D: "\N{LATIN CAPITAL LETTER N WITH TILDE}",
    0x5E: "\N{LATIN CAPITAL LETTER U WITH DIAERESIS}",
    0x5F: "\N{SECTION SIGN}",
    0x60: "\N{INVERTED QUESTION MARK}",
    0x7B: "\N{LATIN SMALL LETTER A WITH DIAERESIS}",
    0x7C: "\N{LATIN SMALL LETTER O WITH DIAERESIS}",
    0x7D: "\N{LATIN SMALL LETTER N WITH TILDE}",
    0x7E: "\N{LATIN SMALL LETTER U WITH DIAERESIS}",
    0x7F: "\N{LATIN SMALL LETTER A WITH GRAVE}",
}
ASCII_RUNS = {
    0x20: ' !"#',
    0x25: "%&'()*+,-./0123456789:;<=>?",
    0x41: string.ascii_uppercase,
    0x61: string.ascii_lowercase,
}
EXTENSION = {
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


def units(text: str, encoding: Encoding) -> int:
    """Length of ``text`` in septets or UTF-16 code units, computed without the module."""
    if encoding is Encoding.GSM7:
        return sum(2 if char in EXTENSION else 1 for char in text)
    return len(text.encode("utf-16-le")) // 2


# --- tables and constants -------------------------------------------------------------------


def test_basic_table_has_128_code_points_with_esc_at_0x1b():
    """The default alphabet is 128 distinct entries indexed by septet, ESC at 0x1B."""
    assert len(GSM7_BASIC) == 128
    assert len(set(GSM7_BASIC)) == 128
    assert GSM7_BASIC[0x1B] == "\x1b"


def test_basic_table_matches_gsm_03_38_position_by_position():
    """Every septet value maps to the GSM 03.38 character, checked by Unicode name."""
    expected = dict(NAMED_POSITIONS)
    for start, run in ASCII_RUNS.items():
        expected |= {start + offset: char for offset, char in enumerate(run)}
    assert sorted(expected) == list(range(128))
    assert {code: GSM7_BASIC[code] for code in range(128)} == expected


def test_extension_table_is_the_ten_escaped_characters():
    """The extension table holds exactly form feed ^ { } \\ [ ~ ] | and the euro sign."""
    assert dict(GSM7_EXTENSION) == EXTENSION


def test_limits_follow_from_140_octets_and_a_6_octet_udh():
    """One SMS is 160 septets / 70 units; a concatenated part 153 septets / 67 units."""
    assert (GSM_LIMITS.single, GSM_LIMITS.per_part) == (160, 153)
    assert (UCS2_LIMITS.single, UCS2_LIMITS.per_part) == (70, 67)


def test_encoding_values_are_the_isms_coding_names():
    """Encoding values are the iSMS coding= spellings, so Encoding("GSM") works."""
    assert Encoding("GSM") is Encoding.GSM7
    assert Encoding("UCS-2") is Encoding.UCS2


# --- encoding choice --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("", Encoding.GSM7),
        ("Hello\nWorld", Encoding.GSM7),
        ("\r", Encoding.GSM7),
        ("Café à Zürich, 5 €", Encoding.GSM7),
        ("ΓΔΘ", Encoding.GSM7),
        ("ΓΔΘΛΞΠΣΦΨΩ", Encoding.GSM7),
        ("[a] {b} ^~|\\\f", Encoding.GSM7),
        ("αβγ", Encoding.UCS2),
        ("tab\there", Encoding.UCS2),
        ("`", Encoding.UCS2),
        ("ç", Encoding.UCS2),
        ("\x1b", Encoding.UCS2),
        ("Привет", Encoding.UCS2),
        ("😀", Encoding.UCS2),
    ],
)
def test_encoding_for(text, encoding):
    """GSM-7 exactly when every character is in the basic or extension table."""
    assert encoding_for(text) is encoding
    assert is_gsm7(text) is (encoding is Encoding.GSM7)


@pytest.mark.parametrize("char", "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ")
def test_latin_looking_greek_capitals_force_ucs2(char):
    """Greek capitals that look Latin (Alpha, Beta...) are not in GSM-7 and are not mapped."""
    assert encoding_for("ABC" + char) is Encoding.UCS2


def test_one_non_gsm_character_makes_the_whole_message_ucs2():
    """A single non-GSM character switches the whole message, and its limits, to UCS-2."""
    parts = split("a" * 100 + "ж")
    assert (parts.encoding, parts.length, parts.parts) == (Encoding.UCS2, 101, 2)


# --- lengths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "septets"), [("", 0), ("abc", 3), ("€", 2), ("a^€", 5), ("{}\f", 6), ("Δé", 2)]
)
def test_septet_length_counts_extension_characters_twice(text, septets):
    """Extension characters cost two septets (ESC + code), all others one."""
    assert septet_length(text) == septets


def test_septet_length_names_the_first_non_gsm_character_and_its_index():
    """The ValueError points at the first character GSM-7 cannot carry."""
    with pytest.raises(ValueError, match=r"'\\t' \(U\+0009\) at index 2"):
        septet_length("ab\tc`")


# --- splitting ------------------------------------------------------------------------------

VECTORS = [
    ("a" * 160, Encoding.GSM7, 160, 1),
    ("a" * 161, Encoding.GSM7, 161, 2),
    ("a" * 306, Encoding.GSM7, 306, 2),
    ("a" * 307, Encoding.GSM7, 307, 3),
    ("é" * 160, Encoding.GSM7, 160, 1),
    ("ж" * 70, Encoding.UCS2, 70, 1),
    ("ж" * 71, Encoding.UCS2, 71, 2),
    ("ж" * 134, Encoding.UCS2, 134, 2),
    ("ж" * 135, Encoding.UCS2, 135, 3),
    ("€" * 80, Encoding.GSM7, 160, 1),
    ("€" * 81, Encoding.GSM7, 162, 2),
    ("a" * 152 + "€", Encoding.GSM7, 154, 1),
    ("a" * 152 + "€" + "a" * 10, Encoding.GSM7, 164, 2),
    ("a" * 152 + "€" + "a" * 152, Encoding.GSM7, 306, 3),  # 306 = 2 * 153, but € moves
    ("a" * 66 + "😀", Encoding.UCS2, 68, 1),
    ("😀" * 35, Encoding.UCS2, 70, 1),
    ("😀" * 36, Encoding.UCS2, 72, 2),
    ("a" * 66 + "😀" + "a" * 66, Encoding.UCS2, 134, 3),  # 134 = 2 * 67, but 😀 moves
]


@pytest.mark.parametrize(("text", "encoding", "length", "parts"), VECTORS)
def test_split_and_count_parts_vectors(text, encoding, length, parts):
    """Reference vectors: encoding, length in units and number of parts, by both functions."""
    result = split(text)
    assert (result.encoding, result.length, result.parts) == (encoding, length, parts)
    assert count_parts(text) == parts


def test_empty_text_is_one_empty_part():
    """An empty message is still one SMS of length 0, with the whole single capacity free."""
    assert split("") == SmsParts(Encoding.GSM7, 0, 1, 160, 160, ("",))
    assert count_parts("") == 1


def test_single_part_reports_the_single_limit():
    """A message that fits one SMS uses the 160-septet limit, not the 153 of a part."""
    result = split("a" * 10)
    assert (result.per_part, result.remaining, result.segments) == (160, 150, ("a" * 10,))


def test_multi_part_reports_per_part_capacity_and_room_left():
    """A concatenated message uses 153 septets per part; remaining is room in the last part."""
    result = split("a" * 161)
    assert (result.per_part, result.remaining) == (153, 145)
    assert result.segments == ("a" * 153, "a" * 8)


def test_escape_pair_is_never_split_across_parts():
    """With one septet left, the euro sign (ESC + code) moves whole to the next part."""
    result = split("a" * 152 + "€" + "a" * 10)
    assert result.segments == ("a" * 152, "€" + "a" * 10)
    assert result.remaining == 153 - 12


def test_surrogate_pair_is_never_split_across_parts():
    """With one code unit left, an emoji (a surrogate pair) moves whole to the next part."""
    result = split("a" * 66 + "😀" + "a" * 10)
    assert result.segments == ("a" * 66, "😀" + "a" * 10)
    assert split("😀" * 36).segments == ("😀" * 33, "😀" * 3)


def test_forcing_gsm7_on_non_gsm_text_raises():
    """GSM-7 cannot be forced on text it cannot carry."""
    with pytest.raises(ValueError, match="index 1"):
        split("aж", Encoding.GSM7)


def test_forcing_ucs2_on_gsm_text_counts_utf16_units():
    """UCS-2 can be forced on GSM text; the euro sign is then one unit, not an escape pair."""
    result = split("€" * 10, Encoding.UCS2)
    assert (result.encoding, result.length, result.parts, result.per_part) == (
        Encoding.UCS2,
        10,
        1,
        70,
    )
    assert split("a" * 161, Encoding.UCS2).parts == 3


def test_lone_surrogate_cannot_be_sent():
    """A lone surrogate has no UTF-16 encoding: split and count_parts both raise ValueError."""
    with pytest.raises(ValueError):
        split("a\ud800")
    with pytest.raises(ValueError):
        count_parts("a\ud800")


def test_sms_parts_is_immutable():
    """SmsParts is frozen, so a result can be shared and cached safely."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        split("a").parts = 2  # type: ignore[misc]


# --- properties -----------------------------------------------------------------------------

BASIC_SAMPLE = "aZ0 .@\nΔéÆ"
gsm_texts = st.text(st.sampled_from(BASIC_SAMPLE + "".join(EXTENSION)), max_size=800)
ucs2_texts = st.text(st.sampled_from("aé€^ж😀🎉\t"), max_size=400)
texts = st.one_of(gsm_texts, ucs2_texts, st.text(max_size=400))
basic_only = st.text(st.sampled_from(BASIC_SAMPLE), min_size=161, max_size=2000)


def check_segments(text: str, result: SmsParts) -> None:
    limits = GSM_LIMITS if result.encoding is Encoding.GSM7 else UCS2_LIMITS
    capacity = limits.single if result.parts == 1 else limits.per_part
    sizes = [units(segment, result.encoding) for segment in result.segments]
    assert "".join(result.segments) == text
    assert len(result.segments) == result.parts
    assert sum(sizes) == result.length
    assert result.per_part == capacity
    assert all(size <= capacity for size in sizes)
    assert result.remaining == capacity - sizes[-1]
    for segment, following in pairwise(result.segments):
        assert units(segment + following[0], result.encoding) > capacity  # filled greedily


@given(texts)
def test_segments_rejoin_fit_and_are_filled_greedily(text):
    """Segments rejoin to the text, each fits its capacity, and none ends before it must."""
    check_segments(text, split(text))


@given(texts)
def test_forced_ucs2_segments_rejoin_and_fit(text):
    """Forcing UCS-2 on any text still gives segments that rejoin and fit 70/67 units."""
    check_segments(text, split(text, Encoding.UCS2))


@given(texts)
def test_count_parts_agrees_with_split(text):
    """The fast count_parts returns exactly split(text).parts."""
    assert count_parts(text) == split(text).parts


@given(texts)
def test_one_part_exactly_when_length_fits_the_single_limit(text):
    """A message is one SMS iff its length is within 160 septets / 70 units."""
    result = split(text)
    single = (GSM_LIMITS if result.encoding is Encoding.GSM7 else UCS2_LIMITS).single
    assert (result.parts == 1) is (result.length <= single)


@st.composite
def filled_to_whole_parts(draw, alphabet: str, filler: str, encoding: Encoding) -> str:
    """Text of 2+ whole parts' worth of units: a unit wasted by a moved pair then costs one
    more part, so a count that ignores moved pairs cannot go unseen."""
    per_part = (GSM_LIMITS if encoding is Encoding.GSM7 else UCS2_LIMITS).per_part
    text = draw(st.text(st.sampled_from(alphabet), min_size=per_part, max_size=4 * per_part))
    padding = filler * (-units(text, encoding) % per_part)
    at = draw(st.integers(0, len(text)))
    return text[:at] + padding + text[at:]


@given(
    st.one_of(
        filled_to_whole_parts("a€{", "a", Encoding.GSM7),
        filled_to_whole_parts("ж😀\U000f0000", "ж", Encoding.UCS2),
    )
)
def test_count_parts_agrees_with_split_when_moved_pairs_add_a_part(text):
    """count_parts matches split when every wasted unit (a moved pair) costs a whole part."""
    result = split(text)
    check_segments(text, result)
    assert count_parts(text) == result.parts


@given(basic_only)
def test_basic_gsm_text_takes_ceil_n_over_153_parts(text):
    """Basic-alphabet text of n > 160 characters takes ceil(n / 153) parts."""
    assert split(text).parts == count_parts(text) == math.ceil(len(text) / 153)
