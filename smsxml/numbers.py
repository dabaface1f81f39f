"""Phone-number rules for SMS APIs: user input to MSISDN, and fast MSISDN validation.

An MSISDN here is a number in international format, digits only, without "+" or "00"
(e.g. ``33612345678``). All rules come from the phonenumbers library: ``normalize`` and
``country_of`` call it directly; ``is_valid_msisdn`` compiles its metadata into a few
regexes per country calling code, because ``parse`` + ``is_valid_number`` (~60 µs) is far
too slow for feeds of a million recipients.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cache
from itertools import groupby

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    NumberParseException,
    PhoneMetadata,
    PhoneNumberDesc,
    PhoneNumberFormat,
)

__all__ = [
    "InvalidNumber",
    "calling_code",
    "checker_for",
    "country_of",
    "invalid_msisdns",
    "is_valid_msisdn",
    "msisdn_checker",
    "normalize",
]

_NON_GEO = "001"  # phonenumbers' region code for non-geographic calling codes (800, 882...)
# First 3 digits of an MSISDN -> its calling code ("336" -> "33"); codes are prefix-free.
_CALLING_CODE_OF = {
    (code + f"{tail:02d}")[:3]: code
    for code in map(str, COUNTRY_CODE_TO_REGION_CODE)
    for tail in range(100)
}
_SEPARATORS = re.compile(r"[\s().\-/]+")
# The number types of phonenumbers' _number_type_helper, most frequent in SMS feeds first
# (their order changes speed, not validity); mobile is handled apart.
_TYPES = (
    "fixed_line",
    "voip",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "uan",
    "pager",
    "voicemail",
)


_Check = Callable[[str], object | None]  # None: refused


class InvalidNumber(ValueError):
    """A phone number that cannot be turned into a valid MSISDN."""


def normalize(raw: str, default_region: str | None = None) -> str:
    """Return the MSISDN for what a user typed, e.g. "+33 6 12 34 56 78" -> "33612345678".

    "+..." and "00..." are international. A bare digit string (separators allowed, no
    "+") is read as international first, so MSISDN feeds need no region, then as a
    national number of ``default_region`` ("06 12 34 56 78" with "FR"). Digits valid
    both ways keep the international reading: with "US", "2015550123" is +20 (Egypt).
    Raises InvalidNumber saying why: not a number, unknown country calling code, or
    invalid for its country; ValueError for an unknown ``default_region``.
    """
    region = default_region.upper() if default_region is not None else None
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown default_region {default_region!r}")
    text = raw.strip()
    digits = _SEPARATORS.sub("", text)
    if digits.isascii() and digits.isdigit():
        if digits.startswith("00"):
            return _parse_valid(raw, "+" + digits[2:], None)
        if not digits.startswith("0"):
            try:
                return _parse_valid(raw, "+" + digits, None)
            except InvalidNumber:
                if region is None:
                    raise
        elif region is None:
            raise InvalidNumber(f"{raw!r}: national number (leading 0) and no default_region")
    return _parse_valid(raw, text, region)


def _parse_valid(raw: str, text: str, region: str | None) -> str:
    """Parse ``text``; return its E.164 digits, or raise InvalidNumber naming ``raw``."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        if exc.error_type != NumberParseException.INVALID_COUNTRY_CODE:
            why = f"not a phone number ({exc.args[0]})"
        elif region is None and "+" not in text:
            why = "no country calling code and no default_region"
        else:
            why = "unknown country calling code"
        raise InvalidNumber(f"{raw!r}: {why}") from exc
    if not phonenumbers.is_valid_number(number):
        where = phonenumbers.region_code_for_number(number) or f"+{number.country_code}"
        raise InvalidNumber(f"{raw!r}: not a valid number for {where}")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)[1:]


