"""Scheduling dates the way iSMS reads them: a subset of PHP's ``strtotime``.

iSMS's ``schedule`` parameter "is parsed with PHP function strtotime()" (research/providers.md
§4); its page lists ``2017-07-17``, ``2017-05-11 14:40``, ``2017-04-22 17:47:55``,
``11 June 2017 11:00:00``, ``+1 day``, ``+1 week 2 days 4 hours 2 seconds``,
``next Thursday`` and ``last Monday``. This module reads those forms and their near
relatives with the stdlib only (python-dateutil is not a dependency):

* dates: ``YYYY-MM-DD``, ``YYYY/MM/DD``, ``MM/DD/YYYY`` (American, as PHP), ``DD.MM.YYYY``
  and ``DD-MM-YYYY`` (European, as PHP), ``11 June 2017``, ``11-Jun-2017``, ``June 11, 2017``;
  ``@1500000000`` (Unix time);
* times: ``14:40``, ``14:40:55``, ``T14:40``, ``2pm``, ``2:30 pm``;
* words: ``now``, ``today``, ``midnight``, ``noon``, ``tomorrow``, ``yesterday``;
* offsets: ``+1 day``, ``-2 hours``, ``3 weeks ago``, ``next week``, ``last month``, with
  units sec/second, min/minute, hour, day, week, fortnight, month, year (plurals too);
* weekdays: ``Thursday`` / ``this Thursday`` (today or the next one), ``next Thursday``
  (strictly after today), ``last``/``previous Monday`` (strictly before today).

PHP's rules kept: a date or weekday without a time means midnight; a weekday moves the
date before offsets are added (``next Monday +1 day`` is a Tuesday); month arithmetic and
out-of-range days overflow into the next month (``2017-01-31 +1 month`` is 3 March).
Past results are returned as they are: whether "the past" is an error is the caller's
decision (the iSMS sandbox sends such messages at once).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ATHENS", "parse_schedule"]


def _athens() -> tzinfo:
    try:
        return ZoneInfo("Europe/Athens")
    except ZoneInfoNotFoundError:  # no tz database on this machine: winter time, no DST
        return timezone(timedelta(hours=2), "EET")


#: iSMS's clock: its servers are in Greece, so wall-clock schedules are Athens time.
ATHENS: tzinfo = _athens()

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAYS = {
    name: number
    for number, names in enumerate(
        (
            ("monday", "mon"),
            ("tuesday", "tue", "tues"),
            ("wednesday", "wed"),
            ("thursday", "thu", "thur", "thurs"),
            ("friday", "fri"),
            ("saturday", "sat"),
            ("sunday", "sun"),
        )
    )
    for name in names
}
_UNITS = {
    **dict.fromkeys(("sec", "secs", "second", "seconds"), ("seconds", 1)),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), ("minutes", 1)),
    **dict.fromkeys(("hour", "hours"), ("hours", 1)),
    **dict.fromkeys(("day", "days"), ("days", 1)),
    **dict.fromkeys(("week", "weeks"), ("days", 7)),
    **dict.fromkeys(("fortnight", "fortnights"), ("days", 14)),
    **dict.fromkeys(("month", "months"), ("months", 1)),
    **dict.fromkeys(("year", "years"), ("months", 12)),
}


def _alternation(words: Iterable[str]) -> str:
    """A regex alternation trying longer words first ("thursday" before "thu")."""
    return "|".join(sorted(map(re.escape, words), key=len, reverse=True))


_MONTH = rf"(?P<month>{_alternation(_MONTHS)})\.?"
_DAY_NAME = rf"(?P<weekday>{_alternation(_WEEKDAYS)})"
_UNIT = rf"(?P<unit>{_alternation(_UNITS)})"
_END = r"(?=[^a-z0-9]|t\d|$)"  # never inside a word or a number; "2017-05-11T14:40" splits


@dataclass
class _Parsed:
    """What the tokens said, applied in PHP's order by :meth:`resolve`."""

    date: tuple[int | None, int, int] | None = None  # year None: this year
    time: tuple[int, int, int] | None = None
    epoch: int | None = None
    midnight: bool = False  # a date, weekday or day word without a time
    weekday: tuple[int, str] | None = None  # (0 = Monday, "this" | "next" | "last")
    months: int = 0
    offset: dict[str, int] = field(default_factory=dict)  # timedelta keywords

    def set_date(self, year: int | None, month: int, day: int) -> None:
        if self.date is not None or self.epoch is not None:
            raise ValueError("two dates")
        if not (1 <= month <= 12 and 1 <= day <= 31):
            raise ValueError(f"no such date: month {month}, day {day}")
        self.date, self.midnight = (year, month, day), True

    def set_time(self, hour: int, minute: int, second: int) -> None:
        if self.time is not None or self.epoch is not None:
            raise ValueError("two times")
        if not (0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 59):
            raise ValueError(f"no such time: {hour:02d}:{minute:02d}:{second:02d}")
        self.time = (hour, minute, second)

    def add(self, amount: int, unit: str) -> None:
        name, factor = _UNITS[unit]
        if name == "months":
            self.months += amount * factor
        else:
            self.offset[name] = self.offset.get(name, 0) + amount * factor

    def resolve(self, now: datetime) -> datetime:
        if self.epoch is not None:
            if self.date or self.time or self.weekday or self.midnight:
                raise ValueError("a Unix time cannot be combined with a date or a time")
            moment = datetime.fromtimestamp(self.epoch, UTC)
            base = moment.astimezone(now.tzinfo) if now.tzinfo else moment.replace(tzinfo=None)
        else:
            base = now
            if self.date is not None:
                year, month, day = self.date
                base = _overflow(base, now.year if year is None else year, month, day)
            if self.time is not None:
                base = base.replace(hour=self.time[0], minute=self.time[1], second=self.time[2])
            elif self.midnight:
                base = base.replace(hour=0, minute=0, second=0)
            base = base.replace(microsecond=0)
        if self.weekday is not None:
            base += timedelta(days=_weekday_shift(base.weekday(), *self.weekday))
        if self.months:
            months = base.year * 12 + base.month - 1 + self.months
            base = _overflow(base, months // 12, months % 12 + 1, base.day)
        return base + timedelta(**self.offset)


def _overflow(moment: datetime, year: int, month: int, day: int) -> datetime:
    """``moment`` on ``year-month-day``, a day past the month's end rolling over (PHP)."""
    if not 1 <= year <= 9999:
        raise ValueError(f"year {year} out of range")
    first = date(year, month, 1) + timedelta(days=day - 1)
    return moment.replace(year=first.year, month=first.month, day=first.day)


def _weekday_shift(today: int, target: int, which: str) -> int:
    ahead = (target - today) % 7
    if which == "next":
        return ahead or 7
    if which == "last":
        return -((today - target) % 7 or 7)
    return ahead


def _hour12(hour: int, meridiem: str | None) -> int:
    if meridiem is None:
        return hour
    if not 1 <= hour <= 12:
        raise ValueError(f"no such hour: {hour}{meridiem}")
    return hour % 12 + (12 if meridiem.startswith("p") else 0)


def _numeric_date(p: _Parsed, m: re.Match[str]) -> None:
    p.set_date(int(m["y"]), int(m["m"]), int(m["d"]))


def _named_month_date(p: _Parsed, m: re.Match[str]) -> None:
    p.set_date(int(m["y"]) if m["y"] else None, _MONTHS[m["month"]], int(m["d"]))


def _time(p: _Parsed, m: re.Match[str]) -> None:
    g = m.groupdict()  # "2pm" has no minute or second group
    meridiem = g["ampm"].replace(".", "") if g["ampm"] else None
    p.set_time(_hour12(int(g["h"]), meridiem), int(g.get("i") or 0), int(g.get("s") or 0))


def _epoch(p: _Parsed, m: re.Match[str]) -> None:
    if p.epoch is not None:
        raise ValueError("two Unix times")
    p.epoch = int(m["ts"])


def _word(p: _Parsed, m: re.Match[str]) -> None:
    word = m["word"]
    if word == "noon":
        p.set_time(12, 0, 0)
    elif word != "now":
        p.midnight = True
        p.offset["days"] = p.offset.get("days", 0) + {"tomorrow": 1, "yesterday": -1}.get(word, 0)


def _relative(p: _Parsed, m: re.Match[str]) -> None:
    p.add(int(m["sign"] + m["n"]) if m["sign"] else int(m["n"]), m["unit"])


def _ago(p: _Parsed, m: re.Match[str]) -> None:
    p.months = -p.months
    p.offset = {name: -value for name, value in p.offset.items()}


def _text_relative(p: _Parsed, m: re.Match[str]) -> None:
    which = {"previous": "last"}.get(m["which"], m["which"])
    if m["weekday"]:
        _set_weekday(p, _WEEKDAYS[m["weekday"]], which)
    else:
        p.add({"next": 1, "last": -1, "this": 0}[which], m["unit"])


def _bare_weekday(p: _Parsed, m: re.Match[str]) -> None:
    _set_weekday(p, _WEEKDAYS[m["weekday"]], "this")


def _set_weekday(p: _Parsed, weekday: int, which: str) -> None:
    if p.weekday is not None:
        raise ValueError("two weekdays")
    p.weekday, p.midnight = (weekday, which), True


_MERIDIEM = r"(?P<ampm>[ap]\.?m\.?)"
_DAY = r"(?P<d>\d{1,2})(?:st|nd|rd|th)?"
_TOKENS: tuple[tuple[re.Pattern[str], Callable[[_Parsed, re.Match[str]], None]], ...] = tuple(
    (re.compile(pattern + _END), handler)
    for pattern, handler in (
        (r"@(?P<ts>-?\d+)", _epoch),
        (r"(?P<y>\d{4})[-/](?P<m>\d{1,2})[-/](?P<d>\d{1,2})", _numeric_date),
        (r"(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})", _numeric_date),  # American, as PHP
        (r"(?P<d>\d{1,2})[.-](?P<m>\d{1,2})[.-](?P<y>\d{4})", _numeric_date),
        (rf"{_DAY}[\s-]*{_MONTH}(?:[\s,-]+(?P<y>\d{{4}}))?", _named_month_date),
        (rf"{_MONTH}\s+{_DAY}(?:,?\s+(?P<y>\d{{4}}))?", _named_month_date),
        (
            rf"t?(?P<h>\d{{1,2}}):(?P<i>\d{{2}})(?::(?P<s>\d{{2}}))?(?:\.\d+)?(?:\s*{_MERIDIEM})?",
            _time,
        ),
        (rf"(?P<h>\d{{1,2}})\s*{_MERIDIEM}", _time),
        (r"(?P<word>now|today|midnight|noon|tomorrow|yesterday)", _word),
        (rf"(?P<sign>[+-]?)\s*(?P<n>\d+)\s*{_UNIT}", _relative),
        (r"ago", _ago),
        (rf"(?P<which>next|last|previous|this)\s+(?:{_DAY_NAME}|{_UNIT})", _text_relative),
        (_DAY_NAME, _bare_weekday),
    )
)
_SEPARATORS = re.compile(r"[\s,]+")


def parse_schedule(text: str, now: datetime) -> datetime:
    """The moment ``text`` names, relative to ``now`` and in ``now``'s time zone.

    Naive ``now`` gives naive results (``@<unix time>`` is then read as UTC). Raises
    ValueError for anything it cannot read whole: PHP's ``strtotime`` returning false.
    """
    source = text.strip().lower()
    if not source:
        raise ValueError("empty schedule")
    parsed, position = _Parsed(), 0
    while position < len(source):
        gap = _SEPARATORS.match(source, position)
        if gap is not None:
            position = gap.end()
            continue
        for pattern, handler in _TOKENS:
            match = pattern.match(source, position)
            if match is not None:
                handler(parsed, match)
                position = match.end()
                break
        else:
            raise ValueError(f"cannot read schedule {text!r} at {text.strip()[position:]!r}")
    try:
        return parsed.resolve(now)
    except OverflowError as error:
        raise ValueError(f"schedule {text!r} is out of range") from error
