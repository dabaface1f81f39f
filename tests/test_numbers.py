"""Phone-number rules: normalize, the fast is_valid_msisdn and its slow definition."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneNumberType

from smsxml.numbers import (
    InvalidNumber,
    calling_code,
    checker_for,
    country_of,
    invalid_msisdns,
    is_valid_msisdn,
    msisdn_checker,
    normalize,
)


def slow_is_valid_msisdn(msisdn: str) -> bool:
    """The definition that is_valid_msisdn must equal, written with phonenumbers' API."""
    if not (7 <= len(msisdn) <= 15 and msisdn.isascii() and msisdn.isdigit()):
        return False
    try:
        number = phonenumbers.parse("+" + msisdn)
    except NumberParseException:
        return False
    nsn = phonenumbers.national_significant_number(number)
    return phonenumbers.is_valid_number(number) and msisdn == f"{number.country_code}{nsn}"


def _examples() -> list[tuple[str, str]]:
    """(calling code, NSN) of phonenumbers' example number of every type of every region."""
    numbers = [
        phonenumbers.example_number_for_type(region, kind)
        for region in phonenumbers.SUPPORTED_REGIONS
        for kind in vars(PhoneNumberType).values()
        if isinstance(kind, int)
    ]
    numbers += map(
        phonenumbers.example_number_for_non_geo_entity,
        phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS,
    )
    return sorted(
        {(str(n.country_code), phonenumbers.national_significant_number(n)) for n in numbers if n}
    )


EXAMPLES = _examples()
CODES = sorted(map(str, COUNTRY_CODE_TO_REGION_CODE))


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+33 6 12 34 56 78", None, "33612345678"),
        ("0033612345678", None, "33612345678"),
        ("33612345678", None, "33612345678"),
        ("(+30) 691-234-5678", None, "306912345678"),
        ("06 12 34 56 78", "FR", "33612345678"),
        ("0612345678", "fr", "33612345678"),
        ("33612345678", "DE", "33612345678"),
        ("+44 (0)7400 123456", None, "447400123456"),
        ("+800 1234 5678", None, "80012345678"),
    ],
)
def test_normalize_accepts_what_users_type(raw: str, region: str | None, expected: str) -> None:
    """International, 00-prefixed, bare MSISDN and national input all give the MSISDN."""
    assert normalize(raw, region) == expected
    assert is_valid_msisdn(expected)


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("", None, "not a phone number"),
        ("abc", "FR", "not a phone number"),
        ("+999 123 456 789", None, "unknown country calling code"),
        ("99912345678", None, "unknown country calling code"),
        ("+33 6 12", None, "not a valid number for FR"),
        ("06 12 34", "FR", "not a valid number for FR"),
        ("+1 123 456 7890", None, "not a valid number for +1"),
        ("0612345678", None, "no default_region"),
    ],
)
def test_normalize_says_why_it_refuses(raw: str, region: str | None, reason: str) -> None:
    """InvalidNumber names the raw value and the reason."""
    with pytest.raises(InvalidNumber, match=re.escape(reason)) as error:
        normalize(raw, region)
    assert repr(raw) in str(error.value)


def test_normalize_rejects_unknown_default_region() -> None:
    """A bad default_region is a caller bug (ValueError), not an invalid number."""
    with pytest.raises(ValueError, match="default_region") as error:
        normalize("0612345678", "XX")
    assert not isinstance(error.value, InvalidNumber)


