"""The store's one time convention: naive UTC from the wall clock."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import time_machine

from smsxml.server.clock import utcnow


def test_now_is_the_wall_clock_in_naive_utc_whatever_the_local_zone() -> None:
    """Half past midnight in Athens on New Year's Day is 22:30 UTC the evening before,
    without a time zone attached (SQLite keeps none)."""
    athens = datetime(2032, 1, 1, 0, 30, tzinfo=ZoneInfo("Europe/Athens"))
    with time_machine.travel(athens, tick=False):  # the local zone becomes Athens too
        now = utcnow()
    assert now == datetime(2031, 12, 31, 22, 30)
    assert now.tzinfo is None


def test_now_follows_the_clock_as_it_moves() -> None:
    """Times in the store move with the wall clock (the tests move it; so may NTP)."""
    with time_machine.travel(datetime(2030, 1, 1, tzinfo=UTC), tick=False) as clock:
        before = utcnow()
        clock.shift(90)
        assert (utcnow() - before).total_seconds() == 90
