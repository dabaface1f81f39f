"""No secret reaches a log line: a full run of `smsxml serve`, failures included."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from functools import partial
from pathlib import Path

import httpx

from smsxml.server.delivery import callback_token

from ..conftest import free_port, wait_for

# distinctive, and made of URL-safe characters only: a secret sent in a query string or a
# form is the same text in a log line, encoded or not
ACCOUNT_PASSWORD = "pw-SECRET-account-5150"
WRONG_PASSWORD = "pw-SECRET-typo-5151"  # a user's mistyped password is a password too
PROVIDER_PASSWORD = "pw-SECRET-provider-8086"
API_KEY = "key-SECRET-api-6502"
REFUSED_PASSWORD = "pw-SECRET-refused-4040"  # a provider's, wrong: the provider refuses it
CALLBACK_SECRET = "cb-SECRET-hmac-2600"

#: route prefix → (provider name, kind, options); one route per provider, plus a provider
#: that refuses our credentials and one where nothing listens
PROVIDERS = {
    "306911": ("isms", "isms", {"username": "acct", "password": PROVIDER_PASSWORD}),
    "306912": ("net2sms", "net2sms", {"key": API_KEY}),
    "306913": ("easysms", "easysms", {"username": "acct", "password": PROVIDER_PASSWORD}),
    "336111": ("smspartner", "smspartner", {"api_key": API_KEY}),
    "336112": ("allmysms", "allmysms", {"login": "acct", "api_key": API_KEY}),
    "306914": ("refusing", "isms", {"username": "acct", "password": REFUSED_PASSWORD}),
    "306915": ("down", "net2sms", {"key": API_KEY}),
}
RECIPIENTS = [
    "306911000001",
    "306911000000",  # the sandbox fails numbers ending in 0: a Failed report
    "306912000001",
    "306913000001",
    "33611100001",
    "33611200001",
    "306914000001",
    "306915000001",
]
FINAL = ("<status>Delivered</status>", "<status>Failed</status>")

#: makes every Python process of the run (serve, its dispatch process) log at DEBUG: the
#: CLI has no log-level setting, and its basicConfig(INFO) is a no-op once root has a handler
SITECUSTOMIZE = """\
import logging
logging.basicConfig(
    level=logging.DEBUG, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)
