"""smsxml.sandbox.serve: ``smsxml sandbox`` over real HTTP, where the fast server keeps every
behaviour of the sandbox."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from smsxml.sandbox import DeliverySchedule, SandboxConfig, SandboxServer
from smsxml.sandbox.serve import free_port as free_port_on
from smsxml.sandbox.serve import needs_werkzeug

from ..conftest import CallbackReceiver, wait_for
from .conftest import CliSandbox

GOOD, FAILING = "306912345678", "306912345670"
CREDITS = 100_000
#: slow enough that a query right after a send sees Queued, fast enough for a quick test
SCHEDULE = DeliverySchedule(pending_after=0.3, final_after=0.8, fail_suffixes=("0",))
CONFIG = f"""\
seed = 3
[account]
credits = {CREDITS}
[schedule]
pending_after = {SCHEDULE.pending_after}
final_after = {SCHEDULE.final_after}
fail_suffixes = ["0"]
"""
ISMS = "/isms/api/http/"
AUTH = "username=demo&password=demo"


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliSandbox]:
    """One CLI sandbox for the module (tests below only count differences in its state)."""
    with CliSandbox(tmp_path_factory.mktemp("cli"), CONFIG) as sandbox:
        yield sandbox


def isms(cli: CliSandbox, call: str, **params: str) -> str:
    query = "&".join(f"{k.replace('_', '-')}={v}" for k, v in params.items())
    answer = httpx.get(f"{cli.url}{ISMS}{call}.php?{AUTH}&{query}", timeout=10)
    assert answer.status_code == 200
    return answer.text


def send(cli: CliSandbox, **params: str) -> str:
    """iSMS send.php from Shop to GOOD and FAILING; the message id it answers."""
    answer = isms(cli, "send", **{"from": "Shop", "to": f"{GOOD},{FAILING}", **params})
    assert answer.startswith("ID:"), answer
    return answer.removeprefix("ID:")


def credits(cli: CliSandbox) -> float:
    return float(isms(cli, "credits").removeprefix("Credits:"))


def running(pid: str) -> bool:
    """Whether process ``pid`` still runs (a zombie waiting for init to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_served_by_granian(cli: CliSandbox) -> None:
    """Without drop faults the CLI serves with granian, and says so."""
    assert "server: granian, one worker process" in cli.output


def test_a_second_sandbox_on_the_same_port_is_refused(cli: CliSandbox) -> None:
    """A taken port is refused, not shared with SO_REUSEPORT by two separate states."""
    command = [sys.executable, "-m", "smsxml.cli", "sandbox", "--port", str(cli.port)]
    second = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1 and "Address already in use" in second.stderr


def test_the_worker_leaves_when_its_main_process_is_killed(
    start_cli: Callable[[str], CliSandbox],
) -> None:
    """SIGKILL skips granian's shutdown; the worker notices within seconds and exits."""
    cli = start_cli("")
    children = Path(f"/proc/{cli.pid}/task/{cli.pid}/children").read_text().split()
    assert children  # granian's worker, serving
    os.kill(cli.pid, signal.SIGKILL)
    wait_for(lambda: not any(map(running, children)), timeout=10)
    with pytest.raises(httpx.ConnectError):
        httpx.get(cli.url + "/", timeout=2)


def test_a_send_consumes_credit_seen_in_the_balance(cli: CliSandbox) -> None:
    """A send to two recipients takes two credits, visible in credits.php."""
    before = credits(cli)
    send(cli, message="Hi")
    assert credits(cli) == before - 2


def test_the_sent_count_says_how_often_each_recipient_was_taken(cli: CliSandbox) -> None:
    """GET /_sandbox/sent/isms counts the messages iSMS took per recipient (a load test's
    check that nothing went twice); an unknown provider is 404."""
    before = httpx.get(f"{cli.url}/_sandbox/sent/isms", timeout=10).json()
    send(cli)
    send(cli)
    after = httpx.get(f"{cli.url}/_sandbox/sent/isms", timeout=10).json()
    for recipient in (GOOD, FAILING):
        assert after[recipient] == before.get(recipient, 0) + 2
    assert httpx.get(f"{cli.url}/_sandbox/sent/nobody", timeout=10).status_code == 404


def test_message_states_advance_to_final(cli: CliSandbox) -> None:
    """Queued, then Pending, then Delivered (or Failed for a number ending in 0), in order."""
    mid = send(cli, message="Hi")
    seen: dict[str, list[str]] = {GOOD: [], FAILING: []}

    def final() -> bool:
        for mobile, states in seen.items():
            state = isms(cli, "query", mid=mid, mobile=mobile).removeprefix("Status: ")
            if not states or states[-1] != state:
                states.append(state)
        return all(states[-1] in ("Delivered", "Failed") for states in seen.values())

    wait_for(final, timeout=10, interval=0.05)
    assert seen[GOOD][0] == "Queued" and seen[GOOD][-1] == "Delivered"
    assert seen[FAILING][-1] == "Failed"
    order = ["Queued", "Pending", "Delivered", "Failed"]
    for states in seen.values():
        assert states == sorted(states, key=order.index)


def test_delivery_callbacks_are_posted(cli: CliSandbox, callbacks: CallbackReceiver) -> None:
    """The worker process POSTs iSMS delivery reports to dlr-url (its thread runs there)."""
    mid = send(cli, dlr_url=callbacks.url)
    wait_for(lambda: len(callbacks.received) >= 2, timeout=10)
    reports = {r["form"]["mobile"]: r["form"] for r in callbacks.received}
    assert reports[GOOD]["mid"] == mid and reports[GOOD]["status"] == "Delivered"
    assert reports[FAILING]["status"] == "Failed"


def test_state_is_consistent_under_many_connections(cli: CliSandbox) -> None:
    """640 sends over 16 concurrent connections: 640 distinct ids, exactly 640 credits."""
    before, ids, lock = credits(cli), [], threading.Lock()

    def sender() -> None:
        with httpx.Client(base_url=cli.url, timeout=10) as client:  # one connection each
            for _ in range(40):
                answer = client.get(f"{ISMS}send.php?{AUTH}&from=Shop&to={GOOD}&message=x")
                with lock:
                    ids.append(answer.text)

    threads = [threading.Thread(target=sender) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(i.startswith("ID:") for i in ids) and len(set(ids)) == 640
    assert credits(cli) == before - 640


#: calls whose answers depend on nothing a test changes: (method, path and query, body)
SAME_ANSWERS: list[tuple[str, str, dict[str, str] | None]] = [
    ("GET", "/", None),
    ("GET", f"{ISMS}credits.php?username=demo&password=wrong", None),
    ("GET", f"{ISMS}send.php?{AUTH}&from=Shop&to=123", None),
    ("POST", f"{ISMS}query.php", {"username": "demo", "password": "demo", "mid": "X"}),
    ("GET", f"{ISMS}nothing.php", None),
    ("PUT", f"{ISMS}credits.php", None),
    ("GET", "/net2sms/api/mobile/check?mobile=6912345678&type=json", None),
    ("GET", "/net2sms/api/mobile/check?mobile=6912345678&type=xml", None),
    ("GET", "/net2sms/api/key/get?username=demo&password=demo&type=xml", None),
    ("GET", "/net2sms/api/balance/get?key=wrong&type=json", None),
    ("GET", "/easysms/srvauth/index?cmd=easysms&action=get_balance", None),
    ("GET", "/smspartner/v1/me?apiKey=wrong", None),
    ("GET", "/smspartner/v1/me?apiKey=wrong&_format=xml", None),
    ("GET", "/smspartner/v1/nothing", None),
    ("GET", "/allmysms/http/9.0/getInfo?login=demo&apiKey=wrong", None),
    (
        "POST",
        "/allmysms/http/9.0/simulateCampaign",
        {
            "login": "demo",
            "apiKey": "demo-key",
            "smsData": "<DATA><MESSAGE>Bonjour</MESSAGE><TPOA>Shop</TPOA>"
            "<SMS><MOBILEPHONE>33612345678</MOBILEPHONE></SMS></DATA>",
        },
    ),
]


def test_answers_are_the_in_process_servers_byte_for_byte(cli: CliSandbox) -> None:
    """Status, Content-Type, challenge headers and body equal werkzeug's in-process server's."""
    config = SandboxConfig(credits=Decimal(CREDITS), schedule=SCHEDULE, seed=3)

    def answers(base: str) -> list[tuple[int, str | None, str | None, bytes]]:
        with httpx.Client(base_url=base, timeout=10) as client:
            got = [client.request(method, path, data=form) for method, path, form in SAME_ANSWERS]
        return [
            (r.status_code, r.headers.get("content-type"), r.headers.get("www-authenticate"),
             r.content)
            for r in got
        ]  # fmt: skip

    with SandboxServer(config) as in_process:
        expected = answers(in_process.url)
    assert answers(cli.url) == expected


FAULTS = """\
seed = 7
[faults.isms]
error_count = 2
error_status = 503
[faults.net2sms]
rate_limit = 0
[faults.allmysms]
malformed_rate = 1.0
[faults.smspartner]
latency = 0.3
"""


def test_fault_config(start_cli: Callable[[str], CliSandbox]) -> None:
    """Forced 5xx, 429 with Retry-After, garbled answers and latency, from the TOML."""
    cli = start_cli(FAULTS)
    with httpx.Client(base_url=cli.url, timeout=10) as client:
        first, second, third = (client.get(f"{ISMS}credits.php?{AUTH}") for _ in range(3))
        assert (first.status_code, first.text) == (503, "Sandbox fault: HTTP 503")
        assert second.status_code == 503 and third.text == "Credits:1000.00"
        limited = client.get("/net2sms/api/balance/get?key=demo-key")
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "1")
        garbled = client.get("/allmysms/http/9.0/getInfo?login=demo&apiKey=demo-key")
        assert garbled.content.endswith(b"\x00<garbled") and garbled.content.startswith(b'{"')
        started = time.monotonic()
        assert client.get("/smspartner/v1/me?apiKey=demo-key").status_code == 200
        assert time.monotonic() - started >= 0.3


def test_dropped_connections_fall_back_to_werkzeug(start_cli: Callable[[str], CliSandbox]) -> None:
    """With drop_rate the CLI serves with werkzeug, which closes connections unanswered."""
    cli = start_cli("[faults.isms]\ndrop_rate = 1.0\n")
    assert "server: werkzeug" in cli.output
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        httpx.get(f"{cli.url}{ISMS}credits.php?{AUTH}", timeout=10)
    assert httpx.get(f"{cli.url}/net2sms/api/balance/get?key=demo-key").text == "1000"


# in-process -----------------------------------------------------------------------------


def test_only_dropped_connections_need_werkzeug() -> None:
    """Only drop_rate needs werkzeug (granian cannot close unanswered); other faults do not."""
    assert not needs_werkzeug(SandboxConfig())
    busy = SandboxConfig().with_faults("isms", error_rate=1.0, latency=0.1, malformed_rate=1.0)
    assert not needs_werkzeug(busy)
    assert needs_werkzeug(busy.with_faults("allmysms", drop_rate=0.01))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_free_port_gives_a_port_that_binds(host: str) -> None:
    """free_port(host) names a port nothing holds on that host now."""
    port = free_port_on(host)
    with socket.create_server((host, port)):
        pass
