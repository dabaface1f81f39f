"""Benchmark: ``smsxml sandbox`` answering iSMS ``send.php``, against the floor.

What runs (loopback only; each server in its own process group, stopped at the end):

- the sandbox as users start it: ``smsxml sandbox --port P --config bench.toml``, the
  config giving the demo account 10^12 credits (every send is charged);
- the floor: a WSGI function answering ``ID:0000000001`` from a constant, under the same
  granian setup (``smsxml.sandbox.serve.granian_server``), started as this script with
  ``--serve floor``: what any WSGI application costs on that server;
- for reference (``--no-werkzeug`` skips it): the same sandbox on werkzeug's threaded
  server, as ``SandboxServer`` runs it in-process (tests, ``smsxml serve``) and as
  ``smsxml sandbox`` ran it before.

Load: ``wrk -t2 -c{4,16} -d{seconds}s --latency`` (``apt-get install wrk``) on one URL,
``/isms/api/http/send.php?username=demo&password=demo&from=Shop&to=306912345678&message=Hi``,
after a one-second warm-up. Printed: requests/s, p99, non-2xx answers and socket errors
per run, the sandbox's ratio to the floor, and a check that the balance went down by
the sends wrk completed plus at most one in flight per connection when a run stopped.

With ``--dlr`` every send also asks for delivery callbacks (``dlr-url``, as the bridge's
sends do), on a schedule that changes no state during the run: the sandbox then watches
every message sent so far, as it does under a dispatch load test.

    .venv/bin/python bench/sandbox.py [--seconds 5] [--no-werkzeug] [--dlr]

Target: ≥ 5,000 sends/s at 4 and at 16 connections on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SMSXML = Path(sys.executable).parent / "smsxml"
HOST = "127.0.0.1"
CREDITS = 10**12
SEND = "/isms/api/http/send.php?username=demo&password=demo&from=Shop&to=306912345678&message=Hi"
DLR = "&dlr-url=http%3A%2F%2F127.0.0.1%3A9%2Fdlr"
CREDITS_CALL = "/isms/api/http/credits.php?username=demo&password=demo"
CONNECTIONS = (4, 16)
TARGET = 5000.0


def floor(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The least a WSGI application can do: a constant answer of send.php's size."""
    start_response("200 OK", [("Content-Type", "text/html; charset=UTF-8")])
    return [b"ID:0000000001"]


def _floor_app() -> Callable[..., Iterable[bytes]]:
    return floor


@dataclass
class Run:
    """One wrk run."""

    server: str
    connections: int
    rps: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start(command: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start a server in its own process group, its output to ``log``, and wait until
    its port answers."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command} exited:\n{log.read_text(errors='replace')}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return process
        except OSError:
            time.sleep(0.05)
    stop(process)
    raise RuntimeError(f"{command} did not listen on {port} in 30 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT (Ctrl-C) first; the whole process group is killed if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wrk(url: str, connections: int, seconds: float) -> dict[str, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", url]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=seconds + 30)
    text = out.stdout

    def number(pattern: str, default: float | None = None) -> float:
        found = re.search(pattern, text)
        if found is None:
            if default is None:
                raise RuntimeError(f"wrk said:\n{text}{out.stderr}")
            return default
        return float(found.group(1))

    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", text)
    if p99 is None:
        raise RuntimeError(f"wrk said:\n{text}{out.stderr}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "rps": number(r"Requests/sec:\s+([\d.]+)"),
        "p99_ms": float(p99.group(1)) * scale,
        "requests": number(r"(\d+) requests in"),
        "non_2xx": number(r"Non-2xx or 3xx responses:\s+(\d+)", 0.0),
        "socket_errors": float(sum(int(n) for n in errors.groups())) if errors else 0.0,
    }


def measure(name: str, url: str, seconds: float) -> tuple[list[Run], int]:
    """wrk at each connection count, after a warm-up; also the requests wrk completed
    in all (warm-up included), to check the balance against."""
    completed = int(wrk(url, 4, 1)["requests"])  # warm-up: threads, caches
    runs = []
    for connections in CONNECTIONS:
        got = wrk(url, connections, seconds)
        completed += int(got["requests"])
        runs.append(
            Run(name, connections, got["rps"], got["p99_ms"], int(got["requests"]),
                int(got["non_2xx"]), int(got["socket_errors"]))
        )  # fmt: skip
    return runs, completed


