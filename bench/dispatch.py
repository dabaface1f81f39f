"""Benchmark: dispatch, from ``Queued`` to accepted by the provider, against the provider's
own ceiling measured in the same run.

What runs (everything on this machine, loopback only):

- the provider: ``smsxml sandbox`` in its own process (iSMS, every route goes there),
  its schedule slowed down so that nothing turns final during a run (the figure is
  dispatch, not delivery), ``latency`` added to every answer for the 50 ms scenario;
- the bridge as users run it: ``smsxml serve --no-sandbox`` with dispatch and delivery
  tracking on (polling, callbacks), on its own SQLite file or PostgreSQL database;
- the queue, filled before the bridge starts, through the store's own
  ``acceptance.accept`` (what a SOAP ``send`` does once parsed): ``single`` = N messages
  to one recipient each, distinct numbers and texts; ``batch`` = messages of 1,000
  recipients, one text each.

Figures: SMS/s is the number of rows divided by the time from the first row accepted by
the provider to the last (the rows' own ``updated_at``: start-up is left out); ``wall``
is from the bridge answering ``/healthz`` to no row ``Queued``; CPU per SMS is the
bridge's CPU (``/proc``, process and children) from the first row sent to the last, and
the sandbox's beside it (both share the machine's two cores). The ceiling is the
sandbox answering ``send.php`` to wrk (``apt-get install wrk``) alone, before the run,
at the connections the dispatcher may use; the ratio is SMS/s over it (for ``batch``,
requests are what the ceiling counts, so the ratio is left out). With ``--accept-load``,
sends start once dispatch has sent its first row; ``accepted/s`` is SOAP sends the
endpoint answered per second meanwhile (wrk), and
``SMS/s then`` the rows dispatch sent in that same window: the target is both at once.

    .venv/bin/python bench/dispatch.py [--scenarios single0,single50,batch]
        [--count 3000] [--engine sqlite|postgresql] [--endpoint serve|gunicorn]
        [--workers 0,1,2] [--accept-load SECONDS] [--accept-connections 4]
        [--repeat 1] [--keep DIR]

Targets (2 cores, issue 10): ≥ 2,000 SMS/s per worker process single-recipient at 0 ms,
≥ 800 at 50 ms, ≥ 20,000 to a batching provider.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soap import (  # noqa: E402
    PASSWORD,
    PAYLOADS,
    USERNAME,
    WRK_LUA,
    cpu_seconds,
    free_port,
    median_range,
    run_wrk,
    send_envelope,
    tree_pids,
)
from sqlalchemy import Engine, create_engine  # noqa: E402

from smsxml.server.clock import utcnow  # noqa: E402
from smsxml.server.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SMSXML = str(Path(sys.executable).with_name("smsxml"))
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/smsxml_bench_dispatch"
SCENARIOS = {  # name: (provider latency in s, recipients per message)
    "single0": (0.0, 1),
    "single50": (0.05, 1),
    "batch": (0.0, 1000),
}


def wait_until(check: object, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def start_sandbox(workdir: Path, latency: float) -> tuple[subprocess.Popen[bytes], int]:
    config = workdir / "sandbox.toml"
    config.write_text(
        "[account]\ncredits = 1000000000000\n\n"
        "[schedule]\npending_after = 3600\nfinal_after = 7200\nfail_suffixes = []\n\n"
        f"[faults.isms]\nlatency = {latency}\n"
    )
    port = free_port()
    log = (workdir / "sandbox.log").open("wb")
    process = subprocess.Popen(
        [SMSXML, "sandbox", "--port", str(port), "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/isms/api/http/credits.php?username=demo&password=demo"
    wait_until(lambda: answers(base), 30, "the sandbox")
    return process, port


def ceiling(port: int, connections: int, seconds: float = 3.0) -> float:
    """send.php requests/s the sandbox answers alone (wrk), 0 if wrk is missing."""
    if shutil.which("wrk") is None:
        return 0.0
    url = (
        f"http://127.0.0.1:{port}/isms/api/http/send.php?username=demo&password=demo"
        "&from=Bench&to=306912345678&message=ceiling"
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
    return float(line.split()[1])


def database_url(workdir: Path, engine: str) -> str:
    if engine == "sqlite":
        return f"sqlite:///{workdir / 'bridge.sqlite3'}"
    from sqlalchemy import create_engine, text

    server, name = POSTGRES.rsplit("/", 1)
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        db.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES


def fill_queue(url: str, count: int, per_message: int) -> int:
    """``count`` recipients in messages of ``per_message``; returns the rows to come."""
    store = Store(url, synchronous="NORMAL")
    account = store.accounts.add(USERNAME, PASSWORD, 10**15)
    number = 306900000000
    for m in range(count // per_message):
        recipients = [str(number + m * per_message + r) for r in range(per_message)]
        store.acceptance.accept(
            account,
            sender="Bench",
            text=f"bench message {m}",
            coding="GSM",
            flash=False,
            recipients=recipients,
            parts=1,
        )
    store.close()
    return count // per_message * per_message


def remaining(db: Engine) -> int:
    """Rows still Queued or unexpanded (index searches only: this is polled during the
    run, on the machine it measures)."""
    with db.connect() as connection:
        queued = connection.exec_driver_sql(
            "SELECT count(*) FROM deliveries WHERE state = 'Queued'"
        ).scalar()
        listed = connection.exec_driver_sql(
            "SELECT coalesce(sum(recipients), 0) FROM messages WHERE pending IS NOT NULL"
        ).scalar()
    return int(queued or 0) + int(listed or 0)


def started_sending(db: Engine) -> bool:
    with db.connect() as connection:
        return (
            connection.exec_driver_sql(
                "SELECT 1 FROM deliveries WHERE state != 'Queued' LIMIT 1"
            ).first()
            is not None
        )


def sending_window(db: Engine) -> tuple[datetime | None, datetime | None]:
    """The first and last time a row left Queued (a scan: once, at the end)."""
    with db.connect() as connection:
        first, last = connection.exec_driver_sql(
            "SELECT min(updated_at), max(updated_at) FROM deliveries WHERE state != 'Queued'"
        ).one()
    return _time(first), _time(last)


def _time(value: datetime | str | None) -> datetime | None:
    return value if value is None or isinstance(value, datetime) else datetime.fromisoformat(value)


def start_bridge(
    workdir: Path,
    url: str,
    sandbox_port: int,
    concurrency: int,
    workers: int,
    endpoint: str = "serve",
) -> tuple[list[subprocess.Popen[bytes]], int]:
    """``smsxml serve`` (or gunicorn with the shipped configuration: ``endpoint``)
    dispatching itself (``workers`` 0), or an endpoint that only accepts and ``workers``
    ``smsxml worker`` processes; its port."""
    port = free_port()
    config = workdir / "bridge.toml"
    config.write_text(
        f'database_url = "{url}"\nport = {port}\nsandbox = false\ndemo = false\n'
        'sqlite_synchronous = "FULL"\n\n[routes]\n"*" = ["isms"]\n\n'
        f'[providers.isms]\nkind = "isms"\nbase_url = "http://127.0.0.1:{sandbox_port}/isms"\n'
        'rate_limit = 0\noptions = { username = "demo", password = "demo" }\n'
        f"concurrency = {concurrency}\n"
    )
    log = (workdir / "bridge.log").open("ab")
    if endpoint == "gunicorn":  # its dispatch process beside two endpoint workers
        gunicorn = [GUNICORN, "-c", str(ROOT / "server" / "gunicorn.conf.py")]
        env = {
            **os.environ,
            "SMSXML_CONFIG": str(config),
            "SMSXML_BIND": f"127.0.0.1:{port}",
            "SMSXML_WORKERS": "2",
            **({"SMSXML_DISPATCH__WORKERS": "0"} if workers else {}),
        }
        command = [*gunicorn, "smsxml.server.wsgi:application"]
        processes = [subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)]
    else:
        serve = [SMSXML, "serve", "--config", str(config)] + (["--no-dispatch"] * bool(workers))
        processes = [subprocess.Popen(serve, stdout=log, stderr=subprocess.STDOUT)]
    wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), 60, "the bridge")
    processes += [
        subprocess.Popen(
            [SMSXML, "worker", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        for _ in range(workers)
    ]
    return processes, port


def accept_load(workdir: Path, port: int, seconds: float, connections: int = 4) -> float:
    """SOAP sends to one recipient answered per second while dispatch runs (wrk, the send1
    payload of bench/soap.py, ``connections`` clients); 0 if wrk is missing."""
    if shutil.which("wrk") is None:
        return 0.0
    body = workdir / "send1.xml"
    body.write_bytes(send_envelope(["306912345678"]))
    lua = workdir / "post.lua"
    lua.write_text(WRK_LUA)
    result = run_wrk(port, body, PAYLOADS["send1"], seconds, connections, 2, lua, None)
    if result["bad"]:
        raise SystemExit(f"the endpoint refused sends: {result['sample']}")
    return float(result["ok"]) / (float(result["duration_us"]) / 1e6)


def run(
    scenario: str,
    engine: str,
    count: int,
    workdir: Path,
    concurrency: int,
    workers: int,
    accept_seconds: float,
    endpoint: str = "serve",
    accept_connections: int = 4,
) -> dict[str, float]:
    latency, per_message = SCENARIOS[scenario]
    sandbox, sandbox_port = start_sandbox(workdir, latency)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        limit = ceiling(sandbox_port, 64 if latency else 16)
        url = database_url(workdir, engine)
        fill_queue(url, count, per_message)
        processes, port = start_bridge(workdir, url, sandbox_port, concurrency, workers, endpoint)
        started = time.monotonic()
        db = create_engine(url)  # one engine for every poll of the queue
        try:
            # dispatch under way (its processes all started): the CPU and the accept load
            # are measured from here
            wait_until(lambda: started_sending(db), 120, "the first row sent")
            pids = [p for process in processes for p in tree_pids(process.pid)]
            cpu_start = cpu_seconds(pids)
            provider_cpu_start = cpu_seconds(tree_pids(sandbox.pid))
            roles = {"endpoint": [p for p in pids if not dispatches(p)]}
            roles["dispatch"] = [p for p in pids if dispatches(p)]
            roles["sandbox"] = tree_pids(sandbox.pid)
            before = {r: cpu_seconds(p) for r, p in roles.items()}
            load_started, load_from = time.monotonic(), utcnow()
            accepted = (
                accept_load(workdir, port, accept_seconds, accept_connections)
                if accept_seconds
                else 0.0
            )
            load_time = max(time.monotonic() - load_started, 1e-3)
            load_to = utcnow()
            # the cores each part used while the endpoint took sends: what the accept
            # figure had to share the machine with
            shares = {
                f"accept_{role}_cores": (cpu_seconds(p) - before[role]) / load_time
                for role, p in roles.items()
            }
            wait_until(lambda: remaining(db) == 0, 600, "an empty queue", interval=0.25)
            rows, (first, last) = rows_sent(db), sending_window(db)
            sent_meanwhile = sent_between(db, load_from, load_to) if accept_seconds else 0
        finally:
            db.dispose()
        wall = time.monotonic() - started
        cpu = cpu_seconds(pids) - cpu_start
        provider_cpu = cpu_seconds(tree_pids(sandbox.pid)) - provider_cpu_start
        window = max((last - first).total_seconds(), 1e-3) if first and last else wall
        rate = rows / window
        return {
            "sms_per_s": rate,
            "wall_sms_per_s": rows / wall,
            "cpu_us_per_sms": cpu / rows * 1e6,
            "provider_cpu_us_per_sms": provider_cpu / rows * 1e6,
            "ceiling": limit,
            "ratio": rate / limit if limit and per_message == 1 else 0.0,
            "accepted_per_s": accepted,
            # dispatch while the endpoint took sends: both at once is the target
            "sms_per_s_accepting": sent_meanwhile / load_time,
            **(shares if accept_seconds else {}),
        }
    finally:
        for process in (*processes, sandbox):
            if process.poll() is None:
                process.terminate()
                process.wait(30)


def dispatches(pid: int) -> bool:
    """Whether process ``pid`` dispatches (``smsxml worker``, or the dispatch process an
    endpoint starts beside itself, or that process's queue process on SQLite), not the
    endpoint."""
    return _dispatcher(pid) or _dispatcher(_parent(pid))


def _dispatcher(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return False
    return b"smsxml.server.worker" in argv or b"worker" in argv[:3]


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def sent_between(db: Engine, start: datetime, end: datetime) -> int:
    """Rows that left Queued between ``start`` and ``end`` (the bridge's naive UTC)."""
    sqlite = db.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    bounds = (start, end)
    with db.connect() as connection:
        sent = connection.exec_driver_sql(
            "SELECT count(*) FROM deliveries WHERE state != 'Queued'"
            f" AND updated_at >= {mark} AND updated_at <= {mark}",
            tuple(t.isoformat(" ", "microseconds") for t in bounds) if sqlite else bounds,
        ).scalar()
    return int(sent or 0)


def rows_sent(db: Engine) -> int:
    with db.connect() as connection:
        return int(connection.exec_driver_sql("SELECT count(*) FROM deliveries").scalar() or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="single0,single50,batch")
    parser.add_argument("--count", type=int, default=3000, help="recipients per scenario")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--concurrency", type=int, default=64, help="calls in flight to the provider"
    )
    parser.add_argument(
        "--workers",
        default="0",
        help="comma-separated counts of `smsxml worker` processes beside an endpoint that "
        "only accepts (0: `smsxml serve` dispatches itself)",
    )
    parser.add_argument(
        "--accept-load",
        type=float,
        default=0.0,
        help="seconds of SOAP sends (wrk) against the endpoint while it dispatches",
    )
    parser.add_argument(
        "--accept-connections",
        type=int,
        default=4,
        help="SOAP clients sending at once during --accept-load (each waits for its answer)",
    )
    parser.add_argument(
        "--endpoint",
        choices=("serve", "gunicorn"),
        default="serve",
        help="smsxml serve, or gunicorn with server/gunicorn.conf.py (two workers)",
    )
    parser.add_argument("--keep", type=Path, help="keep databases and logs in this folder")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print(
            "wrk not found (apt-get install wrk): no ceiling, ratio or accept load", file=sys.stderr
        )
    results: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.repeat):
        for scenario, workers in (
            (s, int(w)) for s in args.scenarios.split(",") for w in args.workers.split(",")
        ):
            count = max(args.count, 20_000) if scenario == "batch" else args.count
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
            workdir = Path(tempfile.mkdtemp(prefix=f"dispatch-{scenario}-", dir=args.keep))
            label = f"{scenario} w={workers}" if workers else scenario
            figures = run(
                scenario,
                args.engine,
                count,
                workdir,
                args.concurrency,
                workers,
                args.accept_load,
                args.endpoint,
                args.accept_connections,
            )
            results.setdefault(label, []).append(figures)
            if args.keep is None:
                shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"dispatch, {args.engine}, {args.endpoint} (medians [min–max] of {args.repeat}); "
        "w=N: N workers"
    )
    print(
        f"{'scenario':<14} {'SMS/s':>22} {'wall SMS/s':>12} {'CPU µs/SMS':>11} "
        f"{'sandbox µs':>11} {'ceiling req/s':>14} {'ratio':>6} {'accepted/s':>11} "
        f"{'SMS/s then':>11}"
    )
    for scenario, runs in results.items():
        figures = {key: [r[key] for r in runs] for key in runs[0]}
        print(
            f"{scenario:<14} {median_range(figures['sms_per_s']):>22} "
            f"{statistics.median(figures['wall_sms_per_s']):>12,.0f} "
            f"{statistics.median(figures['cpu_us_per_sms']):>11,.0f} "
            f"{statistics.median(figures['provider_cpu_us_per_sms']):>11,.0f} "
            f"{statistics.median(figures['ceiling']):>14,.0f} "
            f"{statistics.median(figures['ratio']):>6.2f} "
            f"{statistics.median(figures['accepted_per_s']):>11,.0f} "
            f"{statistics.median(figures['sms_per_s_accepting']):>11,.0f}"
        )
    for scenario, runs in results.items():
        if "accept_endpoint_cores" in runs[0]:
            used = {
                role: statistics.median(r[f"accept_{role}_cores"] for r in runs)
                for role in ("endpoint", "dispatch", "sandbox")
            }
            print(
                f"{scenario}: while accepting, cores used by the endpoint {used['endpoint']:.2f},"
                f" dispatch {used['dispatch']:.2f}, the sandbox {used['sandbox']:.2f}"
                f" (of {os.cpu_count()}; wrk and the database's own processes besides)"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
