"""Accounts: argon2id hashes with OWASP's parameters, an unknown name as slow as a wrong
password, a bounded number of password checks at once; credits with a ledger."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import update

from smsxml.errors import InsufficientCredit
from smsxml.server.app import BridgeServer
from smsxml.server.models import Account
from smsxml.server.settings import LoginSettings
from smsxml.server.store import Store

from .test_logins import AUTH, WRONG, login, stored_hash


def test_credits_change_with_a_ledger_entry_and_never_go_below_zero(tmp_path: Path) -> None:
    """Credits added and taken are each a ledger entry with the balance after it; taking
    more than the account holds, or crediting an unknown name, changes nothing."""
    with closing(Store(f"sqlite:///{tmp_path / 'accounts.sqlite3'}")) as store:
        store.accounts.add("acme", "pw", 10)
        assert store.accounts.credit("acme", 5).credits == 15
        assert store.accounts.credit("acme", -15, reason="refund").credits == 0
        with pytest.raises(InsufficientCredit):
            store.accounts.credit("acme", -1)
        with pytest.raises(KeyError):
            store.accounts.credit("nobody", 5)
        assert store.accounts.get("acme").credits == 0  # type: ignore[union-attr]
        assert store.accounts.ledger("acme") == [
            (10, 10, "credit", None),
            (5, 15, "credit", None),
            (-15, 0, "refund", None),
        ]


def test_new_and_old_hashes_use_owasp_argon2id_parameters(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """Accounts are hashed with argon2id m=19 MiB, t=2, p=1 (OWASP); a hash made with
    other parameters (argon2-cffi's default, 64 MiB) still verifies and is rehashed."""
    bridge = make_bridge(sandbox=False)
    assert stored_hash(bridge).startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    old = PasswordHasher().hash("demo")
    assert "$m=65536,t=3,p=4$" in old
    with bridge.app.store.transaction() as db:
        db.execute(update(Account).where(Account.name == "demo").values(password_hash=old))
    assert login(bridge) == "sent"
    assert stored_hash(bridge).startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert stored_hash(bridge) != old


def test_an_unknown_name_costs_as_much_as_a_wrong_password(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """An unknown name is verified against a dummy hash: without it, it would answer in
    a few ms where a wrong password takes an argon2 check, telling names apart."""
    bridge = make_bridge(sandbox=False, logins=LoginSettings(free_failures=1000))

    def fastest(user: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            assert login(bridge, user, WRONG) == AUTH
            times.append(time.perf_counter() - started)
        return min(times)  # the least disturbed by whatever else runs on the machine

    login(bridge, "nobody", WRONG)  # the dummy hash is made on first use
    wrong, unknown = fastest("demo"), fastest("nobody")
    assert unknown > 0.6 * wrong, (unknown, wrong)


def test_concurrent_password_checks_are_bounded(
    make_bridge: Callable[..., BridgeServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight concurrent failing logins (unknown names: no per-account turn to wait for) run
    at most `verifications` argon2 checks at once (19 MiB each): memory is bounded
    whatever the number of logins."""
    bridge = make_bridge(sandbox=False, logins=LoginSettings(verifications=2, free_failures=1000))
    running, most = 0, 0
    lock = threading.Lock()
    verify = PasswordHasher.verify

    def counted(self: PasswordHasher, hash: str, password: str) -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            return verify(self, hash, password)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(PasswordHasher, "verify", counted)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: login(bridge, f"user{n}", WRONG), range(16)))
    assert answers == [AUTH] * 16
    assert most == 2