"""


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return f'"{value}"'


def _configs(tmp_path: Path, down_port: int) -> tuple[Path, Path]:
    bridge = [
        "demo = false",
        f'database_url = "sqlite:///{tmp_path / "bridge.sqlite3"}"',
        f'callback_token = "{CALLBACK_SECRET}"',
        "[dispatch]\nbackoff = 0.05\nmax_backoff = 0.2\nmax_attempts = 3",
    ]
    for name, kind, options in PROVIDERS.values():
        bridge.append(f"[providers.{name}]\nkind = {_toml(kind)}\noptions = {_toml(options)}")
        # allmysms takes no callback URL per send (its webhook is set in its customer
        # area), so here its report comes by polling: at once, not after the 30 s the
        # bridge first waits for a callback
        bridge.append("poll_interval = 0.2\nfirst_poll = 0.1")
        if name == "down":
            bridge.append(f'base_url = "http://127.0.0.1:{down_port}/net2sms/"')
    bridge.append("[routes]")
    bridge += [f'"{prefix}" = ["{name}"]' for prefix, (name, _, _) in PROVIDERS.items()]
    bridge.append('"*" = ["net2sms"]')
    sandbox = textwrap.dedent(
        f"""\
        seed = 7
        [account]
        username = "acct"
        password = "{PROVIDER_PASSWORD}"
        api_key = "{API_KEY}"
        credits = 100000
        [schedule]
        pending_after = 0.05
        final_after = 0.3
        fail_suffixes = ["0"]
        [faults.isms]
        error_count = 2
        error_status = 500
        [faults.easysms]
        error_count = 1
        [faults.smspartner]
        malformed_rate = 0.3
        [faults.net2sms]
        drop_rate = 0.2
        """
    )
    (tmp_path / "bridge.toml").write_text("\n".join(bridge) + "\n")
    (tmp_path / "sandbox.toml").write_text(sandbox)
    return tmp_path / "bridge.toml", tmp_path / "sandbox.toml"


def _soap(operation: str, password: str, inner: str) -> bytes:
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<t:{operation} xmlns:t="http://smsxml.org/isms/1"><username>alice</username>'
        f"<password>{password}</password>{inner}</t:{operation}></soap:Body></soap:Envelope>"
    ).encode()


def _send(url: str, password: str, recipient: str) -> httpx.Response:
    inner = (
        f"<from>Shop</from><to><recipients>{recipient}</recipients></to>"
        "<message>hello</message><coding>GSM</coding><flash>false</flash>"
    )
    return httpx.post(url, content=_soap("send", password, inner), timeout=30)


def _status(url: str, message_id: str, recipient: str) -> str:
    inner = f"<message_id>{message_id}</message_id><mobile>{recipient}</mobile>"
    answer = httpx.post(url, content=_soap("query", ACCOUNT_PASSWORD, inner), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.text


def _run(tmp_path: Path) -> tuple[str, list[str]]:
    """A full run of `smsxml serve`; its whole log, and the secrets that must not be in it."""
    down_port = free_port()  # nothing listens there
    bridge_toml, sandbox_toml = _configs(tmp_path, down_port)
    database = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    subprocess.run(
        [sys.executable, "-m", "smsxml.cli", "accounts", "add", "alice", "--credits", "1000"]
        + ["--password-stdin", "--database-url", database],
        input=ACCOUNT_PASSWORD.encode(),
        check=True,
        capture_output=True,
    )
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(tmp_path / "site")}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "smsxml.cli", "serve", "--port", str(port)]
            + ["--config", str(bridge_toml), "--sandbox-config", str(sandbox_toml)],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return process.poll() is not None  # exited: fail below, not by timeout

        wait_for(healthy, timeout=60, interval=0.1)
        assert process.poll() is None, log_path.read_text()
        soap = f"{base}/soap"

        for path in ("/soap", "/api/soap/sms.php"):  # both bindings' endpoints
            refused = _send(base + path, WRONG_PASSWORD, RECIPIENTS[0])
            assert refused.status_code == 500, refused.text
            assert "<code>AuthenticationError</code>" in refused.text, refused.text
        sent = {}
        for recipient in RECIPIENTS:
            answer = _send(soap, ACCOUNT_PASSWORD, recipient)
            assert answer.status_code == 200, answer.text
            sent[recipient] = answer.text.split("<id>")[1].split("</id>")[0]

        # delivery callbacks (besides those the sandboxes post): a wrong token, a right
        # one with a well-formed report, and right ones with reports nobody can read
        report = {"mid": "1000000001", "mobile": "306911000001", "status": "Delivered"}
        wrong = httpx.post(f"{base}/dlr/isms/{'0' * 32}", data=report)
        assert wrong.status_code == 404
        isms_token = callback_token(CALLBACK_SECRET, "isms")
        good = httpx.post(f"{base}/dlr/isms/{isms_token}", data=report)
        assert good.status_code == 200, good.text
        for provider in ("isms", "smspartner", "allmysms"):
            garbage = httpx.post(
                f"{base}/dlr/{provider}/{callback_token(CALLBACK_SECRET, provider)}",
                content=b"{truncated",
                headers={"Content-Type": "application/json"},
            )
            assert garbage.status_code == 400, garbage.text

        # every message final: delivered, or failed with its reason
        def final(message_id: str, recipient: str) -> bool:
            return any(state in _status(soap, message_id, recipient) for state in FINAL)

        for recipient, message_id in sent.items():
            wait_for(partial(final, message_id, recipient), timeout=60, interval=0.1)
        statuses = {r: _status(soap, i, r) for r, i in sent.items()}
        assert "<status>Delivered</status>" in statuses["306911000001"]
        assert "<status>Failed</status>" in statuses["306911000000"]
        assert "<status>Failed</status>" in statuses["306914000001"]
        assert "<status>Failed</status>" in statuses["306915000001"]

        # last (it slows this address down): wrong passwords until the bridge refuses to
        # check them, which it logs
        for _ in range(10):
            flooded = _send(soap, WRONG_PASSWORD, RECIPIENTS[0])
            assert "<code>AuthenticationError</code>" in flooded.text, flooded.text
            if "Too many failed logins" in flooded.text:
                break
        else:
            raise AssertionError("10 wrong passwords in a row were all checked")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    with closing(sqlite3.connect(tmp_path / "bridge.sqlite3")) as db:
        (stored_hash,) = db.execute("SELECT password_hash FROM accounts").fetchone()
    secrets = [
        stored_hash,  # the account's argon2 hash: an offline guess away from the password
        ACCOUNT_PASSWORD,
        WRONG_PASSWORD,
        PROVIDER_PASSWORD,
        API_KEY,
        REFUSED_PASSWORD,
        CALLBACK_SECRET,
        *(callback_token(CALLBACK_SECRET, name) for name, _, _ in PROVIDERS.values()),
    ]
    return log_path.read_text(errors="replace"), secrets


def test_a_full_run_logs_no_password_key_or_callback_token(tmp_path: Path) -> None:
    """`smsxml serve` at DEBUG through wrong SOAP passwords (up to the refusal), a send to
    every provider route (one failing at the provider, one refusing our credentials, one
    down, injected 500s, dropped connections and garbled answers), callbacks with a wrong
    and a right token: no log line holds a password, the account's hash, an API key, the
    callback secret or a callback token."""
    log, secrets = _run(tmp_path)
    lines = log.splitlines()
    # the run logged at DEBUG, and the failures were logged (with their reasons)
    assert any(" DEBUG " in line for line in lines)
    assert any("provider refusing failed" in line for line in lines)
    assert any("provider down failed" in line for line in lines)
    assert any(" failed for " in line and "[500]" in line for line in lines)  # injected
    assert any("refused a isms delivery report" in line for line in lines)
    assert any("login refused: account 'alice'" in line for line in lines)
    leaks = [(secret, line) for line in lines for secret in secrets if secret in line]
    assert not leaks, "\n".join(f"{secret}: {line}" for secret, line in leaks[:20])
