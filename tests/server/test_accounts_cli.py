"""`smsxml accounts`: argon2-hashed passwords, credits with a ledger, one database setting."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import zeep

from smsxml.server import accounts as accounts_module
from smsxml.server.app import BridgeServer
from smsxml.server.store import Store


def smsxml(
    *args: str, stdin: str = "", cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process, with ``env`` instead of any SMSXML_* variables."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SMSXML_")}
    return subprocess.run(
        [sys.executable, "-m", "smsxml.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**inherited, "PYTHONWARNINGS": "ignore", **env},
    )


def accounts(database: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return smsxml("accounts", *args, "--database-url", database, stdin=stdin)


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
    assert store.accounts.authenticate("acme", "s3cret") is not None
    assert accounts(database, "passwd", "acme", "--password-stdin", stdin="n3w\n").returncode == 0
    fresh = Store(database)  # another process's view: no cached credentials
    assert fresh.accounts.authenticate("acme", "s3cret") is None
    assert fresh.accounts.authenticate("acme", "n3w") is not None
    assert fresh.accounts.ledger("acme") == [(50, 50, "credit", None), (25, 75, "credit", None)]


class CountingHasher:
    """argon2's hasher, counting verifications."""

    def __init__(self, hasher: Any) -> None:
        self.hasher, self.verified = hasher, 0

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        self.verified += 1
        return self.hasher.verify(password_hash, password)


def test_a_remembered_password_follows_the_stored_hash(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the stored hash is unchanged, calls cost no argon2 (concurrent first calls
    share one verification); once another process changes the password, the old one is
    refused and the new one accepted."""
    accounts(database, "add", "acme", "--password-stdin", stdin="s3cret\n")
    monkeypatch.setattr(accounts_module, "AUTH_RECHECK_SECONDS", 0.0)  # look at every call
    store = Store(database)
    hasher = store.accounts._hasher = CountingHasher(store.accounts._hasher)  # type: ignore[assignment]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: store.accounts.authenticate("acme", "s3cret"), range(8)))
    assert all(result is not None and result.name == "acme" for result in results)
    assert store.accounts.authenticate("acme", "wrong") is None
    assert hasher.verified == 2  # one for the eight right calls, one for the wrong one
    assert accounts(database, "passwd", "acme", "--password-stdin", stdin="n3w\n").returncode == 0
    assert store.accounts.authenticate("acme", "s3cret") is None
    assert store.accounts.authenticate("acme", "n3w") is not None


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


def add_account(database: str, name: str, credits: int = 0) -> None:
    with closing(Store(database)) as store:
        store.accounts.add(name, "pw", credits)


@pytest.fixture
def config(tmp_path: Path, database: str) -> Path:
    """A TOML settings file that alone names the database."""
    path = tmp_path / "smsxml.toml"
    path.write_text(f'database_url = "{database}"\n', encoding="utf-8")
    return path


def test_accounts_take_the_database_from_the_config_file(
    tmp_path: Path, database: str, config: Path
) -> None:
    """With database_url only in the TOML given by --config, every subcommand uses it, as
    `smsxml serve` would, and nothing lands in ./smsxml.sqlite3."""
    add = ("accounts", "add", "acme", "--credits", "5", "--password-stdin")
    added = smsxml(*add, "--config", str(config), stdin="pw\n", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    smsxml("accounts", "credit", "acme", "2", "--config", str(config), cwd=tmp_path)
    new_password = ("accounts", "passwd", "acme", "--password-stdin", "--config", str(config))
    assert smsxml(*new_password, stdin="n3w\n", cwd=tmp_path).returncode == 0
    listed = smsxml("accounts", "list", "--config", str(config), cwd=tmp_path)
    assert listed.stdout.splitlines() == ["acme\t7"]
    with closing(Store(database)) as store:
        assert store.accounts.authenticate("acme", "n3w") is not None
    assert not (tmp_path / "smsxml.sqlite3").exists()


def test_accounts_read_smsxml_config(tmp_path: Path, database: str, config: Path) -> None:
    """SMSXML_CONFIG in the environment is the same as --config."""
    add = ("accounts", "add", "acme", "--credits", "5", "--password-stdin")
    added = smsxml(*add, stdin="pw\n", cwd=tmp_path, SMSXML_CONFIG=str(config))
    assert added.returncode == 0, added.stderr
    with closing(Store(database)) as store:
        assert [account.name for account in store.accounts.all()] == ["acme"]
    assert not (tmp_path / "smsxml.sqlite3").exists()


def test_accounts_list_reads_smsxml_database_url(tmp_path: Path, database: str) -> None:
    """SMSXML_DATABASE_URL without the flag: the list comes from that database."""
    add_account(database, "acme", 9)
    listed = smsxml("accounts", "list", cwd=tmp_path, SMSXML_DATABASE_URL=database)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["acme\t9"]


def test_the_database_flag_wins_over_the_config_file(
    tmp_path: Path, database: str, config: Path
) -> None:
    """--database-url > SMSXML_DATABASE_URL > the TOML, as for `smsxml serve`."""
    add_account(database, "in-toml")
    flagged = f"sqlite:///{tmp_path / 'flag.sqlite3'}"
    add_account(flagged, "in-flag")
    env_url = f"sqlite:///{tmp_path / 'env.sqlite3'}"
    add_account(env_url, "in-env")
    listed = smsxml(
        "accounts", "list", "--config", str(config), cwd=tmp_path, SMSXML_DATABASE_URL=env_url
    )
    assert listed.stdout.splitlines() == ["in-env\t0"]
    listed = smsxml(
        "accounts",
        "list",
        "--config",
        str(config),
        "--database-url",
        flagged,
        cwd=tmp_path,
        SMSXML_DATABASE_URL=env_url,
    )
    assert listed.stdout.splitlines() == ["in-flag\t0"]


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


def test_callbacks_lists_the_urls_the_bridge_hands_out(database: str) -> None:
    """`smsxml callbacks` prints each callback URL (allmysms's is set by hand in its
    account), with the token the bridge checks."""
    from smsxml.server.delivery import callback_token

    shown = smsxml(
        "callbacks", "--database-url", database, SMSXML_PUBLIC_URL="https://sms.example.org"
    )
    assert shown.returncode == 0, shown.stderr
    with closing(Store(database)) as store:
        secret = store.secret("callback-token")
    urls = dict(line.split("\t") for line in shown.stdout.splitlines())
    assert urls["allmysms"] == (
        f"https://sms.example.org/dlr/allmysms/{callback_token(secret, 'allmysms')}"
    )
    assert set(urls) == {"isms", "smspartner", "allmysms"}
