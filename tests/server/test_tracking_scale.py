"""Delivery tracking at scale: 100,000 Pending rows reach their final states through
polling (net2sms's status drain) and callbacks (iSMS's dlr-url), and no statement the
tracker runs reads the whole deliveries table."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from sqlalchemy import event

from smsxml.sandbox import DeliverySchedule, SandboxConfig
from smsxml.server.app import BridgeServer
from smsxml.soap import SoapClient

from ..conftest import wait_for
from .conftest import bridge_settings

#: the sandbox keeps every message Pending for an hour: the test then moves the clock
HOUR = 3600.0
SENDS, RECIPIENTS = 100, 1_000  # 100,000 rows
POLLED_SENDS = 85  # to net2sms (status drain); the other 15 to iSMS (callbacks)


def _recipients(send: int) -> list[str]:
    country = "3069" if send < POLLED_SENDS else "336"  # routed to net2sms / to iSMS
    return [f"{country}{send:03d}{i:05d}" for i in range(RECIPIENTS)]


def _counts(database: Path) -> Counter[str]:
    """The deliveries by state, read beside the bridge (not through its store, whose
    statements the test inspects)."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        return Counter(dict(db.execute("SELECT state, count(*) FROM deliveries GROUP BY state")))


class _Statements:
    """Every statement the store's engines run from the moment it is made."""

    def __init__(self, *engines: Any) -> None:
        self.seen: dict[str, Any] = {}
        self._lock = threading.Lock()
        for engine in engines:
            event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        with self._lock:
            self.seen.setdefault(statement, parameters)

    def full_scans(self, database: Path) -> list[str]:
        """Statements on deliveries whose SQLite plan reads the whole table (or a whole
        index of it): ``SCAN deliveries`` where an index search says ``SEARCH``."""
        found = []
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            for statement, parameters in self.seen.items():
                if "deliveries" not in statement or statement.lstrip().startswith("INSERT"):
                    continue
                one = parameters[0] if isinstance(parameters, list) else parameters
                plan = " / ".join(
                    row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {statement}", one)
                )
                if re.search(r"\bSCAN deliveries\b", plan):
                    found.append(f"{plan}: {statement}")
        return found


@pytest.mark.slow
def test_a_hundred_thousand_pending_rows_reach_their_final_states(tmp_path: Path) -> None:
    """100,000 Pending rows reach their final states, through polling and callbacks alike."""
    schedule = DeliverySchedule(pending_after=0.0, final_after=HOUR, fail_suffixes=("0",))
    sandbox = SandboxConfig(schedule=schedule, credits=Decimal(1_000_000), seed=1)
    settings = bridge_settings(
        tmp_path,
        demo_credits=SENDS * RECIPIENTS,
        routes={"3069": ["net2sms"], "*": ["isms"]},
    )
    settings.providers["isms"].poll_interval = 10 * HOUR  # iSMS rows: callbacks only
    settings.providers["net2sms"].poll_interval = 0.5
    database = Path(settings.database_url.removeprefix("sqlite:///"))
    with (
        time_machine.travel(datetime.now(UTC), tick=True) as clock,
        BridgeServer(settings, sandbox_config=sandbox) as bridge,
    ):
        with SoapClient(f"{bridge.url}/soap", "demo", "demo") as client:
            for send in range(SENDS):
                client.send("Shop", _recipients(send), f"hello {send}")
        everyone = SENDS * RECIPIENTS
        wait_for(lambda: _counts(database)["Pending"] == everyone, timeout=300, interval=0.5)

        statements = _Statements(bridge.app.store.engine, bridge.app.store.reader)
        clock.shift(HOUR + 60)  # the sandbox's messages are all final now
        started = time.monotonic()
        polled = POLLED_SENDS * RECIPIENTS

        def first_final() -> bool:
            counts = _counts(database)
            return counts.total() - counts["Pending"] >= polled

        wait_for(first_final, timeout=300, interval=0.5)
        polling = time.monotonic() - started
        wait_for(lambda: _counts(database)["Pending"] == 0, timeout=300, interval=0.5)
        print(
            f"\n{everyone:,} Pending rows final in {time.monotonic() - started:.0f} s: "
            f"the first {polled:,} (as many as net2sms's drain reports) within {polling:.1f} s; "
            f"{everyone - polled:,} iSMS rows by callbacks, one POST each"
        )

        failing = sum(1 for s in range(SENDS) for n in _recipients(s) if n.endswith("0"))
        assert _counts(database) == Counter(Delivered=everyone - failing, Failed=failing)
        assert statements.seen, "the tracker ran no statement"
        assert statements.full_scans(database) == []