def balance(base: str) -> float:
    with urllib.request.urlopen(base + CREDITS_CALL, timeout=10) as answer:
        return float(answer.read().decode().removeprefix("Credits:"))


def bench_server(
    name: str, command: list[str], port: int, seconds: float, log: Path, send: str
) -> list[Run]:
    """Measure one server on the path ``send``; for a sandbox, check that the balance went
    down by the sends wrk completed, plus at most one in flight per connection when each
    run stopped."""
    process = start(command, port, log)
    base = f"http://{HOST}:{port}"
    try:
        before = None if name == "floor" else balance(base)
        runs, completed = measure(name, base + send, seconds)
        if before is not None:
            charged = int(before - balance(base))
            in_flight = charged - completed
            verdict = "ok" if 0 <= in_flight <= 4 + sum(CONNECTIONS) else "MISMATCH"
            print(f"  {name}: {charged} sends charged = {completed} completed + "
                  f"{in_flight} in flight at the stops: {verdict}")  # fmt: skip
    finally:
        stop(process)
    return runs


def serve(kind: str, port: int, config: str) -> None:
    """``--serve floor|werkzeug``: the servers this script starts as its own children."""
    if kind == "floor":
        from smsxml.sandbox.serve import granian_server

        server = granian_server("bench.sandbox:floor", HOST, port)
        server.serve(target_loader=_floor_app, wrap_loader=False)
        return
    from smsxml.sandbox import SandboxConfig, SandboxServer

    try:
        SandboxServer(SandboxConfig.from_toml(config), host=HOST, port=port).serve_forever()
    except KeyboardInterrupt:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--no-werkzeug", action="store_true")
    parser.add_argument("--dlr", action="store_true", help="sends ask for delivery callbacks")
    parser.add_argument("--serve", choices=["floor", "werkzeug"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.config)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "bench.toml"
        schedule = "[schedule]\npending_after = 3600\nfinal_after = 7200\n" if args.dlr else ""
        config.write_text(f"[account]\ncredits = {CREDITS}\n{schedule}", encoding="utf-8")
        me = [sys.executable, str(Path(__file__).resolve())]
        servers = {
            "floor": me + ["--serve", "floor", "--port", "{port}"],
            "sandbox": [str(SMSXML), "sandbox", "--port", "{port}", "--config", str(config)],
        }
        if not args.no_werkzeug:
            servers["werkzeug"] = me + ["--serve", "werkzeug", "--port", "{port}",
                                        "--config", str(config)]  # fmt: skip
        runs: list[Run] = []
        for name, template in servers.items():
            port = free_port()
            command = [part.replace("{port}", str(port)) for part in template]
            log = Path(folder) / f"{name}.log"
            send = SEND + (DLR if args.dlr else "")
            runs += bench_server(name, command, port, args.seconds, log, send)
    report(runs, args.seconds, " with dlr-url" if args.dlr else "")


def report(runs: list[Run], seconds: float, extra: str = "") -> None:
    print(f"\n{os.cpu_count()} cores; wrk -t2, {seconds:g} s per run; iSMS send.php, "
          f"one recipient{extra}")  # fmt: skip
    print(f"{'server':<10}{'conns':>6}{'req/s':>10}{'p99 ms':>9}{'non-2xx':>9}"
          f"{'sock err':>10}{'/ floor':>9}")  # fmt: skip
    floors = {run.connections: run.rps for run in runs if run.server == "floor"}
    for run in runs:
        ratio = run.rps / floors[run.connections] if floors.get(run.connections) else 0.0
        print(f"{run.server:<10}{run.connections:>6}{run.rps:>10,.0f}{run.p99_ms:>9.2f}"
              f"{run.non_2xx:>9}{run.socket_errors:>10}{ratio:>9.2f}")  # fmt: skip
    sandbox = [run for run in runs if run.server == "sandbox"]
    verdict = all(run.rps >= TARGET and run.non_2xx == 0 for run in sandbox)
    print(f"target ≥ {TARGET:,.0f} req/s at {CONNECTIONS} connections, all 2xx: "
          f"{'met' if verdict else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
