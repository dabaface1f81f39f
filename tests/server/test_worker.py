"""`smsxml worker`: dispatch and tracking in processes of their own, beside endpoints that
only accept, sharing the queue through the database."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsxml.sandbox import SandboxConfig
from smsxml.server.settings import DispatchSettings, Settings
from smsxml.server.worker import run_worker

from ..conftest import FAST_SCHEDULE, free_port, wait_for
from .processes import smsxml, wait_http


def test_a_worker_that_would_not_dispatch_is_refused() -> None:
    """A worker with no dispatch threads would do nothing forever: a clear error at once."""
    with pytest.raises(ValueError, match="dispatch.workers"):
        run_worker(Settings(sandbox=False, dispatch=DispatchSettings(workers=0)))


class _Cluster:
    """Endpoints that only accept (`smsxml serve --no-dispatch`) and `smsxml worker`s on
    one fresh PostgreSQL database, sending to iSMS at ``sandbox_url`` (in this process or
    its own); every process is stopped by :meth:`stop`."""

    def __init__(
        self, tmp_path: Path, sandbox_url: str, *, workers: int, dispatch: str, endpoints: int = 1
    ) -> None:
        from .conftest import fresh_postgres

        self.sandbox_url, self.url = sandbox_url, fresh_postgres()
        self.ports = [free_port() for _ in range(endpoints)]
        self.config, self.log = tmp_path / "node.toml", tmp_path / "processes.log"
        self.config.write_text(
            f'database_url = "{self.url}"\npublic_url = "http://127.0.0.1:{self.ports[0]}"\n'
            'demo_credits = 1000000\nroutes = { "*" = ["isms"] }\n'
            f"[dispatch]\n{dispatch}\n"
            f'[providers.isms]\nkind = "isms"\nbase_url = "{sandbox_url}/isms"\n'
            'concurrency = 8\noptions = { username = "demo", password = "demo" }\n'
        )
        self.endpoints = [
            self._start("serve", "--no-dispatch", "--port", str(port)) for port in self.ports
        ]
        self.workers: list[subprocess.Popen[bytes]] = []
        try:
            for port, endpoint in zip(self.ports, self.endpoints, strict=True):
                healthz = f"http://127.0.0.1:{port}/healthz"  # migrated and serving
                wait_http(healthz, process=endpoint, log=self.log)
            self.workers = [self._start("worker") for _ in range(workers)]
        except BaseException:
            self.stop()
            raise

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        return smsxml(*args, "--no-sandbox", "--config", str(self.config), log=self.log)

    def send(self, numbers: list[str], connections: int = 4) -> None:
        """One SOAP send per number, over ``connections`` kept-alive connections spread
        over the endpoints."""
        import http.client
        from concurrent.futures import ThreadPoolExecutor

        def post_all(index: int) -> None:
            port = self.ports[index % len(self.ports)]
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                for number in numbers[index::connections]:
                    connection.request(
                        "POST", "/soap", _send_envelope(number), {"Content-Type": "text/xml"}
                    )
                    answer = connection.getresponse()
                    assert answer.status == 200 and b"<id>" in answer.read()
            finally:
                connection.close()

        with ThreadPoolExecutor(connections) as pool:
            list(pool.map(post_all, range(connections)))

    def sent(self) -> Counter[str]:
        """How many times the provider got each recipient (the sandbox's own count)."""
        return Counter(httpx.get(f"{self.sandbox_url}/_sandbox/sent/isms", timeout=30).json())

    def column(self, query: str) -> list[Any]:
        """The first column of ``query``'s rows, on a connection of its own."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url)
        try:
            with engine.connect() as db:
                return list(db.execute(text(query)).scalars())
        finally:
            engine.dispose()

    def scalar(self, query: str) -> Any:
        return self.column(query)[0]

    def queued(self) -> int:
        return int(self.scalar("SELECT count(*) FROM deliveries WHERE state = 'Queued'"))

    def stop(self) -> None:
        for process in (*self.endpoints, *self.workers):
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


def _send_envelope(number: str) -> bytes:
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        '<t:send xmlns:t="http://smsxml.org/isms/1"><username>demo</username>'
        f"<password>demo</password><from>Shop</from><to><recipients>{number}</recipients>"
        f"</to><message>hello {number}</message><coding>GSM</coding><flash>false</flash>"
        "</t:send></soap:Body></soap:Envelope>"
    ).encode()


def test_workers_on_postgresql_send_each_recipient_once(tmp_path: Path, sandbox: Any) -> None:
    """An endpoint that only accepts (`serve --no-dispatch`) and two `smsxml worker`s on one
    PostgreSQL database: 200 sends all reach the provider, each recipient exactly once,
    and no lease is left behind."""
    cluster = _Cluster(tmp_path, sandbox.url, workers=2, dispatch="batch = 20\nidle = 0.02")
    try:
        numbers = [f"30691{i:07d}" for i in range(1, 201)]
        cluster.send(numbers)
        wait_for(lambda: sum(cluster.sent().values()) >= len(numbers), timeout=60)
        wait_for(lambda: cluster.queued() == 0, timeout=30)
        assert cluster.sent() == Counter(dict.fromkeys(numbers, 1))
        accepted = "SELECT count(*) FROM delivery_events WHERE detail = 'accepted by isms'"
        assert cluster.scalar(accepted) == len(numbers)
        assert cluster.scalar("SELECT count(lease_owner) FROM deliveries") == 0
        log = cluster.log.read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]
    finally:
        cluster.stop()


@pytest.mark.slow  # 11 s: with the slow suite, which CI runs too
def test_a_worker_killed_mid_run_loses_nothing(tmp_path: Path, make_sandbox: Any) -> None:
    """kill -9 of one of two workers while it holds rows (calls of 100 ms in flight): every
    row still reaches the provider, the dead worker's within its lease (2 s here); only rows
    it held can go twice (sent, outcome not yet written). The test prints how many did."""
    slow = SandboxConfig(schedule=FAST_SCHEDULE).with_faults("isms", latency=0.1)
    sandbox = make_sandbox(slow)
    cluster = _Cluster(
        tmp_path, sandbox.url, workers=2, dispatch="batch = 20\nin_hand = 40\nlease = 2.0"
    )
    try:
        numbers = [f"30692{i:07d}" for i in range(1, 301)]
        cluster.send(numbers)
        victim = cluster.workers[0]
        held_by_victim = (
            f"SELECT recipient FROM deliveries WHERE lease_owner LIKE '%:{victim.pid}:%'"
        )
        wait_for(lambda: cluster.column(held_by_victim), timeout=30, interval=0.01)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        held = set(cluster.column(held_by_victim))
        wait_for(lambda: set(cluster.sent()) == set(numbers), timeout=60)
        wait_for(lambda: cluster.queued() == 0, timeout=30)
        twice = {number for number, count in cluster.sent().items() if count > 1}
        print(
            f"\nkill -9 mid-run: {len(numbers)} recipients, the dead worker held {len(held)}, "
            f"{len(twice)} sent twice"
        )
        assert twice <= held  # only rows with the dead worker went twice
        accepted = (
            "SELECT count(DISTINCT delivery_id) FROM delivery_events"
            " WHERE detail = 'accepted by isms'"
        )
        assert cluster.scalar(accepted) == len(numbers)
    finally:
        cluster.stop()


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Any:
    """`smsxml sandbox` in its own process (granian), credit for a load test; its URL."""
    port = free_port()
    config = tmp_path / "sandbox.toml"
    config.write_text(
        "[account]\ncredits = 1000000\n\n"
        "[schedule]\npending_after = 0.5\nfinal_after = 2.0\nfail_suffixes = []\n\n"
        "[faults.isms]\nlatency = 0.005\n"
    )
    process = smsxml("sandbox", "--port", str(port), "--config", str(config),
                      log=tmp_path / "sandbox.log")  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        credits = f"{url}/isms/api/http/credits.php?username=demo&password=demo"
        wait_http(credits, process=process, log=tmp_path / "sandbox.log")
        yield url
    finally:
        process.terminate()
        process.wait(15)


@pytest.mark.slow
@pytest.mark.parametrize("kill", [False, True], ids=["all-alive", "one-killed"])
def test_two_endpoints_and_three_workers_send_ten_thousand(
    tmp_path: Path, sandbox_process: str, kill: bool
) -> None:
    """Two endpoints that only accept and three workers on one PostgreSQL database, the
    provider in its own process: 10,000 single-recipient sends, split over both
    endpoints, are each taken by the provider exactly once. With one worker killed
    (kill -9) mid-run, every one still is, and those taken twice are among the rows that
    worker held — printed: the at-least-once window."""
    cluster = _Cluster(
        tmp_path,
        sandbox_process,
        workers=3,
        endpoints=2,
        dispatch="batch = 100\nin_hand = 300\nlease = 3.0",
    )
    try:
        numbers = [f"30693{i:07d}" for i in range(1, 10_001)]
        held: set[str] = set()
        if kill:
            victim = cluster.workers[0]
            owner = f"LIKE '%:{victim.pid}:%'"
            sending = threading.Thread(target=cluster.send, args=(numbers,))
            sending.start()
            wait_for(lambda: sum(cluster.sent().values()) >= 2_000, timeout=120, interval=0.1)
            holding = f"SELECT count(*) FROM deliveries WHERE lease_owner {owner}"
            wait_for(lambda: cluster.scalar(holding), timeout=60, interval=0.005)
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            held = set(
                cluster.column(f"SELECT recipient FROM deliveries WHERE lease_owner {owner}")
            )
            sending.join()
        else:
            cluster.send(numbers)
        wait_for(lambda: len(cluster.sent()) == len(numbers), timeout=300, interval=0.5)
        wait_for(lambda: cluster.queued() == 0, timeout=60)
        counts = cluster.sent()
        twice = {number for number, count in counts.items() if count > 1}
        print(f"\n10,000 sends, kill={kill}: the dead worker held {len(held)}, ", end="")
        print(f"{len(twice)} sent twice")
        assert set(counts) == set(numbers)
        assert twice <= held  # only rows with the dead worker went twice
        log = cluster.log.read_text(errors="replace")
        assert "deadlock" not in log and "renewing leases failed" not in log, log[-3000:]
        accepted = (
            "SELECT count(DISTINCT delivery_id) FROM delivery_events WHERE detail LIKE 'accepted%'"
        )
        assert cluster.scalar(accepted) == len(numbers)
    finally:
        cluster.stop()
