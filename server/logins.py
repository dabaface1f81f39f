"""Failed logins slowed, then refused, per account name and per client address.

OWASP's authentication cheat sheet asks for both: per account, so that one account's
password cannot be guessed from many addresses; per address, so that one client cannot
try many accounts (password spraying). A refusal costs no argon2, so a flood of refused
attempts costs the server little.

The failures live in the store's database (``login_failures``), not in a process: every
gunicorn worker, ``smsxml serve`` and every node on the same database count the same
failures. Only attempts that were checked and failed are recorded (a refused attempt is
not), so the table grows at most as fast as argon2 allows, and rows older than the window
are deleted as new ones come.

Refusal keeps the contract: the fault code stays ``AuthenticationError`` (the
``FaultCode`` enumeration of the WSDL), and the faultstring is the documented
"Authentication error." followed by the reason and when to retry, as other faults of the
bridge refine their documented string.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, Index, Integer, String, delete, func, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from smsxml.server.clock import utcnow
from smsxml.server.models import Base
from smsxml.server.settings import LoginSettings

if TYPE_CHECKING:
    from smsxml.server.metrics import Metrics
    from smsxml.server.store import Store

__all__ = ["CLIENT", "LoginFailure", "LoginGuard", "client_of"]

log = logging.getLogger("smsxml.server")

#: the WSGI environ of the request being answered (the SOAP endpoint sets it): whom a
#: failed login is counted against
CLIENT: ContextVar[Mapping[str, Any] | None] = ContextVar("smsxml_client", default=None)
NAME_LENGTH = 64  # accounts.name is at most this long: longer names cannot exist


class LoginFailure(Base):
    """One checked and failed login: the name tried (existing or not) and from where."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(NAME_LENGTH))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime())

    __table_args__ = (
        Index("ix_login_failures_account", "account", "at"),
        Index("ix_login_failures_address", "address", "at"),
    )


def client_of(environ: Mapping[str, Any] | None, trusted_proxies: list[str]) -> str:
    """The client's address: the peer's, or behind a trusted proxy the rightmost address
    of X-Forwarded-For (the one that proxy added; the ones left of it are the client's
    word)."""
    if environ is None:
        return "-"
    peer = str(environ.get("REMOTE_ADDR") or "-")
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    if forwarded and peer in trusted_proxies:
        return str(forwarded).rsplit(",", 1)[-1].strip()[:64] or peer
    return peer[:64]


@dataclass(frozen=True)
class _Record:
    failures: int
    last: datetime | None


class LoginGuard:
    """Counts failed logins and says whether the next attempt may be checked."""

    def __init__(
        self, store: Store, settings: LoginSettings | None = None, metrics: Metrics | None = None
    ) -> None:
        self.store = store
        self.settings = settings or LoginSettings()
        self.metrics = metrics

    def client(self) -> str:
        return client_of(CLIENT.get(), self.settings.trusted_proxies)

    def check(self, name: str, address: str) -> bool:
        """Raise the refusal fault if ``name`` or ``address`` must wait; else whether
        either has failures to forget after a success."""
        now = utcnow()
        account = self._record(LoginFailure.account, name[:NAME_LENGTH], now)
        client = self._record(LoginFailure.address, address, now)
        retry_at = max(
            self._retry_at(account, self.settings.account_lockout),
            self._retry_at(client, self.settings.address_lockout),
        )
        if retry_at > now:
            seconds = math.ceil((retry_at - now).total_seconds())  # retry then: accepted
            log.warning(
                "login refused: account %r from %s, %d failures of the account and %d of "
                "the address in %d s; retry in %d s",
                name[:NAME_LENGTH],
                address,
                account.failures,
                client.failures,
                self.settings.window,
                seconds,
            )
            self._count("refused")
            raise _refusal(seconds)
        return bool(account.failures or client.failures)

    def failed(self, name: str, address: str) -> None:
        """Record a checked, failed attempt (and forget those older than the window)."""
        now = utcnow()
        with self._writing() as db:
            db.execute(
                insert(LoginFailure).values(account=name[:NAME_LENGTH], address=address, at=now)
            )
            db.execute(delete(LoginFailure).where(LoginFailure.at < self._since(now)))
        self._count("failed")

    def succeeded(self, name: str, address: str) -> None:
        """Forget this client's failures on this account: the right password ends its
        typos (other clients' failures on the account stay counted)."""
        with self._writing() as db:
            db.execute(
                delete(LoginFailure).where(
                    LoginFailure.account == name[:NAME_LENGTH], LoginFailure.address == address
                )
            )

    def _writing(self) -> Any:
        """A write transaction outside the store's writers' turn (a file lock that spares
        the send path SQLite's busy-handler sleeps): these writes are few and small, as
        slow as argon2 lets failures come, and SQLite's busy timeout serves them."""
        return self.store.engine.begin()

    def _since(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.settings.window)

    def _record(self, column: Any, key: str, now: datetime) -> _Record:
        with self.store.reader.connect() as db:
            failures, last = db.execute(
                select(func.count(), func.max(LoginFailure.at)).where(
                    column == key, LoginFailure.at >= self._since(now)
                )
            ).one()
        return _Record(failures, last)

    def _retry_at(self, record: _Record, lockout_after: int) -> datetime:
        """When the next attempt may be checked: at once below ``free_failures``; then
        ``delay`` after the last failure, doubling per failure up to ``max_delay``;
        ``lockout`` after it once ``lockout_after`` failures are counted."""
        s = self.settings
        if record.last is None or record.failures < s.free_failures:
            return datetime.min
        if record.failures >= lockout_after:
            wait = s.lockout
        else:
            wait = min(s.delay * 2 ** (record.failures - s.free_failures), s.max_delay)
        return record.last + timedelta(seconds=wait)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.logins.labels(outcome).inc()


def _refusal(seconds: int) -> Exception:
    # imported here: the bridge imports the accounts, which import this module
    from smsxml.server.bridge import FAULTS, SmsFault

    return SmsFault(
        "AuthenticationError",
        f"{FAULTS['AuthenticationError']} Too many failed logins: try again in {seconds} s.",
    )
