"""The strtotime subset that reads iSMS ``schedule`` values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsxml.schedule import ATHENS, parse_schedule

#: Wednesday 10 May 2017, 12:30:15.5 in Athens
NOW = datetime(2017, 5, 10, 12, 30, 15, 500_000, tzinfo=ATHENS)


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=ATHENS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2017-07-17", at(2017, 7, 17)),
        ("2017-05-11 14:40", at(2017, 5, 11, 14, 40)),
        ("2017-04-22 17:47:55", at(2017, 4, 22, 17, 47, 55)),
        ("11 June 2017 11:00:00", at(2017, 6, 11, 11)),
        ("+1 day", at(2017, 5, 11, 12, 30, 15)),
        ("+1 week", at(2017, 5, 17, 12, 30, 15)),
        ("+1 week 2 days 4 hours 2 seconds", at(2017, 5, 19, 16, 30, 17)),
        ("next Thursday", at(2017, 5, 11)),
        ("last Monday", at(2017, 5, 8)),
    ],
)
def test_every_example_of_the_vendor_page(text: str, expected: datetime) -> None:
    """The nine examples iSMS lists read as PHP's strtotime reads them."""
    assert parse_schedule(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("next Wednesday", at(2017, 5, 17)),  # strictly after today
        ("last Wednesday", at(2017, 5, 3)),  # strictly before today
        ("Wednesday", at(2017, 5, 10)),  # today counts
        ("this friday", at(2017, 5, 12)),
        ("next thursday 10:00", at(2017, 5, 11, 10)),
        ("next Monday +1 day", at(2017, 5, 16)),  # the weekday first, then the offset
        ("tomorrow", at(2017, 5, 11)),
        ("tomorrow noon", at(2017, 5, 11, 12)),
        ("yesterday 18:05", at(2017, 5, 9, 18, 5)),
        ("today", at(2017, 5, 10)),
        ("midnight", at(2017, 5, 10)),
        ("now", at(2017, 5, 10, 12, 30, 15)),
        ("3 weeks ago", at(2017, 4, 19, 12, 30, 15)),
        ("+2 hours -30 minutes", at(2017, 5, 10, 14, 0, 15)),
        ("+1 fortnight", at(2017, 5, 24, 12, 30, 15)),
        ("next month", at(2017, 6, 10, 12, 30, 15)),
        ("last year", at(2016, 5, 10, 12, 30, 15)),
        ("2017-01-31 +1 month", at(2017, 3, 3)),  # PHP's day overflow
        ("2017-02-30", at(2017, 3, 2)),
        ("2017-05-11T14:40", at(2017, 5, 11, 14, 40)),
        ("2017/05/11", at(2017, 5, 11)),
        ("05/11/2017", at(2017, 5, 11)),  # American month/day, as PHP
        ("11.05.2017", at(2017, 5, 11)),  # European day.month, as PHP
        ("11-May-2017 9:05", at(2017, 5, 11, 9, 5)),
        ("June 11, 2017 2pm", at(2017, 6, 11, 14)),
        ("11th june", at(2017, 6, 11)),  # this year
        ("2:30 p.m.", at(2017, 5, 10, 14, 30)),
        ("12am", at(2017, 5, 10)),
        ("  NEXT   THURSDAY  ", at(2017, 5, 11)),
        ("@1500000000", datetime(2017, 7, 14, 2, 40, tzinfo=UTC)),
    ],
)
def test_php_relatives_of_the_examples(text: str, expected: datetime) -> None:
    """Forms near the vendor's examples follow PHP's rules too."""
    assert parse_schedule(text, NOW) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "soon",
        "next",
        "+1 dayz",
        "1 mayday",
        "2017",
        "2017-13-01",
        "2017-00-10",
        "25:00",
        "12:60",
        "13pm",
        "2017-05-11 2017-05-12",
        "14:40 15:00",
        "monday tuesday",
        "@1 10:00",
        "+99999999 years",
        "+9999999999 days",
        "2017-05-11; DROP TABLE",
    ],
)
def test_unreadable_text_is_a_value_error(text: str) -> None:
    """What strtotime would answer false for raises ValueError (iSMS: Invalid scheduling date)."""
    with pytest.raises(ValueError):
        parse_schedule(text, NOW)


def test_result_keeps_the_zone_of_now() -> None:
    """A naive now gives naive results; an aware one, results in its zone."""
    naive = parse_schedule("2017-07-17 10:00", datetime(2017, 1, 1))
    assert naive == datetime(2017, 7, 17, 10) and naive.tzinfo is None
    assert parse_schedule("2017-07-17 10:00", NOW.astimezone(UTC)).tzinfo is UTC
    assert parse_schedule("@0", datetime(2017, 1, 1)) == datetime(1970, 1, 1)


def test_past_dates_are_returned_not_refused() -> None:
    """Refusing the past is the caller's decision ("last Monday" is a vendor example)."""
    assert parse_schedule("2001-01-01", NOW) < NOW


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9998, 12, 31)))
def test_written_dates_read_back(moment: datetime) -> None:
    """Any ``YYYY-MM-DD HH:MM:SS`` (what the iSMS client writes) reads back to itself."""
    moment = moment.replace(microsecond=0)
    assert parse_schedule(moment.strftime("%Y-%m-%d %H:%M:%S"), NOW.replace(tzinfo=None)) == moment


@given(
    st.integers(-1000, 1000),
    st.sampled_from([("day", 1), ("days", 1), ("week", 7), ("weeks", 7), ("fortnight", 14)]),
)
def test_day_offsets_add_days(amount: int, unit: tuple[str, int]) -> None:
    """``+N days`` / ``-N weeks`` move the wall clock by whole days, keeping the time."""
    naive = NOW.replace(tzinfo=None, microsecond=0)
    expected = naive + timedelta(days=amount * unit[1])
    assert parse_schedule(f"{amount:+d} {unit[0]}", naive) == expected
    assert parse_schedule(f"{abs(amount)} {unit[0]} ago", naive) == naive - timedelta(
        days=abs(amount) * unit[1]
    )