def is_valid_msisdn(msisdn: str) -> bool:
    """Tell whether ``msisdn`` is a valid MSISDN, in 1-2 µs (feeds of 1e6 recipients).

    Definition: ``msisdn`` is 7-15 ASCII digits, ``phonenumbers.parse("+" + msisdn)``
    gives a number that ``is_valid_number`` accepts, AND its national significant
    number equals the digits after the country calling code, so a national trunk
    prefix inside the MSISDN is refused ("4407911123456" is invalid although
    phonenumbers strips the 0). The result equals that slow definition exactly: the
    same metadata and decision steps (non-geographic codes such as 800 included),
    compiled into regexes per calling code on first use.
    """
    return msisdn_checker(msisdn[:3])(msisdn) is not None


def msisdn_checker(prefix: str) -> _Check:
    """The test behind :func:`is_valid_msisdn` for MSISDNs starting with ``prefix`` (their
    first three digits): a callable taking a whole MSISDN, any string, and returning None
    unless it is a valid MSISDN of that calling code (a test refusing everything for no
    known calling code).

    For loops over millions of numbers: keep the latest one and try it first, as most
    numbers of a feed share their calling code. For most codes it is a regex's fullmatch
    (one C call): the code, the length and the digits are all part of the regex.
    """
    cc = _CALLING_CODE_OF.get(prefix[:3])  # None for a leading 0
    return _never if cc is None else _msisdn_check(cc)


def checker_for(prefix: str) -> tuple[int, _Check] | None:
    """The test behind :func:`is_valid_msisdn` for MSISDNs starting with ``prefix`` (their
    first three digits): (length of the calling code, a callable taking the rest and
    returning None when invalid), or None for no known calling code.

    For loops over millions of numbers: cache it per prefix and skip is_valid_msisdn's
    own checks (the caller must still require 7-15 ASCII digits).
    """
    cc = _CALLING_CODE_OF.get(prefix[:3])
    return None if cc is None else (len(cc), _check(cc))


def invalid_msisdns(msisdns: Iterable[str]) -> list[str]:
    """The entries of ``msisdns`` that :func:`is_valid_msisdn` refuses, in order: the
    same test unrolled for long lists (a SOAP send of 10,000 recipients)."""
    checkers: dict[str, _Check] = {}
    invalid = []
    for msisdn in msisdns:
        prefix = msisdn[:3]
        check = checkers.get(prefix) or checkers.setdefault(prefix, msisdn_checker(prefix))
        if check(msisdn) is None:
            invalid.append(msisdn)
    return invalid


def calling_code(msisdn: str) -> int | None:
    """Return the country calling code that ``msisdn`` starts with (33 for FR), without
    validating the rest; None if it is not 7-15 digits or starts with no known code."""
    if not 7 <= len(msisdn) <= 15 or not (msisdn.isascii() and msisdn.isdigit()):
        return None
    cc = _CALLING_CODE_OF.get(msisdn[:3])
    return int(cc) if cc is not None else None


def country_of(msisdn: str) -> str | None:
    """Return the region code of a valid MSISDN ("FR", "CA", "KZ"...), via phonenumbers.

    None when ``msisdn`` is not a valid MSISDN, or is non-geographic (e.g. 800...),
    since those belong to no country.
    """
    if not is_valid_msisdn(msisdn):
        return None
    region = phonenumbers.region_code_for_number(phonenumbers.parse("+" + msisdn))
    return None if region in (None, _NON_GEO) else region


# --- compiled metadata ----------------------------------------------------------------


def _metadata(cc: int, region: str) -> PhoneMetadata | None:
    return PhoneMetadata.metadata_for_region_or_calling_code(cc, region)


def _general(md: PhoneMetadata) -> PhoneNumberDesc:
    return md.general_desc or PhoneNumberDesc()  # always set; a missing one matches nothing


def _pattern(desc: PhoneNumberDesc | None) -> str | None:
    # phonenumbers: a missing desc or an empty pattern never matches
    return (desc.national_number_pattern or None) if desc is not None else None


def _digits(sizes: Iterable[int]) -> str:
    return "|".join(f"[0-9]{{{size}}}" for size in sizes)


