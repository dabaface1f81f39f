"""Failed logins slowed, then refused, per account name and per client address, across
processes sharing the database (the SOAP login helpers here serve test_accounts too)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine
from sqlalchemy import select

from smsxml.server.app import BridgeServer
from smsxml.server.logins import client_of
from smsxml.server.models import Account
from smsxml.server.settings import LoginSettings

SEND = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    '<t:send xmlns:t="http://smsxml.org/isms/1"><username>{user}</username>'
    "<password>{password}</password><from>Shop</from><to><recipients>306912345678"
    "</recipients></to><message>hello</message><coding>GSM</coding><flash>false</flash>"
    "</t:send></soap:Body></soap:Envelope>"
)
WRONG = "Wr0ng-secret-4711"  # must never reach a log line
AUTH = "Authentication error."


def login(
    bridge: BridgeServer, user: str = "demo", password: str = "demo", client: str = ""
) -> str:
    """A send over SOAP: "sent", or the faultstring of its AuthenticationError fault."""
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if client:
        headers["X-Forwarded-For"] = f"203.0.113.99, {client}"  # left of the proxy: a lie
    answer = httpx.post(
        f"{bridge.url}/soap",
        content=SEND.format(user=user, password=password),
        headers=headers,
        timeout=30,
    )
    if answer.status_code == 200:
        return "sent"
    assert "<code>AuthenticationError</code>" in answer.text, answer.text
    return re.search("<faultstring>(.*)</faultstring>", answer.text).group(1)  # type: ignore[union-attr]


REFUSED = re.compile(rf"{re.escape(AUTH)} Too many failed logins: try again in (\d+) s\.")


def waits(faultstring: str, seconds: int) -> bool:
    """Whether ``faultstring`` is the refusal that says to wait ``seconds`` (or, the
    clock ticking while the request runs, up to 3 s less)."""
    found = REFUSED.fullmatch(faultstring)
    return found is not None and seconds - 3 < int(found.group(1)) <= seconds


def stored_hash(bridge: BridgeServer, name: str = "demo") -> str:
    with bridge.app.store.reader.connect() as db:
        return db.execute(select(Account.password_hash).where(Account.name == name)).scalar_one()


def login_metrics(bridge: BridgeServer) -> dict[str, float]:
    text = httpx.get(f"{bridge.url}/metrics").text
    found = re.findall(r'smsxml_login_failures_total\{outcome="(\w+)"\} ([0-9.]+)', text)
    return {outcome: float(value) for outcome, value in found}


@pytest.fixture
def clock() -> Iterator[Any]:
    """The wall clock the failure windows are measured on, ticking, moved by the test."""
    with time_machine.travel(datetime.now(UTC), tick=True) as traveller:
        yield traveller


def test_failed_logins_are_slowed_then_refused_with_the_authentication_fault(
    clock: Any, make_bridge: Callable[..., BridgeServer], caplog: pytest.LogCaptureFixture
) -> None:
    """Two failures are free; then each attempt waits 60 s, doubling, after the last
    failure; four failures lock the account for an hour. A refusal is the documented
    faultstring with the reason, even for the right password, and is logged once without
    the password; /metrics counts failures and refusals."""
    settings = LoginSettings(
        free_failures=2, delay=60, max_delay=600, account_lockout=4, lockout=3600
    )
    bridge = make_bridge(sandbox=False, logins=settings)
    with caplog.at_level(logging.INFO, logger="smsxml.server"):
        assert login(bridge, password=WRONG) == AUTH
        assert login(bridge, password=WRONG) == AUTH
        assert waits(login(bridge), 60)  # the right password waits too
        clock.shift(61)
        assert login(bridge, password=WRONG) == AUTH
        assert waits(login(bridge, password=WRONG), 120)
        clock.shift(121)
        assert login(bridge, password=WRONG) == AUTH
        assert waits(login(bridge), 3600)
        clock.shift(3601)
        assert login(bridge) == "sent"
    lines = [r.getMessage() for r in caplog.records if r.name == "smsxml.server"]
    refusals = [line for line in lines if line.startswith("login refused")]
    assert len(refusals) == 3
    assert "account 'demo' from 127.0.0.1" in refusals[0]
    assert not any(WRONG in line or "<password>" in line for line in lines)
    assert login_metrics(bridge) == {"failed": 4.0, "refused": 3.0}


def test_refusals_count_per_account_and_per_client_address(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """Behind a trusted proxy, X-Forwarded-For names the client. One failure (with no
    free ones) makes the account wait whatever the address, and the address wait whatever
    the account; an unknown name is counted like a real one (a refusal tells nothing of
    which names exist)."""
    settings = LoginSettings(
        free_failures=1, delay=600, max_delay=600, trusted_proxies=["127.0.0.1"]
    )
    bridge = make_bridge(sandbox=False, logins=settings)
    bridge.app.store.accounts.add("alice", "alice-pw", 10)
    assert login(bridge, password=WRONG, client="198.51.100.1") == AUTH
    assert waits(login(bridge, client="198.51.100.2"), 600)  # the account waits
    assert waits(login(bridge, "alice", "alice-pw", client="198.51.100.1"), 600)
    assert login(bridge, "alice", "alice-pw", client="198.51.100.3") == "sent"
    assert login(bridge, "nobody", WRONG, client="198.51.100.4") == AUTH
    assert waits(login(bridge, "nobody", WRONG, client="198.51.100.5"), 600)


def test_failures_are_shared_by_bridges_on_one_database(
    tmp_path: Path, make_bridge: Callable[..., BridgeServer]
) -> None:
    """Two bridges (as gunicorn workers, or nodes) on one database count the same
    failures: guessing on one makes the account wait on the other."""
    shared = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    settings = LoginSettings(free_failures=1, delay=600, max_delay=600)
    first = make_bridge(sandbox=False, logins=settings, database_url=shared)
    second = make_bridge(sandbox=False, logins=settings, database_url=shared)
    assert login(first, password=WRONG) == AUTH
    assert waits(login(second), 600)


def test_the_client_address_is_the_peer_unless_a_trusted_proxy_forwarded_it() -> None:
    """X-Forwarded-For is believed only from a trusted proxy, and only its rightmost
    address (the one that proxy added); anyone else's header is the client's word."""
    forwarded = {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 198.51.100.7"}
    assert client_of(forwarded, ["10.0.0.5"]) == "198.51.100.7"
    assert client_of(forwarded, []) == "10.0.0.5"
    assert client_of({"REMOTE_ADDR": "10.0.0.5"}, ["10.0.0.5"]) == "10.0.0.5"
    assert client_of(None, []) == "-"  # outside a request
