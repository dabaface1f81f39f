"""Nothing the tests run may depend on the day they run: no date near today is written down.

A fixed date that must lie in the future passes one day and breaks the suite (it did in
December 2026, with the example campaign). Such dates are computed at run time; a fixed date
stays only where it is the point (a date long past, an impossible date), and those are far
from today. This check reads ``tests/``, ``examples/``, ``docs/`` and ``bench/`` and fails on
any real calendar date from two months ago to five years ahead, unless ``ALLOWED`` gives
the reason.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from .conftest import ROOT

FOLDERS = ("tests", "examples", "docs", "bench")
#: (path relative to the checkout, date as written) → why it may stay
ALLOWED: dict[tuple[str, str], str] = {}

_MONTH_NAMES = (
    "january february march april may june july august september october november december"
).split()
_MONTH = "|".join(_MONTH_NAMES + [m[:3] for m in _MONTH_NAMES])
#: the forms a date takes in this project's files: ISO (2017-07-17, 2017/07/17), day or
#: month first (21/11/2014, 17.07.2017, 07/17/2017) and written months (11 June 2017,
#: June 11, 2017)
_FORMS = re.compile(
    r"(?<!\d)(?P<y1>\d{4})[-/.](?P<a1>\d{1,2})[-/.](?P<b1>\d{1,2})(?!\d)"
    r"|(?<!\d)(?P<a2>\d{1,2})[-/.](?P<b2>\d{1,2})[-/.](?P<y2>\d{4})(?!\d)"
    rf"|(?<!\d)(?P<d3>\d{{1,2}})(?:st|nd|rd|th)?[\s-]+(?P<m3>{_MONTH})\.?,?[\s-]+(?P<y3>\d{{4}})(?!\d)"
    rf"|\b(?P<m4>{_MONTH})\.?\s+(?P<d4>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y4>\d{{4}})(?!\d)",
    re.IGNORECASE,
)


def _month(name: str) -> int:
    return [m[:3] for m in _MONTH_NAMES].index(name[:3].lower()) + 1


def _readings(match: re.Match[str]) -> list[tuple[int, int, int]]:
    """Every (year, month, day) the text could mean: 05/06/2017 is May or June."""
    g = match.groupdict()
    if g["y1"]:
        return [(int(g["y1"]), int(g["a1"]), int(g["b1"]))]
    if g["y2"]:
        a, b = int(g["a2"]), int(g["b2"])
        return [(int(g["y2"]), b, a), (int(g["y2"]), a, b)]
    if g["y3"]:
        return [(int(g["y3"]), _month(g["m3"]), int(g["d3"]))]
    return [(int(g["y4"]), _month(g["m4"]), int(g["d4"]))]


def near_dates(text: str, today: date) -> Iterator[tuple[int, str]]:
    """(line, date as written) of each real date in ``text`` from 60 days before ``today``
    to five years after it."""
    earliest = today - timedelta(days=60)
    latest = today.replace(year=today.year + 5, day=28 if today.month == 2 else today.day)
    for number, line in enumerate(text.splitlines(), 1):
        for match in _FORMS.finditer(line):
            for year, month, day in _readings(match):
                try:
                    moment = date(year, month, day)
                except ValueError:  # not a real date (2030-02-31): the point of a test
                    continue
                if earliest <= moment <= latest:
                    yield number, match.group(0)
                    break


def _files() -> Iterator[Path]:
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.stat().st_size < 2**21:
                yield path


def test_no_file_holds_a_date_near_today() -> None:
    """tests/, examples/, docs/ and bench/ hold no date that today's run could overtake."""
    today = datetime.now().date()
    found = []
    for path in _files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # binary fixtures
            continue
        relative = path.relative_to(ROOT).as_posix()
        found += [
            f"{relative}:{line}: {written}"
            for line, written in near_dates(text, today)
            if (relative, written) not in ALLOWED
        ]
    assert not found, "compute these dates at run time (or allow them, with the reason):\n" + (
        "\n".join(found)
    )


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        ("<DATE>2016-12-01 09:30:00</DATE>", date(2016, 11, 30), ["2016-12-01"]),
        ("<DATE>2016-12-01 09:30:00</DATE>", date(2022, 1, 1), []),  # long past by then
        ("sent 2016/09/30", date(2016, 11, 30), []),  # 61 days before
        ("sent 2016/10/01", date(2016, 11, 30), ["2016/10/01"]),  # 60 days before
        ("due 2021-11-30, not 2021-12-01", date(2016, 11, 30), ["2021-11-30"]),
        ("scheduledDeliveryDate 21/11/2016", date(2016, 11, 30), ["21/11/2016"]),
        ("on 11 June 2017 at noon", date(2016, 11, 30), ["11 June 2017"]),
        ("on Jun. 11, 2017", date(2016, 11, 30), ["Jun. 11, 2017"]),
        ("a bad date 2017-02-30, a bad hour 2017-13-01", date(2016, 11, 30), []),
        ("version 2016.10 of 12-2016", date(2016, 11, 30), []),
        ("id 12016-11-30-7", date(2016, 11, 30), []),
    ],
)
def test_near_dates_finds_what_a_run_could_overtake(
    text: str, today: date, expected: list[str]
) -> None:
    """The check sees dates in every form this project writes, and only near ``today``
    (a ``today`` long past, so that these samples are not near the real one)."""
    assert [written for _line, written in near_dates(text, today)] == expected


def test_allowed_entries_still_exist() -> None:
    """An allow-list entry whose date is gone is removed with it."""
    for (relative, written), reason in ALLOWED.items():
        assert reason and written in (ROOT / relative).read_text(encoding="utf-8"), relative


def test_the_moved_clock_reaches_every_thread(moved_clock: datetime) -> None:
    """Under ``moved_clock`` the servers' threads read the moved time too."""
    seen: list[tuple[datetime, float]] = []
    thread = threading.Thread(target=lambda: seen.append((datetime.now(UTC), time.time())))
    thread.start()
    thread.join()
    ((now, stamp),) = seen
    assert abs(now - moved_clock) < timedelta(minutes=1)
    assert abs(stamp - moved_clock.timestamp()) < 60