def _no_strip(main: PhoneMetadata, md: PhoneMetadata, length: int) -> str:
    """Regex assertion: parse() would not strip a national prefix from this NSN.

    Mirrors _maybe_strip_national_prefix_carrier_code (main region, no transform rule:
    the first match of the prefix, hence the atomic group) and parse's length test of
    the result, which must be possible for the region or too long. Every kept length is
    below ``length``, so the prefix matched is never empty, as parse() requires.
    """
    npp, general = main.national_prefix_for_parsing, _general(main)
    lengths, local = general.possible_length, general.possible_length_local_only
    if not npp or not lengths:
        return ""
    kept = [n for n in range(length) if n not in local and (n in lengths or n > lengths[-1])]
    if not kept:
        return ""
    stripped = rf"(?>{npp})(?=(?:{_digits(kept)})\Z)"
    viable = rf"(?:{_pattern(general) or '(?!)'})\Z"
    if md is main:  # the NSN is viable: only a viable stripped number is kept
        return f"(?!{stripped}(?={viable}))"
    return f"(?!(?!{viable}){stripped}|{stripped}(?={viable}))"


# A metadata pattern that only ever matches ASCII digits (under re.ASCII): digits, \d,
# classes, groups and quantifiers; all of phonenumbers' patterns are (checked at compile).
_DIGITS_ONLY = re.compile(r"(?:\\d|[0-9\[\]\-(){},?:|*+])*")


def _widths(pattern: str) -> range:
    """Every length a match of ``pattern`` can have, from the shortest to the longest."""
    low, high = re._parser.parse(pattern).getwidth()  # type: ignore[attr-defined]
    return range(low, high + 1)


def _region_pattern(md: PhoneMetadata, main: PhoneMetadata | None, sizes: range) -> str:
    """``_number_type_helper(nsn, md) != UNKNOWN`` (and, given ``main``, "no national
    prefix stripped") for NSNs of ``sizes`` digits, as a regex to fullmatch under
    re.ASCII: per possible length, the general pattern as a lookahead, then any type
    pattern admitting that length.

    Lengths with the same checks share one branch. Its guard on the length (and on ASCII
    digits) is left out when the general pattern itself allows no other length and only
    matches digits: the guard costs as much as the rest of a French number's test.
    """
    general = _pattern(_general(md))
    lengths = tuple(_general(md).possible_length)
    descs = [getattr(md, name) for name in _TYPES]
    if not md.same_mobile_and_fixed_line_pattern:  # else phonenumbers never checks mobile
        descs.insert(0, md.mobile)
    checks: dict[str, list[int]] = {}  # what follows the general pattern -> its lengths
    for length in lengths if general else ():
        types = [
            f"(?:{pattern})"
            for desc in descs
            if (pattern := _pattern(desc)) and length in (desc.possible_length or lengths)
        ]
        if types and length in sizes:
            no_strip = _no_strip(main, md, length) if main is not None else ""
            checks.setdefault(f"{no_strip}(?:{'|'.join(types)})", []).append(length)
    branches = []
    for rest, sizes_here in checks.items():
        needless = _DIGITS_ONLY.fullmatch(general or "") and all(
            size in sizes_here for size in _widths(general or "")
        )
        guard = "" if needless else rf"(?=(?:{_digits(sizes_here)})\Z)"
        branches.append(rf"{guard}(?=(?:{general})\Z){rest}")
    return "|".join(branches) or "(?!)"


