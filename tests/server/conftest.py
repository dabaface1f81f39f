"""Fixtures of the SOAP bridge: a real bridge (waitress, SQLite file, in-process
sandboxes) on a free port, answering through the fast lane (the production setting;
tests/server/test_spyne_service.py proves that spyne answers alike)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from smsxml.sandbox import SandboxConfig
from smsxml.server.accounts import AccountInfo
from smsxml.server.app import BridgeServer
from smsxml.server.settings import DispatchSettings, Settings
from smsxml.server.store import Store


def bridge_settings(tmp_path: Path, name: str = "bridge", **overrides: Any) -> Settings:
    """Settings for a test bridge: its own SQLite file, quick dispatch and polling."""
    base: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / name}.sqlite3",
        "port": 0,
        "sqlite_synchronous": "NORMAL",
        "dlr_private_addresses": True,  # the tests' dlr_url receivers are on loopback
        "final_counts_max_age": 0.0,  # /healthz shows what a test just made final
        "dispatch": DispatchSettings(
            workers=2, idle=0.02, backoff=0.05, max_backoff=0.2, max_attempts=3
        ),
    }
    settings = Settings(**(base | overrides))
    for provider in settings.providers.values():
        provider.poll_interval = 0.1
        provider.first_poll = 0.0  # at once (the callback default: test_dispatcher)
        provider.rate_limit = 0.0
    return settings


@pytest.fixture
def make_bridge(tmp_path: Path) -> Iterator[Callable[..., BridgeServer]]:
    """Start bridges with settings overrides; all are stopped after the test."""
    servers: list[BridgeServer] = []

    def start(sandbox_config: SandboxConfig | None = None, **overrides: Any) -> BridgeServer:
        settings = bridge_settings(tmp_path, f"bridge{len(servers)}", **overrides)
        server = BridgeServer(settings, sandbox_config=sandbox_config).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def bridge(make_bridge: Callable[..., BridgeServer]) -> BridgeServer:
    """A running bridge with the demo account. The fast lane only: it reads requests into
    the arguments spyne would make and calls the same operations, and
    tests/server/test_spyne_service.py runs spyne beside it on every form of request."""
    return make_bridge()


#: the bridge under gunicorn with the shipped configuration (server/gunicorn.conf.py)
GUNICORN = [
    str(Path(sys.executable).parent / "gunicorn"),
    "-c",
    str(Path(__file__).resolve().parents[2] / "server" / "gunicorn.conf.py"),
    "smsxml.server.wsgi:application",
]


def start_gunicorn(cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """:data:`GUNICORN`, its settings in ``env`` (SMSXML_*); the caller stops it."""
    return subprocess.Popen(
        GUNICORN,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


#: a database of our own on the machine's PostgreSQL (created when missing); one per
#: pytest-xdist worker (``_gw0``, ``_gw1``…), since each test drops and makes it anew
POSTGRES_URL = os.environ.get(
    "SMSXML_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/smsxml_test"
) + (f"_{os.environ['PYTEST_XDIST_WORKER']}" if "PYTEST_XDIST_WORKER" in os.environ else "")


def fresh_postgres() -> str:
    """The URL of our own PostgreSQL database, dropped and made anew."""
    server, database = POSTGRES_URL.rsplit("/", 1)
    try:
        admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as db:
            db.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            db.execute(text(f'CREATE DATABASE "{database}"'))
        admin.dispose()
    except OperationalError as error:
        pytest.fail(
            f"PostgreSQL is not reachable at {server} ({error.orig}); .ci/run starts it, "
            "or set SMSXML_TEST_POSTGRES_URL"
        )
    return POSTGRES_URL


def open_store(kind: str, tmp_path: Path) -> Iterator[Store]:
    """A fresh store on SQLite (a file) or PostgreSQL (a database of our own), closed after
    the test."""
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}" if kind == "sqlite" else fresh_postgres()
    opened = Store(url)
    yield opened
    opened.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store on SQLite (a file) or PostgreSQL (a database of our own): the tests
    of the store and of its parts run on both."""
    yield from open_store(request.param, tmp_path)


def queue_send(
    store: Store, account: AccountInfo, recipients: Sequence[str], **changes: Any
) -> str:
    """A send of "hi" from Acme to ``recipients`` (GSM, one part) stored as the endpoint
    stores it, ``changes`` aside: where the tests of the store's parts start."""
    send: dict[str, Any] = {
        "sender": "Acme",
        "text": "hi",
        "coding": "GSM",
        "flash": False,
        "parts": 1,
    }
    return store.acceptance.accept(account, recipients=list(recipients), **(send | changes))
