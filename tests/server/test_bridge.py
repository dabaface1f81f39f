"""What send and query do, whatever carried them: the checks in the documented order,
each refusal a fault with its stable code, a send acknowledged only once stored."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import text

from smsxml.server.bridge import Bridge, SendRequest, SmsFault, msisdn
from smsxml.server.store import Store

#: the test's clock: a winter morning in Athens (UTC+2)
NOW = datetime(2030, 1, 15, 8, 0, tzinfo=UTC)
DAY = f"{NOW:%Y-%m-%d}"  # written from NOW: no file holds a date a run could overtake
SEND = SendRequest(
    username="acme",
    password="pw",
    sender="Acme",
    recipients=["306912345678"],
    message="Hello",
    coding="GSM",
    flash=False,
)


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Bridge]:
    """The service over a fresh SQLite store with an account (acme / pw, 10 credits); the
    clock stands at NOW for the whole test."""
    with time_machine.travel(NOW, tick=False):
        store = Store(f"sqlite:///{tmp_path / 'bridge.sqlite3'}")
        store.accounts.add("acme", "pw", 10)
        try:
            yield Bridge(store)
        finally:
            store.close()


def _fault(call: object) -> str:
    """The code of the SmsFault ``call`` raises."""
    assert callable(call)
    with pytest.raises(SmsFault) as refused:
        call()
    return refused.value.code


@pytest.mark.parametrize(
    ("written", "digits"),
    [
        ("+30 691 234 5678", "306912345678"),
        ("0030-691-2345678", "306912345678"),
        (" 306912345678 ", "306912345678"),
        ("-306912345678", "-306912345678"),  # as written: refused as invalid later
        ("30691234567８", "30691234567８"),  # a fullwidth digit: not ASCII, as written
        (None, ""),
    ],
)
def test_a_recipient_is_read_as_its_msisdn_digits(written: str | None, digits: str) -> None:
    """ "+" or "00" before the country code, spaces and hyphens go; anything that is not a
    written number comes back as it was, for the validity check to refuse."""
    assert msisdn(written) == digits


def test_a_send_is_charged_once_per_recipient_however_it_is_written(bridge: Bridge) -> None:
    """The same number written three ways is one recipient, charged once, Queued."""
    numbers = ["+30 691 234 5678", "306912345678", "0030-691-2345678"]
    message_id = bridge.send(replace(SEND, recipients=numbers))
    assert bridge.query("acme", "pw", message_id, "+306912345678") == "Queued"
    assert bridge.store.accounts.get("acme").credits == 9  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"password": "wrong"}, "AuthenticationError"),
        ({"recipients": ["", ""]}, "NoRecipients"),
        ({"sender": "Acme & Co"}, "InvalidSender"),
        ({"sender": "AcmeCorporation"}, "InvalidSender"),  # 15 letters: at most 11
        ({"recipients": ["306912345678", "12"]}, "InvalidRecipient"),
        ({"message": ""}, "InvalidRequest"),
        ({"message": "Ωμέγα ≠ omega"}, "InvalidCoding"),  # not GSM-7
        ({"coding": "ASCII"}, "InvalidCoding"),
        ({"schedule": "someday"}, "InvalidSchedule"),
        ({"schedule": f"{DAY} 09:00"}, "InvalidSchedule"),  # 07:00 UTC: the past
        ({"dlr_url": "ftp://client.example.org/dlr"}, "InvalidRequest"),
        ({"recipients": [f"3069123456{i:02d}" for i in range(11)]}, "InsufficientCredits"),
    ],
    ids=[
        "wrong-password",
        "no-recipients",
        "sender-symbol",
        "sender-too-long",
        "invalid-recipient",
        "no-text",
        "not-gsm",
        "unknown-coding",
        "unreadable-schedule",
        "past-schedule",
        "dlr-url-not-http",
        "too-few-credits",
    ],
)
def test_a_refused_send_stores_and_charges_nothing(
    bridge: Bridge, change: dict[str, object], code: str
) -> None:
    """Each bad send is refused with its own code, and leaves the account as it was."""
    assert _fault(lambda: bridge.send(replace(SEND, **change))) == code  # type: ignore[arg-type]
    assert bridge.store.accounts.get("acme").credits == 10  # type: ignore[union-attr]
    assert bridge.store.counts() == {}


def test_a_schedule_is_read_as_athens_time_and_stored_in_utc(bridge: Bridge) -> None:
    """Noon on NOW's day in Athens (UTC+2 in winter) is due at 10:00 UTC."""
    message_id = bridge.send(replace(SEND, schedule=f"{DAY} 12:00"))
    with bridge.store.engine.connect() as db:
        send_at = db.execute(
            text("SELECT send_at FROM messages WHERE id = :id"), {"id": message_id}
        ).scalar_one()
    assert str(send_at).startswith(f"{DAY} 10:00:00")


def test_query_answers_only_the_account_that_sent(bridge: Bridge) -> None:
    """Another account asking for the message, or a number it was not sent to, gets
    NoSuchMessage; missing arguments get their own codes."""
    message_id = bridge.send(SEND)
    bridge.store.accounts.add("rival", "pw2", 0)
    assert _fault(lambda: bridge.query("rival", "pw2", message_id, "306912345678")) == (
        "NoSuchMessage"
    )
    assert _fault(lambda: bridge.query("acme", "pw", message_id, "306912345679")) == (
        "NoSuchMessage"
    )
    assert _fault(lambda: bridge.query("acme", "pw", " ", "306912345678")) == "NoMessageId"
    assert _fault(lambda: bridge.query("acme", "pw", message_id, None)) == "NoMobile"