@pytest.mark.parametrize(
    "msisdn",
    [
        "33612345678",  # FR mobile
        "33123456789",  # FR fixed
        "306912345678",  # GR mobile 69x
        "302101234567",  # GR fixed (Athens 21x)
        "4915123456789",  # DE mobile
        "4930123456",  # DE fixed, short Berlin number
        "447400123456",  # GB mobile
        "447781123456",  # GG mobile, shares +44
        "12015550123",  # US
        "16135550123",  # CA, shares +1 with US
        "12684641234",  # AG, chosen among the +1 regions by leading digits
        "79123456789",  # RU mobile
        "77012345678",  # KZ mobile, shares +7 with RU
        "390612345678",  # IT fixed: the leading 0 belongs to the number
        "393123456789",  # IT mobile
        "5491123456789",  # AR mobile (9 prefix)
        "80012345678",  # non-geographic +800
    ],
)
def test_is_valid_msisdn_accepts(msisdn: str) -> None:
    """Known valid MSISDNs of FR, GR, DE, GB, +1, +7, IT, AR and +800 are accepted."""
    assert is_valid_msisdn(msisdn)
    assert slow_is_valid_msisdn(msisdn)


@pytest.mark.parametrize(
    "msisdn",
    [
        "",
        "abc",
        "+33612345678",
        "0033612345678",
        " 33612345678",
        "33 612345678",
        "3361234567812345",  # 16 digits
        "336123",  # 6 digits
        "\u0663\u0663\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic digits
        "336123456\u0667\u0668",  # a FR mobile ending in Arabic-Indic digits
        "3361234567\uff18",  # a FR mobile ending in a fullwidth 8
        "99912345678",  # unassigned calling code
        "3361234567",  # FR too short
        "33012345678",  # FR NSN cannot start with 0
        "330612345678",  # FR trunk prefix 0 kept
        "4407400123456",  # GB trunk prefix 0 kept (phonenumbers would strip it)
        "789123456789",  # RU trunk prefix 8 kept
        "3758103349707",  # BY: matches the BY patterns, but parse strips the 8
        "30691234567",  # GR mobile one digit short
        "11234567890",  # +1 area codes cannot start with 1
        "39612345678",  # IT fixed line without its 0
        "8001234567",  # +800 one digit short
    ],
)
def test_is_valid_msisdn_refuses(msisdn: str) -> None:
    """Garbage, wrong lengths, unknown codes and kept trunk prefixes are refused."""
    assert not is_valid_msisdn(msisdn)
    assert not slow_is_valid_msisdn(msisdn)


def test_every_example_number_is_a_valid_msisdn() -> None:
    """phonenumbers' example number of every type and region (7-15 digits) is accepted."""
    msisdns = [cc + nsn for cc, nsn in EXAMPLES if 7 <= len(cc + nsn) <= 15]
    assert len(msisdns) > 1000
    assert [m for m in msisdns if not is_valid_msisdn(m)] == []


def _mutate(example: tuple[str, str], edit: str, at: int, digit: str) -> str:
    cc, nsn = example
    at %= len(nsn) + 1
    if edit == "replace":
        nsn = nsn[:at] + digit + nsn[at + 1 :]
    elif edit == "insert":  # at 0: a national trunk prefix kept in the MSISDN
        nsn = nsn[:at] + digit + nsn[at:]
    elif edit == "delete":
        nsn = nsn[:at] + nsn[at + 1 :]
    elif edit == "unicode" and at < len(nsn):  # the same digit, Arabic-Indic: not ASCII
        nsn = nsn[:at] + chr(0x0660 + int(nsn[at])) + nsn[at + 1 :]
    return cc + nsn


DIGIT = st.sampled_from("0123456789")
RANDOM_MSISDNS = st.builds(
    str.__add__, st.sampled_from(CODES), st.text(alphabet="0123456789", min_size=4, max_size=13)
)
NEAR_EXAMPLES = st.builds(
    _mutate,
    st.sampled_from(EXAMPLES),
    st.sampled_from(["keep", "replace", "insert", "delete", "unicode"]),
    st.integers(0, 15),
    DIGIT,
)


