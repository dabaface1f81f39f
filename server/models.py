"""The bridge's tables. The store is also the queue: one ``deliveries`` row per
(message, recipient) carries its state, and dispatcher workers claim rows with a lease.

Written for SQLite (the default: one file, WAL) and PostgreSQL alike: portable types
only, and every query the dispatcher runs has an index behind it. Times are naive UTC
(SQLite keeps no time zone; one convention everywhere avoids mixing).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql  # Message has a column named text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Account",
    "Base",
    "Delivery",
    "DeliveryEvent",
    "Dispatcher",
    "LedgerEntry",
    "Message",
    "Secret",
    "UsedNonce",
]


class Base(DeclarativeBase):
    """Declarative base of the bridge's tables."""


class Account(Base):
    """A SOAP client's account: name, argon2 password hash, credits in SMS parts."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    credits: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime())
    #: the WS-Security secret PasswordDigest tokens are checked with, Fernet-encrypted
    #: (smsxml.server.wssecurity): a digest needs the plain secret. None: not opted in
    wss_secret: Mapped[str | None] = mapped_column(Text)


class LedgerEntry(Base):
    """Every change of an account's credits, with the balance after it: the audit trail
    that explains any balance."""

    __tablename__ = "ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    delta: Mapped[int] = mapped_column(BigInteger)
    balance: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))  # "credit", "send", "refund"
    message_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime())


class Message(Base):
    """One accepted ``send``: the text and options shared by its recipients."""

    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    sender: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    coding: Mapped[str] = mapped_column(String(8))  # GSM or UTF-8, as the client asked
    flash: Mapped[bool] = mapped_column(Boolean, default=False)
    parts: Mapped[int] = mapped_column(Integer)  # SMS parts per recipient
    recipients: Mapped[int] = mapped_column(Integer)
    send_at: Mapped[datetime | None] = mapped_column(DateTime())
    dlr_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime())
    #: the recipients, one per line, until the dispatcher turns them into deliveries
    #: rows: a send of 10,000 recipients is stored in one row, durably, at once
    pending: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "ix_messages_pending",
            "created_at",
            sqlite_where=sql("pending IS NOT NULL"),
            postgresql_where=sql("pending IS NOT NULL"),
        ),
    )


class Delivery(Base):
    """One message to one recipient: Queued → Pending → Delivered | Failed.

    ``lease_until`` is the claim of a dispatcher worker: a row is sent only by the worker
    holding an unexpired lease, so no live worker sends it twice, and a row whose worker
    died is claimed again once the lease runs out.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("message_id", "recipient"),
        Index("ix_deliveries_due", "state", "next_attempt_at"),
        # rows a client still waits to hear about (rows without dlr_url are born notified)
        Index(
            "ix_deliveries_unnotified",
            "state",
            sqlite_where=sql("notified = 0"),
            postgresql_where=sql("notified = false"),
        ),
        # the pollers' question: a provider's Pending rows due to be asked about, in order
        # (``next_attempt_at`` is a Pending row's next poll); only Pending rows are in it
        Index(
            "ix_deliveries_polling",
            "provider",
            "next_attempt_at",
            sqlite_where=sql("state = 'Pending'"),
            postgresql_where=sql("state = 'Pending'"),
        ),
        # providers' reports: one recipient of a provider id (an id may stand for a whole
        # multi-recipient send); partial: rows get a provider id only once sent, so
        # inserting the thousands of rows of a send does not touch this index
        Index(
            "ix_deliveries_provider_id",
            "provider",
            "provider_id",
            "recipient",
            sqlite_where=sql("provider_id IS NOT NULL"),
            postgresql_where=sql("provider_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"))
    recipient: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(10))
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Queued: when it may be sent; Pending: when its provider is next asked about it
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime())
    lease_until: Mapped[datetime | None] = mapped_column(DateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    tried: Mapped[str] = mapped_column(String(255), default="")  # providers failed this round
    reason: Mapped[str | None] = mapped_column(Text)  # why it failed, for Failed rows
    updated_at: Mapped[datetime] = mapped_column(DateTime())
    #: the client's dlr_url was told of the final state, or there is none to tell
    notified: Mapped[bool] = mapped_column(Boolean, default=False)


class DeliveryEvent(Base):
    """The history of a delivery: each state it reached, when, and what said so."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    state: Mapped[str] = mapped_column(String(10))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime())


class Secret(Base):
    """Secrets the bridge makes once and keeps (e.g. the key of callback URL tokens), so
    that URLs handed to providers stay valid across restarts and across nodes."""

    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class UsedNonce(Base):
    """A WS-Security nonce seen within the freshness window: a second sighting before
    ``expires_at`` is a replay, whichever process or node sees it."""

    __tablename__ = "wss_nonces"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the nonce
    expires_at: Mapped[datetime] = mapped_column(DateTime(), index=True)


class Dispatcher(Base):
    """A live dispatching process (its lease heartbeat keeps ``seen_at`` fresh): how many
    there are divides each provider's rate limit, so that the limit holds across nodes."""

    __tablename__ = "dispatchers"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime())
