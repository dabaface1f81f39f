"""The bridge's accounts: their credits and ledger, and password checks fast enough for
every SOAP call (argon2 once, then a remembered verification), bounded in memory and
slowed, then refused, after failures (smsxml.server.logins); and the WS-Security secrets
of the accounts that opted in to PasswordDigest tokens (smsxml.server.wssecurity)."""

from __future__ import annotations

import hmac
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select, update

from smsxml.errors import InsufficientCredit
from smsxml.server.clock import utcnow
from smsxml.server.logins import LoginGuard
from smsxml.server.models import Account, LedgerEntry
from smsxml.server.settings import LoginSettings

if TYPE_CHECKING:
    from smsxml.server.metrics import Metrics
    from smsxml.server.store import Store
    from smsxml.server.wssecurity import SecretBox

__all__ = ["PASSWORDS", "VERIFIED", "AccountInfo", "Accounts"]

#: argon2id with OWASP's first recommended setting (Password Storage Cheat Sheet:
#: "m=19456 (19 MiB), t=2, p=1"), not argon2-cffi's default (64 MiB, t=3, p=4): a check
#: costs tens of ms of one core (~55 ms measured here) and 19 MiB, so a process checking
#: LoginSettings.verifications passwords at once needs a known, small budget. Hashes made
#: with other parameters (the 64 MiB ones of earlier versions) still verify, and are
#: rehashed with these on the next successful login.
ARGON2_TIME_COST = 2
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_PARALLELISM = 1
#: the hasher with these parameters: what a stored hash is compared with for rehashing
PASSWORDS = PasswordHasher(
    time_cost=ARGON2_TIME_COST,
    memory_cost=ARGON2_MEMORY_KIB,
    parallelism=ARGON2_PARALLELISM,
    type=Type.ID,
)

#: how often a remembered password verification looks at the stored hash again (a
#: password changed by another process is then refused within this time)
AUTH_RECHECK_SECONDS = 30.0


def _argon2_threads(count: int) -> ThreadPoolExecutor:
    """The threads that run argon2 in this process, ``LoginSettings.verifications`` of
    them. A semaphore would bound the checks at once, not the memory: glibc gives each
    thread its own malloc arena, and an arena keeps its 19 MiB once freed. Measured with
    16 concurrent wrong passwords, 2 at a time: 317 MB resident afterwards when the
    request threads ran argon2 themselves, 52 MB on two argon2 threads (argon2-cffi's
    default parameters, unbounded: a 1,038 MB peak)."""
    return ThreadPoolExecutor(count, thread_name_prefix="argon2")


@dataclass(frozen=True)
class AccountInfo:
    """What the service needs to know of an authenticated account."""

    id: int
    name: str
    credits: int


