"""The bridge's tables: the constraints that keep the queue and the replay cache honest,
whatever the code that writes them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smsxml.server.models import Account, Base, Delivery, Message, UsedNonce

MOMENT = datetime(2030, 1, 1)


@pytest.fixture
def db() -> Iterator[Session]:
    """The models' tables in an in-memory SQLite database, with one account and message."""
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Account(id=1, name="acme", password_hash="x", credits=0, created_at=MOMENT))
        session.add(
            Message(
                id="M1",
                account_id=1,
                sender="Acme",
                text="hi",
                coding="GSM",
                parts=1,
                recipients=1,
                created_at=MOMENT,
            )
        )
        session.commit()
        yield session
    engine.dispose()


def _row(recipient: str) -> Delivery:
    return Delivery(
        message_id="M1",
        recipient=recipient,
        state="Queued",
        next_attempt_at=MOMENT,
        updated_at=MOMENT,
    )


def test_a_message_has_one_row_per_recipient(db: Session) -> None:
    """A second row for the same (message, recipient) is refused: a recipient cannot be
    queued, and so sent, twice for one send."""
    db.add_all([_row("306912345678"), _row("306912345679")])
    db.commit()
    db.add(_row("306912345678"))
    with pytest.raises(IntegrityError):
        db.commit()


def test_a_nonce_can_be_recorded_once(db: Session) -> None:
    """The replay cache's key is the nonce's digest: a second sighting cannot be stored
    beside the first, whichever process sees it."""
    db.add(UsedNonce(digest="ab" * 32, expires_at=MOMENT))
    db.commit()
    db.add(UsedNonce(digest="ab" * 32, expires_at=MOMENT))
    with pytest.raises(IntegrityError):
        db.commit()
