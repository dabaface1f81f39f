"""The bridge's accounts: their credits and ledger, and password checks fast enough for
every SOAP call (argon2 once, then a remembered verification)."""

from __future__ import annotations

import hmac
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select, update

from smsxml.server.clock import utcnow
from smsxml.server.models import Account, LedgerEntry

if TYPE_CHECKING:
    from smsxml.server.store import Store

__all__ = ["AccountInfo", "Accounts", "InsufficientCredits"]

#: how often a remembered password verification looks at the stored hash again (a
#: password changed by another process is then refused within this time)
AUTH_RECHECK_SECONDS = 30.0


class InsufficientCredits(Exception):
    """The account cannot pay for this send; nothing was stored."""


@dataclass(frozen=True)
class AccountInfo:
    """What the service needs to know of an authenticated account."""

    id: int
    name: str
    credits: int


@dataclass(frozen=True)
class _Verified:
    """A password verification remembered by :meth:`Accounts.authenticate`."""

    digest: bytes  # keyed HMAC of the password
    password_hash: str  # the stored hash it was verified against
    account: AccountInfo
    recheck_at: float  # time.monotonic() after which the stored hash is read again


class Accounts:
    """Accounts, credits and passwords on the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._hasher = PasswordHasher()
        self._auth_cache: dict[str, _Verified] = {}
        self._verify_locks: dict[str, threading.Lock] = {}
        self._cache_key = os.urandom(32)
        self._lock = threading.Lock()

    def add(self, name: str, password: str, credits: int = 0) -> AccountInfo:
        now = utcnow()
        with self.store.transaction() as db:
            account_id = db.execute(
                insert(Account).values(
                    name=name,
                    password_hash=self._hasher.hash(password),
                    credits=credits,
                    created_at=now,
                )
            ).inserted_primary_key[0]
            if credits:
                db.execute(
                    insert(LedgerEntry).values(
                        account_id=account_id,
                        delta=credits,
                        balance=credits,
                        reason="credit",
                        created_at=now,
                    )
                )
        return AccountInfo(account_id, name, credits)

    def get(self, name: str) -> AccountInfo | None:
        with self.store.reader.connect() as db:
            row = db.execute(
                select(Account.id, Account.name, Account.credits).where(Account.name == name)
            ).first()
        return AccountInfo(*row) if row else None

    def all(self) -> list[AccountInfo]:
        with self.store.reader.connect() as db:
            rows = db.execute(
                select(Account.id, Account.name, Account.credits).order_by(Account.name)
            )
            return [AccountInfo(*row) for row in rows]

    def credit(self, name: str, amount: int, reason: str = "credit") -> AccountInfo:
        """Add (or, negative, take) credits, with a ledger entry."""
        with self.store.transaction() as db:
            row = db.execute(
                update(Account)
                .where(Account.name == name, Account.credits + amount >= 0)
                .values(credits=Account.credits + amount)
                .returning(Account.id, Account.credits)
            ).first()
            if row is not None:
                db.execute(
                    insert(LedgerEntry).values(
                        account_id=row.id,
                        delta=amount,
                        balance=row.credits,
                        reason=reason,
                        created_at=utcnow(),
                    )
                )
        if row is None:
            if self.get(name) is None:
                raise KeyError(name)
            raise InsufficientCredits(name)
        return AccountInfo(row.id, name, row.credits)

    def set_password(self, name: str, password: str) -> None:
        with self.store.transaction() as db:
            done = db.execute(
                update(Account)
                .where(Account.name == name)
                .values(password_hash=self._hasher.hash(password))
            ).rowcount
        if not done:
            raise KeyError(name)
        with self._lock:
            self._auth_cache.pop(name, None)

    def ledger(self, name: str) -> list[tuple[int, int, str, str | None]]:
        with self.store.reader.connect() as db:
            rows = db.execute(
                select(
                    LedgerEntry.delta,
                    LedgerEntry.balance,
                    LedgerEntry.reason,
                    LedgerEntry.message_id,
                )
                .join(Account, Account.id == LedgerEntry.account_id)
                .where(Account.name == name)
                .order_by(LedgerEntry.id)
            )
            return [tuple(row) for row in rows]

    def authenticate(self, name: str, password: str) -> AccountInfo | None:
        """The account if ``password`` is right.

        argon2 is slow on purpose (tens of ms): too slow for every SOAP call. A success is
        remembered under a keyed digest of the password (never the password itself) with
        the hash it was checked against; every :data:`AUTH_RECHECK_SECONDS` the stored
        hash is read again (a cheap lookup), and only a changed hash (``accounts passwd``,
        maybe in another process) costs argon2 again. Concurrent calls for one account
        wait for one verification instead of running several."""
        digest = hmac.new(self._cache_key, password.encode(), "sha256").digest()
        cached = self._auth_cache.get(name)
        if (
            cached
            and cached.recheck_at > time.monotonic()
            and hmac.compare_digest(cached.digest, digest)
        ):
            return cached.account
        row = self._credentials(name)
        if row is None:
            self._hasher.hash(password)  # same cost whether or not the name exists
            return None
        with self._verifying(name):
            cached = self._auth_cache.get(name)
            still_valid = (
                cached is not None
                and cached.password_hash == row.password_hash
                and hmac.compare_digest(cached.digest, digest)
            )
            if not still_valid:
                try:
                    self._hasher.verify(row.password_hash, password)
                except (VerificationError, InvalidHashError):
                    return None
            account = AccountInfo(row.id, row.name, row.credits)
            self._auth_cache[name] = _Verified(
                digest, row.password_hash, account, time.monotonic() + AUTH_RECHECK_SECONDS
            )
        return account

    def _credentials(self, name: str) -> Any:
        with self.store.reader.connect() as db:
            return db.execute(
                select(Account.id, Account.name, Account.credits, Account.password_hash).where(
                    Account.name == name
                )
            ).first()

    def _verifying(self, name: str) -> threading.Lock:
        """The lock that makes one thread at a time verify ``name``'s password (names that
        exist only: the table bounds the locks)."""
        with self._lock:
            return self._verify_locks.setdefault(name, threading.Lock())