#: the account the request's WS-Security header proved (the SOAP endpoint sets it, for
#: both lanes): body credentials left empty then mean this account
VERIFIED: ContextVar[AccountInfo | None] = ContextVar("smsxml_verified", default=None)


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
        self._hasher = PASSWORDS
        self._dummy_hash: str | None = None
        self.guard = LoginGuard(store)
        self._argon2 = _argon2_threads(self.guard.settings.verifications)
        self._auth_cache: dict[str, _Verified] = {}
        self._verify_locks: dict[str, threading.Lock] = {}
        self._cache_key = os.urandom(32)
        self._lock = threading.Lock()
        self._wss_keys: list[str] = []
        self._box: SecretBox | None = None

    def configure(self, settings: LoginSettings, metrics: Metrics | None = None) -> None:
        """Apply the bridge's login settings and count failures in its metrics (the
        defaults apply until then)."""
        self.guard = LoginGuard(self.store, settings, metrics)
        self._argon2.shutdown(wait=False)
        self._argon2 = _argon2_threads(settings.verifications)
        if settings.wssecurity.keys != self._wss_keys:
            self._wss_keys = list(settings.wssecurity.keys)
            self._box = None

    def add(
        self, name: str, password: str, credits: int = 0, *, wss_secret: str | None = None
    ) -> AccountInfo:
        """A new account; ``wss_secret``: opted in to WS-Security PasswordDigest tokens."""
        now = utcnow()
        sealed = self._secrets().seal(wss_secret) if wss_secret else None
        with self.store.transaction() as db:
            inserted = db.execute(
                insert(Account).values(
                    name=name,
                    password_hash=self._hasher.hash(password),
                    credits=credits,
                    created_at=now,
                    wss_secret=sealed,
                )
            ).inserted_primary_key
            assert inserted is not None  # an INSERT of one row
            account_id = inserted[0]
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
            raise InsufficientCredit(name)
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

    def set_wss_secret(self, name: str, secret: str | None) -> None:
        """Opt ``name`` in to PasswordDigest tokens checked with ``secret`` (None: out)."""
        sealed = self._secrets().seal(secret) if secret else None
        with self.store.transaction() as db:
            done = db.execute(
                update(Account).where(Account.name == name).values(wss_secret=sealed)
            ).rowcount
        if not done:
            raise KeyError(name)

    def authenticate_digest(self, name: str, matches: Callable[[str], bool]) -> AccountInfo | None:
        """The account if ``matches`` its WS-Security secret (a PasswordDigest computed
        with it equals the token's); None if not, if the account did not opt in or does
        not exist; the refusal fault if it or the client failed too often lately. Failures
        count with those of passwords: guessing cannot move from one to the other."""
        client = self.guard.client()
        had_failures = self.guard.check(name, client)
        with self.store.reader.connect() as db:
            row = db.execute(
                select(Account.id, Account.name, Account.credits, Account.wss_secret).where(
                    Account.name == name
                )
            ).first()
        secret = self._secrets().open(row.wss_secret) if row and row.wss_secret else None
        if row is None or secret is None or not matches(secret):
            self.guard.failed(name, client)
            return None
        if had_failures:
            self.guard.succeeded(name, client)
        return AccountInfo(row.id, row.name, row.credits)

    def _secrets(self) -> SecretBox:
        """What seals and opens WS-Security secrets (the configured keys, or the one
        kept in the database)."""
        if self._box is None:
            from smsxml.server.wssecurity import SecretBox  # it imports the bridge, and so us

            self._box = SecretBox.for_store(self.store, self._wss_keys)
        return self._box

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
            return [(row[0], row[1], row[2], row[3]) for row in rows]

    def authenticate(self, name: str, password: str) -> AccountInfo | None:
        """The account if ``password`` is right; None if not; the refusal fault (an
        SmsFault) if this account or client failed too often lately.

        argon2 is slow on purpose (tens of ms): too slow for every SOAP call. A success is
        remembered under a keyed digest of the password (never the password itself) with
        the hash it was checked against; every :data:`AUTH_RECHECK_SECONDS` the stored
        hash is read again (a cheap lookup), and only a changed hash (``accounts passwd``,
        maybe in another process) costs argon2 again. Concurrent calls for one account
        wait for one verification instead of running several.

        A remembered success skips the failure counters: a client holding the right
        password is not locked out by someone else guessing at its account. Every other
        attempt is first checked against them; an unknown name costs the same argon2
        verification as a wrong password (against a dummy hash), so timing does not tell
        which names exist.

        With :data:`VERIFIED` set (a WS-Security header proved an account), empty
        credentials mean that account; another name is refused, and its own name with a
        password is checked as usual."""
        verified = VERIFIED.get()
        if verified is not None and not password and name in ("", verified.name):
            return verified
        if verified is not None and name != verified.name:
            return None  # the header and the body name different accounts
        digest = hmac.new(self._cache_key, password.encode(), "sha256").digest()
        cached = self._auth_cache.get(name)
        if (
            cached
            and cached.recheck_at > time.monotonic()
            and hmac.compare_digest(cached.digest, digest)
        ):
            return cached.account
        client = self.guard.client()
        had_failures = self.guard.check(name, client)
        row = self._credentials(name)
        if row is None:
            self._verify(self._dummy(), password)
            self.guard.failed(name, client)
            return None
        with self._verifying(name):
            cached = self._auth_cache.get(name)
            password_hash = row.password_hash
            still_valid = (
                cached is not None
                and cached.password_hash == password_hash
                and hmac.compare_digest(cached.digest, digest)
            )
            if not still_valid:
                if not self._verify(password_hash, password):
                    self.guard.failed(name, client)
                    return None
                if PASSWORDS.check_needs_rehash(password_hash):
                    password_hash = self._rehash(row.id, password_hash, password)
            account = AccountInfo(row.id, row.name, row.credits)
            self._auth_cache[name] = _Verified(
                digest, password_hash, account, time.monotonic() + AUTH_RECHECK_SECONDS
            )
        if had_failures:
            self.guard.succeeded(name, client)
        return account

    def _verify(self, password_hash: str, password: str) -> bool:
        """argon2 on the process's few argon2 threads (see :func:`_argon2_threads`)."""
        return self._argon2.submit(self._check, password_hash, password).result()

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        """A hash of a random password with the current parameters, made once: what an
        unknown name is verified against."""
        if self._dummy_hash is None:
            random_password = os.urandom(16).hex()
            self._dummy_hash = self._argon2.submit(self._hasher.hash, random_password).result()
        return self._dummy_hash

    def _rehash(self, account_id: int, old: str, password: str) -> str:
        """Store the password hashed with the current parameters, unless it was changed
        meanwhile (``accounts passwd`` wins)."""
        new = self._argon2.submit(self._hasher.hash, password).result()
        with self.store.transaction() as db:
            done = db.execute(
                update(Account)
                .where(Account.id == account_id, Account.password_hash == old)
                .values(password_hash=new)
            ).rowcount
        return new if done else old

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