def _prefix_stripper(md: PhoneMetadata) -> Callable[[str], bool]:
    """Tell whether parse() changes an NSN valid for ``md`` by stripping a national
    prefix, for the few regions whose transform rule cannot be folded into a regex."""
    prefix = re.compile(md.national_prefix_for_parsing or "(?!)")
    rule = md.national_prefix_transform_rule
    general = re.compile(_pattern(md.general_desc) or "(?!)")
    lengths = _general(md).possible_length
    local = _general(md).possible_length_local_only

    def strips(nsn: str) -> bool:
        match = prefix.match(nsn)
        if match is None:
            return False
        groups = match.groups()
        if rule and groups and groups[-1] is not None:
            stripped = prefix.sub(rule, nsn, count=1)
        else:
            stripped = nsn[match.end() :]
        if stripped == nsn or (general.fullmatch(nsn) and not general.fullmatch(stripped)):
            return False
        return len(stripped) not in local and (
            len(stripped) in lengths or len(stripped) > lengths[-1]
        )

    return strips


def _never(nsn: str) -> None:
    return None


def _nsn_sizes(cc_digits: str) -> range:
    """The NSN lengths of the MSISDNs of 7-15 digits that start with ``cc_digits``."""
    return range(7 - len(cc_digits), 16 - len(cc_digits))


def _compile(pattern: str) -> _Check:
    return re.compile(pattern, re.ASCII).fullmatch  # \d: ASCII digits, a cheaper test


@cache
def _check(cc_digits: str) -> _Check:
    """Compile, on first use, the test of the NSNs of one calling code: a callable
    returning None for the NSNs that ``is_valid_msisdn`` refuses."""
    cc = int(cc_digits)
    regions = COUNTRY_CODE_TO_REGION_CODE[cc]
    main = _metadata(cc, regions[0])  # parse() strips prefixes with the main region's data
    if main is None:
        return _never
    foldable = not main.national_prefix_transform_rule
    sizes = _nsn_sizes(cc_digits)
    known = [(region, md) for region in regions if (md := _metadata(cc, region)) is not None]
    # _region_code_for_number_from_list, in the same order: a region with leading digits
    # is chosen by them alone, another one if the number is valid for it.
    plan: list[tuple[re.Pattern[str] | None, dict[str, _Check]]] = []
    for by_leading, items in groupby(
        known, lambda item: len(regions) > 1 and bool(item[1].leading_digits)
    ):
        run = list(items)
        checks: dict[str, _Check] = {
            region: _compile(_region_pattern(md, main if foldable else None, sizes))
            for region, md in run
        }
        if by_leading:  # consecutive regions share one regex; the first match names the region
            leading = "|".join(f"(?P<{region}>{md.leading_digits})" for region, md in run)
            plan.append((re.compile(leading), checks))
        else:
            plan.extend((None, {"": check}) for check in checks.values())

    def first_region(nsn: str) -> object | None:
        for leading, checks in plan:
            if leading is None:
                if (valid := checks[""](nsn)) is not None:
                    return valid
            elif (hit := leading.match(nsn)) is not None:
                return checks[hit.lastgroup or ""](nsn)
        return None

    check = plan[0][1][""] if len(plan) == 1 and plan[0][0] is None else first_region
    if foldable:
        return check
    strips = _prefix_stripper(main)
    return lambda nsn: None if (valid := check(nsn)) is None or strips(nsn) else valid


@cache
def _msisdn_check(cc_digits: str) -> _Check:
    """Compile, on first use, the test of whole MSISDNs (any string in) of one calling
    code: a callable returning None for those that ``is_valid_msisdn`` refuses."""
    cc = int(cc_digits)
    regions = COUNTRY_CODE_TO_REGION_CODE[cc]
    main = _metadata(cc, regions[0])
    if len(regions) == 1 and main is not None and not main.national_prefix_transform_rule:
        # the test of _check in one regex, after the code: its lengths keep to 7-15 digits
        return _compile(f"{cc_digits}(?:{_region_pattern(main, main, _nsn_sizes(cc_digits))})")
    check, size = _check(cc_digits), len(cc_digits)

    def valid(msisdn: str) -> object | None:
        if not (msisdn.startswith(cc_digits) and 7 <= len(msisdn) <= 15):
            return None
        return check(msisdn[size:]) if msisdn.isascii() and msisdn.isdigit() else None

    return valid
