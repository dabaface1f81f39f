"""The bridge's settings, in one documented object.

Sources, strongest first: arguments (the CLI's flags), environment variables
(``SMSXML_DATABASE_URL``, ``SMSXML_PUBLIC_URL``, …; nested with ``__``, e.g.
``SMSXML_DISPATCH__WORKERS=8``), then a TOML file (``--config`` or ``SMSXML_CONFIG``).
The defaults are the embedded ones: a SQLite file, the provider sandboxes in-process,
a demo account.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DispatchSettings",
    "HttpSettings",
    "LoginSettings",
    "ProviderSettings",
    "Settings",
    "WsSecuritySettings",
]

DEFAULT_DATABASE_URL = "sqlite:///smsxml.sqlite3"
_CONFIG_FILE: ContextVar[str | None] = ContextVar("smsxml_config_file", default=None)


#: seconds before the first status poll of a message whose provider reports by callback:
#: the safety net for a report that does not come (the callback URL unreachable, say)
CALLBACK_FIRST_POLL = 30.0


class ProviderSettings(BaseModel):
    """One provider the bridge may route to."""

    kind: str  # net2sms, easysms, smspartner, isms, allmysms, isms-soap
    base_url: str | None = None  # None: the sandbox when it runs, else the vendor's URL
    options: dict[str, Any] = Field(default_factory=dict)  # credentials etc., per client
    #: messages per second sent to this provider; 0: no limit of ours (docs/bridge.md
    #: says what each provider documents: none publishes an HTTP limit to stay under)
    rate_limit: float = 0.0
    #: calls in flight to this provider at once (one keep-alive connection each)
    concurrency: int = 64
    poll_interval: float = 2.0  # seconds between status polls
    #: seconds from the provider's acceptance to the first status poll; None: at once,
    #: unless the provider is given a delivery-callback URL: then CALLBACK_FIRST_POLL, as
    #: its report comes by itself (polling every SMS at once doubled the calls to the
    #: provider, and took a fifth of the dispatcher's CPU)
    first_poll: float | None = None


class DispatchSettings(BaseModel):
    """How dispatcher workers take rows from the queue and retry."""

    workers: int = 1  # 0: this process does not dispatch (it only accepts)
    batch: int = 500  # rows claimed at once
    in_hand: int = 2000  # rows claimed and not yet recorded, at most, per process
    #: seconds a claim holds unless renewed (every third of it) before another worker may
    #: take the row: how long a dead worker's rows wait
    lease: float = 10.0
    idle: float = 0.05  # seconds between claims when the queue is empty
    #: the niceness of the dispatch process `smsxml serve` and gunicorn start beside the
    #: endpoint: under load the CPU goes to answering clients first (the queue can wait a
    #: moment, a SOAP client cannot); measured 318 → 471 sends/s accepted while
    #: dispatching, dispatch itself unchanged
    nice: int = 10
    #: on SQLite, a worker's claims and outcomes are written by a process of its own with
    #: one thread (smsxml.server.queueagent): the write lock is then held only as long as
    #: the SQL takes, not while its holder waits for the GIL behind the sender threads
    queue_process: bool = True
    max_attempts: int = 5  # rounds over the route's providers before a row fails
    backoff: float = 1.0  # first retry delay; doubles each attempt
    max_backoff: float = 300.0


class WsSecuritySettings(BaseModel):
    """WS-Security UsernameToken in the SOAP header (smsxml.server.wssecurity)."""

    #: seconds a token's or Timestamp's wsu:Created may lie from the server's time, either
    #: way (clock skew); a nonce is remembered this long, so a replay within it is refused
    window: float = Field(default=300.0, gt=0)
    #: Fernet keys (``Fernet.generate_key()``) that encrypt accounts' WS-Security secrets:
    #: the first encrypts, all decrypt (put a new key first to rotate). Empty: one key is
    #: made and kept in the database, which then protects a stolen backup no better than
    #: the table beside it (docs/bridge.md, "WS-Security")
    keys: list[str] = Field(default_factory=list)


class LoginSettings(BaseModel):
    """How password checks are bounded, and failed logins slowed then refused
    (smsxml.server.logins). Failures are counted in the store's database, per account name
    and per client address, so every process and node on one database shares them."""

    #: argon2 verifications at once in one process (19 MiB each, smsxml.server.accounts):
    #: the memory of password checks is bounded whatever the number of concurrent logins
    verifications: int = Field(default=2, ge=1)
    window: float = 900.0  # seconds over which failures are counted
    #: failures in the window before any wait (a user's typos)
    free_failures: int = 5
    #: then each further attempt waits this long after the last failure, doubling per
    #: failure up to max_delay (attempts meanwhile are refused without a check)
    delay: float = 1.0
    max_delay: float = 60.0
    #: failures in the window after which an account name, or a client address, is refused
    #: for `lockout` seconds after its last failure (addresses get more: NAT, proxies)
    account_lockout: int = 20
    address_lockout: int = 100
    lockout: float = 900.0
    #: reverse proxies whose X-Forwarded-For names the client (its rightmost address);
    #: without them, behind a proxy every client shares the proxy's address
    trusted_proxies: list[str] = Field(default_factory=list)
    #: UsernameToken logins in a WS-Security header (throttled as the others)
    wssecurity: WsSecuritySettings = Field(default_factory=WsSecuritySettings)


class HttpSettings(BaseModel):
    """Deadlines and a cap on connections of `smsxml serve`'s HTTP server (waitress):
    slow or stalled clients must not hold connections forever (smsxml.server.connections).
    """

    #: seconds from a request's first byte until its headers are in
    header_timeout: float = 10.0
    #: seconds from the end of the headers until the whole body is in (16 MiB at most:
    #: 60 s allow ~280 kB/s)
    body_timeout: float = 60.0
    #: seconds a kept-alive connection may wait idle for its next request
    idle_timeout: int = 30
    #: open connections at most; more wait in the listen backlog until one closes
    connection_limit: int = 100


def _sandbox_providers() -> dict[str, ProviderSettings]:
    demo = {"username": "demo", "password": "demo"}
    return {
        "isms": ProviderSettings(kind="isms", options=demo),
        "net2sms": ProviderSettings(kind="net2sms", options={"key": "demo-key"}),
        "easysms": ProviderSettings(kind="easysms", options=demo),
        "smspartner": ProviderSettings(kind="smspartner", options={"api_key": "demo-key"}),
        "allmysms": ProviderSettings(
            kind="allmysms", options={"login": "demo", "api_key": "demo-key"}
        ),
    }


def _default_routes() -> dict[str, list[str]]:
    # number prefix (or "*") → providers, tried in order: Greek numbers to the Greek
    # gateways, French ones to the French, the rest to net2sms then easysms
    return {
        "30": ["isms", "net2sms"],
        "33": ["allmysms", "smspartner"],
        "*": ["net2sms", "easysms"],
    }


class Settings(BaseSettings):
    """Everything ``smsxml serve`` and the bridge read."""

    model_config = SettingsConfigDict(
        env_prefix="SMSXML_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8080
    #: the address clients use (behind a proxy, the proxy's); served in the WSDL
    public_url: str | None = None
    soap_path: str = "/soap"
    #: answer plain send/query without spyne (see smsxml.server.soap)
    fast_lane: bool = True
    #: create the demo account (demo / demo) when it does not exist
    demo: bool = True
    demo_credits: int = 1000
    #: run the provider sandboxes in-process and route to them
    sandbox: bool = True
    #: DEBUG, INFO, WARNING or ERROR (server/logs.py): every process of the bridge
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: SQLite durability: FULL survives power loss; NORMAL only process crashes
    sqlite_synchronous: str = "FULL"
    #: the Unix socket of the writer process that commits every worker's sends
    #: (gunicorn's shipped config starts one on SQLite and sets this); None: each
    #: process commits its own
    writer_socket: str | None = None
    providers: dict[str, ProviderSettings] = Field(default_factory=_sandbox_providers)
    routes: dict[str, list[str]] = Field(default_factory=_default_routes)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    logins: LoginSettings = Field(default_factory=LoginSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    #: the secret of delivery-callback URL tokens (set it to share them across nodes with
    #: separate databases, or to rotate it); empty: generated and kept per database
    callback_token: str = ""
    #: let a client's dlr_url reach loopback, private or link-local addresses (off: such
    #: reports are not sent, so an account cannot make the bridge probe its own network)
    dlr_private_addresses: bool = False
    #: seconds /healthz and /metrics reuse their count of Delivered and Failed rows
    #: (counting them reads every one; Queued and Pending are counted each time)
    final_counts_max_age: float = 30.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = _CONFIG_FILE.get() or os.environ.get("SMSXML_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml)))
        return tuple(sources)

    @classmethod
    def load(cls, config: str | Path | None = None, **overrides: Any) -> Settings:
        """Settings from ``config`` (TOML), the environment, then ``overrides`` (None
        values are ignored: a flag not given)."""
        token = _CONFIG_FILE.set(str(config) if config is not None else None)
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        finally:
            _CONFIG_FILE.reset(token)

    @property
    def base_url(self) -> str:
        """Where clients and providers reach the bridge: ``public_url``, else the address
        it listens on (no trailing slash)."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def address(self) -> str:
        """The service address published in the WSDL."""
        return self.base_url + self.soap_path
