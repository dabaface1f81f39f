"""`smsxml accounts`: argon2-hashed passwords, credits with a ledger, one database setting."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import zeep

from smsxml.server.app import BridgeServer
from smsxml.server.store import Store


def accounts(database: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smsxml.cli", "accounts", *args, "--database-url", database],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'accounts.sqlite3'}"


def test_add_list_credit_passwd(database: str) -> None:
    """add, list, credit and passwd do what they say, and the ledger explains the balance."""
    added = accounts(
        database, "add", "acme", "--credits", "50", "--password-stdin", stdin="s3cret\n"
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "acme\t50"
    assert accounts(database, "credit", "acme", "25").stdout.strip() == "acme\t75"
    assert accounts(database, "list").stdout.splitlines() == ["acme\t75"]
    store = Store(database)
    assert store.authenticate("acme", "s3cret") is not None
    assert accounts(database, "passwd", "acme", "--password-stdin", stdin="n3w\n").returncode == 0
    fresh = Store(database)  # another process's view: no cached credentials
    assert fresh.authenticate("acme", "s3cret") is None
    assert fresh.authenticate("acme", "n3w") is not None
    assert fresh.ledger("acme") == [(50, 50, "credit", None), (25, 75, "credit", None)]


def test_passwords_are_stored_as_argon2_hashes(database: str) -> None:
    """The database holds an argon2id hash, never the password."""
    accounts(database, "add", "acme", "--password-stdin", stdin="s3cret\n")
    dump = Path(database.removeprefix("sqlite:///")).read_bytes()
    assert b"s3cret" not in dump and b"$argon2id$" in dump


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("add", "acme", "--password-stdin"), "\n", "the password must not be empty"),
        (("credit", "nobody", "5"), "", "no account 'nobody'"),
        (("credit", "acme", "-500"), "", "fewer than 500 credits"),
        (("add", "acme", "--password-stdin"), "x\n", "already exists"),
    ],
)
def test_mistakes_are_clear_errors(
    database: str, args: tuple[str, ...], stdin: str, message: str
) -> None:
    """Bad input: a one-line error and exit status ≠ 0, never a traceback."""
    accounts(database, "add", "acme", "--credits", "10", "--password-stdin", stdin="pw\n")
    run = accounts(database, *args, stdin=stdin)
    assert run.returncode != 0
    assert message in run.stderr and "Traceback" not in run.stderr


def test_the_server_honours_accounts_made_by_the_cli(
    make_bridge: Callable[..., BridgeServer], tmp_path: Path
) -> None:
    """An account added with the CLI sends through the bridge; the demo can be turned off."""
    database = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    accounts(database, "add", "acme", "--credits", "3", "--password-stdin", stdin="pw\n")
    bridge = make_bridge(database_url=database, demo=False)
    service = zeep.Client(bridge.wsdl_url).service
    message_id = service.send(
        "acme", "pw", "Acme", {"recipients": ["306912345678"]}, "Hi", "GSM", False
    )
    assert service.query("acme", "pw", message_id, "306912345678") in (
        "Queued",
        "Pending",
        "Delivered",
    )
    with pytest.raises(zeep.exceptions.Fault, match="Authentication error."):
        service.query("demo", "demo", message_id, "306912345678")
    assert accounts(database, "list").stdout.splitlines() == ["acme\t2"]