@settings(max_examples=1000, deadline=None, database=None)
@given(st.one_of(RANDOM_MSISDNS, st.text(alphabet="0123456789+ ", max_size=17)))
def test_fast_equals_slow_on_random_numbers(msisdn: str) -> None:
    """is_valid_msisdn equals the slow definition on real codes + random NSNs."""
    assert is_valid_msisdn(msisdn) == slow_is_valid_msisdn(msisdn)


@settings(max_examples=1000, deadline=None, database=None)
@given(NEAR_EXAMPLES)
def test_fast_equals_slow_near_example_numbers(msisdn: str) -> None:
    """is_valid_msisdn equals the slow definition on example numbers and one-digit edits."""
    assert is_valid_msisdn(msisdn) == slow_is_valid_msisdn(msisdn)


@pytest.mark.parametrize(
    ("msisdn", "code"),
    [
        ("33612345678", 33),
        ("12015550123", 1),
        ("306912345678", 30),
        ("80012345678", 800),
        ("33012345678", 33),  # invalid number, known code
        ("0033612345678", None),
        ("99912345678", None),
        ("abc", None),
    ],
)
def test_calling_code(msisdn: str, code: int | None) -> None:
    """calling_code reads the code prefix of any MSISDN-shaped string."""
    assert calling_code(msisdn) == code


@pytest.mark.parametrize(
    ("msisdn", "region"),
    [
        ("33612345678", "FR"),
        ("12015550123", "US"),
        ("16135550123", "CA"),
        ("77012345678", "KZ"),
        ("79123456789", "RU"),
        ("447400123456", "GB"),
        ("447781123456", "GG"),
        ("80012345678", None),  # non-geographic
        ("33012345678", None),  # invalid
    ],
)
def test_country_of(msisdn: str, region: str | None) -> None:
    """country_of gives the region of valid geographic MSISDNs, else None."""
    assert country_of(msisdn) == region


@settings(max_examples=700, deadline=None)
@given(
    st.from_regex(r"[1-9][0-9]{6,14}", fullmatch=True)
    | st.sampled_from([f"{cc}{nsn}" for cc, nsn in EXAMPLES])
)
def test_checker_for_agrees_with_is_valid_msisdn(msisdn: str) -> None:
    """The unrolled test the streaming validator uses answers as is_valid_msisdn does."""
    checker = checker_for(msisdn[:3])
    unrolled = (
        checker is not None
        and 7 <= len(msisdn) <= 15  # the caller's part of the bargain
        and checker[1](msisdn[checker[0] :]) is not None
    )
    assert unrolled == is_valid_msisdn(msisdn)


ANY_MSISDNS = st.one_of(
    RANDOM_MSISDNS,
    NEAR_EXAMPLES,
    st.text(alphabet="0123456789+ \u0661\uff16", max_size=17),
)


@settings(max_examples=1000, deadline=None, database=None)
@given(ANY_MSISDNS, st.sampled_from(CODES))
def test_msisdn_checker_tests_its_own_calling_code_only(msisdn: str, code: str) -> None:
    """The test for a code's prefix accepts exactly the valid MSISDNs of that code, any
    string in: the streaming validator tries the latest one on every number first."""
    assert (msisdn_checker(msisdn[:3])(msisdn) is not None) == is_valid_msisdn(msisdn)
    accepted = msisdn_checker(code + "00")(msisdn) is not None
    assert accepted == (msisdn.startswith(code) and is_valid_msisdn(msisdn))


def test_msisdn_checker_refuses_everything_for_unknown_codes() -> None:
    """No known calling code (or a leading 0): a test that refuses every string."""
    for prefix in ("999", "033", "abc", ""):
        assert msisdn_checker(prefix)("33612345678") is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.from_regex(r"[0-9+]{0,16}", fullmatch=True), max_size=30))
def test_invalid_msisdns_agrees_with_is_valid_msisdn(batch: list[str]) -> None:
    """The batch test picks exactly the entries is_valid_msisdn refuses, in order."""
    assert invalid_msisdns(batch) == [n for n in batch if not is_valid_msisdn(n)]
