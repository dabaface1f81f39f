"""Load: 50 concurrent SOAP clients for 60 s against the bridge under gunicorn, and the
server's memory at the start and at the end.

What runs (everything on this machine, loopback only):

- the bridge as bench/soap.py starts it (its helpers are imported, not copied):
  ``gunicorn -c server/gunicorn.conf.py smsxml.server.wsgi:application`` as shipped (one
  gthread worker per core, the writer process), the fast lane, its own SQLite file (WAL,
  ``synchronous=FULL``) or PostgreSQL database (``--engine``), an account made with
  ``smsxml accounts add`` before it starts, the dispatcher off and the only provider
  unreachable (what is loaded is the SOAP endpoint: parse, authenticate, charge, store
  durably, answer; bench/dispatch.py measures dispatch);
- the floor, unless ``--floor-seconds 0``: the same load, after the bridge's run, against
  bench/soap.py's minimal lxml WSGI endpoint (parses the envelope, reads every field,
  answers from a template, stores nothing) under the same gunicorn configuration.

The load: ``--clients`` closed-loop clients (each sends its next call when its answer is
in), each on its own kept-alive HTTP/1.1 connection (reconnecting when the server closes
it, as gunicorn's config does every 200 requests), spread over ``--processes`` forked
processes as threads. Each client alternates ``send`` to one recipient and ``query`` of
the message it has just sent, so half the calls write and half read. The client is a few
lines over a plain socket (prebuilt requests, Content-Length framing), to keep small the
share of the cores it takes from the server. Its CPU is printed beside the server's (per
process: master, each worker, the writer) and beside what every other process on the
machine took meanwhile (/proc/stat), so a reader sees which one ran out.

Every answer is checked: HTTP 200 and the expected element (``<id>…</id>`` for a send,
``<status>Queued</status>`` for a query) and no SOAP ``Fault``; anything else, socket
errors and timeouts included, is an error (there must be none; the exit status is 1 if
there is one). calls/s and latencies count the answers that passed.

RSS is the sum over the gunicorn process tree (master, workers, writer), read from
/proc: idle (started, no call yet), at the start of the measured run (after
``--warmup`` seconds of the same load: first logins, caches), every ``--sample``
seconds, and at the end. Flat means the end is close to the start.

    .venv/bin/python bench/load.py [--clients 50] [--seconds 60] [--engine sqlite|postgresql]
        [--processes 2] [--warmup 3] [--floor-seconds 15] [--workers N] [--keep DIR]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import soap  # noqa: E402  (bench/soap.py: the bridge's start, envelopes, /proc helpers)

QUERY_EXPECT = b"<status>Queued</status>"
FAULT = b"Fault>"
ID_RE = soap.ID_RE
FLOOR_ID = b"FLOOR0000001"


# --- one client --------------------------------------------------------------------------


def _request(port: int, body: bytes, action: str) -> bytes:
    """A whole HTTP/1.1 request (the send's is built once, each query's per call)."""
    head = "".join(f"{k}: {v}\r\n" for k, v in soap.soap_headers(action).items())
    return (
        f"POST {soap.PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Connection:
    """One kept-alive connection: send a prebuilt request, read one answer."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port, self.timeout = port, timeout
        self.sock: socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = self.sock
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the answer's headers")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, close = -1, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                raise ConnectionError(f"unexpected Transfer-Encoding: {value.strip()!r}")
        if length < 0:  # no length: the body ends with the connection
            close = True
            while chunk := sock.recv(65536):
                body += chunk
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed in the middle of the answer")
            body += chunk
        if close:
            self.close()
        return status, body


@dataclass
class Tally:
    """What one client (or all of them, merged) saw."""

    send_ok: int = 0
    query_ok: int = 0
    errors: int = 0  # calls that failed, each counted once; by kind (a 500 fault is both):
    non_2xx: int = 0
    faults: int = 0  # answers with a SOAP Fault, whatever their status
    unexpected: int = 0  # 2xx without the expected element
    socket_errors: int = 0  # refused, reset, timed out, malformed
    sample: str = ""
    send_latencies: list[float] = field(default_factory=list)
    query_latencies: list[float] = field(default_factory=list)

    def merge(self, other: Tally) -> None:
        counts = ("send_ok", "query_ok", "errors", "non_2xx", "faults", "unexpected")
        for name in (*counts, "socket_errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.sample = self.sample or other.sample
        self.send_latencies += other.send_latencies
        self.query_latencies += other.query_latencies


def _client(port: int, send: bytes, deadline: float, tally: Tally, timeout: float) -> None:
    """Send, then query the id it answered, until the deadline."""
    connection = Connection(port, timeout)
    message_id: bytes | None = None
    try:
        while True:
            if message_id is None:
                operation, request = "send", send
            else:
                query = soap.query_envelope(message_id.decode())
                operation, request = "query", _request(port, query, "query")
            started = time.perf_counter()
            if started >= deadline:
                return
            try:
                status, body = connection.exchange(request)
            except (OSError, ValueError, IndexError) as error:
                connection.close()
                tally.errors += 1
                tally.socket_errors += 1
                tally.sample = tally.sample or f"{operation}: {error!r}"
                message_id = None
                continue
            elapsed = time.perf_counter() - started
            if not 200 <= status < 300:
                tally.non_2xx += 1
                tally.faults += FAULT in body
            elif FAULT in body:
                tally.faults += 1
            elif operation == "send" and (found := _answered_id(body)):
                tally.send_ok += 1
                tally.send_latencies.append(elapsed)
                message_id = found
                continue
            elif operation == "query" and QUERY_EXPECT in body:
                tally.query_ok += 1
                tally.query_latencies.append(elapsed)
                message_id = None
                continue
            else:
                tally.unexpected += 1
            tally.errors += 1
            tally.sample = tally.sample or f"{operation}: {status} {body[:400]!r}"
            message_id = None
    finally:
        connection.close()


def _answered_id(body: bytes) -> bytes | None:
    """The id a send answered (the floor answers one fixed id)."""
    if found := ID_RE.search(body):
        return found.group(1)
    return FLOOR_ID if b"<id>FLOOR" in body else None


def _guarded(port: int, send: bytes, deadline: float, tally: Tally, timeout: float) -> None:
    """A client whose own bug is counted as an error, not lost with its thread."""
    try:
        _client(port, send, deadline, tally, timeout)
    except Exception as error:  # noqa: BLE001  (any bug here must show in the figures)
        tally.errors += 1
        tally.unexpected += 1
        tally.sample = tally.sample or f"client crashed: {error!r}"


def _process(
    port: int, clients: int, send: bytes, deadline: float, timeout: float, queue: Any
) -> None:
    """``clients`` threads in one forked process; its tally and CPU go to ``queue``."""
    tallies = [Tally() for _ in range(clients)]
    threads = [
        threading.Thread(target=_guarded, args=(port, send, deadline, t, timeout)) for t in tallies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    queue.put((asdict(total), usage.ru_utime + usage.ru_stime))


# --- a run -------------------------------------------------------------------------------


def rss_mb(pids: list[int]) -> float:
    """Resident memory of these processes, summed (MB)."""
    pages = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as handle:
                pages += int(handle.read().split()[1])
        except OSError:
            pass
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q / 100 * len(sorted_values)))]


@dataclass
class Result:
    server: str
    clients: int
    seconds: float
    calls: int
    sends: int
    queries: int
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    send_p99_ms: float
    query_p99_ms: float
    errors: int
    non_2xx: int
    faults: int
    unexpected: int
    socket_errors: int
    error_sample: str
    rss_idle_mb: float
    rss_start_mb: float
    rss_end_mb: float
    rss_samples_mb: list[float]
    server_cores: float  # CPU of the gunicorn tree / wall time
    client_cores: float  # CPU of the load processes / wall time
    other_cores: float  # CPU of everything else on the machine / wall time
    server_cores_by_process: list[tuple[str, float]]
    server_cpu_us_per_call: float
    client_cpu_us_per_call: float


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used (/proc/stat): beside the server's
    and the client's, what others took from the same cores during a run."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_names(pids: list[int]) -> dict[int, str]:
    """A short name per server process: master, worker, writer, dispatch."""
    names = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read()
        except OSError:
            continue
        names[pid] = (
            "writer"
            if b"smsxml.server.writer" in command
            else "dispatch"
            if b"smsxml.server.worker" in command
            else "master"
            if pid == pids[0]
            else "worker"
        )
    return names


@dataclass
class Span:
    """One load run: what the clients saw, and the CPU and memory around it."""

    tally: Tally
    wall: float
    server_cpu: float
    client_cpu: float
    machine_cpu: float
    by_process: list[tuple[str, float]]  # (name, CPU seconds) per server process
    rss_samples: list[float]


def load(
    server: soap.Server,
    clients: int,
    processes: int,
    seconds: float,
    send: bytes,
    sample_every: float = 0.0,
    timeout: float = 30.0,
) -> Span:
    """Run the load, sampling the server's RSS every ``sample_every`` seconds (0: never)."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    processes = max(1, min(processes, clients))
    shares = [clients // processes + (i < clients % processes) for i in range(processes)]
    pids = server.pids
    names = process_names(pids)
    cpu_before = {pid: soap.cpu_seconds([pid]) for pid in pids}
    machine_before = machine_busy_seconds()
    started = time.perf_counter()
    deadline = started + seconds
    workers = [
        context.Process(target=_process, args=(server.port, n, send, deadline, timeout, queue))
        for n in shares
    ]
    for worker in workers:
        worker.start()
    samples: list[float] = []
    if sample_every > 0:
        next_sample = started + sample_every
        while next_sample < deadline:
            time.sleep(max(0.0, next_sample - time.perf_counter()))  # a clock, not a wait
            samples.append(rss_mb(server.pids))
            next_sample += sample_every
    parts = [queue.get(timeout=seconds + 2 * timeout + 30) for _ in workers]
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - started
    machine_cpu = machine_busy_seconds() - machine_before
    by_process = [
        (names.get(pid, "?"), soap.cpu_seconds([pid]) - before)
        for pid, before in cpu_before.items()
    ]
    server_cpu = soap.cpu_seconds(server.pids) - sum(cpu_before.values())
    total = Tally()
    for values, _ in parts:
        total.merge(Tally(**values))
    client_cpu = sum(cpu for _, cpu in parts)
    return Span(total, wall, server_cpu, client_cpu, machine_cpu, by_process, samples)


def measure(server: soap.Server, send: bytes, args: argparse.Namespace, seconds: float) -> Result:
    """Idle RSS, warm-up, then the measured run."""
    idle = rss_mb(server.pids)
    if args.warmup > 0:
        warm = load(server, args.clients, args.processes, args.warmup, send).tally
        if warm.errors:
            raise SystemExit(f"{server.label}: warm-up errors: {warm.errors}: {warm.sample}")
    start = rss_mb(server.pids)
    span = load(server, args.clients, args.processes, seconds, send, args.sample)
    end = rss_mb(server.pids)
    tally, wall = span.tally, span.wall
    everything = sorted(tally.send_latencies + tally.query_latencies)
    calls = len(everything)
    ms = 1000.0
    return Result(
        server=server.label,
        clients=args.clients,
        seconds=wall,
        calls=calls,
        sends=tally.send_ok,
        queries=tally.query_ok,
        calls_per_s=calls / wall,
        p50_ms=percentile(everything, 50) * ms,
        p99_ms=percentile(everything, 99) * ms,
        max_ms=(everything[-1] if everything else 0.0) * ms,
        send_p99_ms=percentile(sorted(tally.send_latencies), 99) * ms,
        query_p99_ms=percentile(sorted(tally.query_latencies), 99) * ms,
        errors=tally.errors,
        non_2xx=tally.non_2xx,
        faults=tally.faults,
        unexpected=tally.unexpected,
        socket_errors=tally.socket_errors,
        error_sample=tally.sample,
        rss_idle_mb=idle,
        rss_start_mb=start,
        rss_end_mb=end,
        rss_samples_mb=span.rss_samples,
        server_cores=span.server_cpu / wall,
        client_cores=span.client_cpu / wall,
        other_cores=max(0.0, span.machine_cpu - span.server_cpu - span.client_cpu) / wall,
        server_cores_by_process=[(name, cpu / wall) for name, cpu in span.by_process],
        server_cpu_us_per_call=span.server_cpu / calls * 1e6 if calls else 0.0,
        client_cpu_us_per_call=span.client_cpu / calls * 1e6 if calls else 0.0,
    )


def show(result: Result) -> None:
    print(
        f"  {result.server:<6} {result.calls_per_s:>8,.0f} calls/s ({result.sends:,} sends + "
        f"{result.queries:,} queries in {result.seconds:.1f} s)  p50 {result.p50_ms:.1f} ms  "
        f"p99 {result.p99_ms:.1f} ms  max {result.max_ms:.1f} ms  "
        f"(p99 send {result.send_p99_ms:.1f}, query {result.query_p99_ms:.1f})"
    )
    print(
        f"         errors {result.errors} (non-2xx {result.non_2xx}, SOAP faults "
        f"{result.faults}, unexpected {result.unexpected}, socket {result.socket_errors})"
        + (f": {result.error_sample}" if result.error_sample else "")
    )
    print(
        f"         CPU: server {result.server_cores:.2f} cores "
        f"({result.server_cpu_us_per_call:,.0f} µs/call), client {result.client_cores:.2f} "
        f"cores ({result.client_cpu_us_per_call:,.0f} µs/call), other processes "
        f"{result.other_cores:.2f} cores, of {os.cpu_count()}; server by process: "
        + ", ".join(f"{name} {cores:.2f}" for name, cores in result.server_cores_by_process)
    )
    samples = " ".join(f"{x:.0f}" for x in result.rss_samples_mb)
    print(
        f"         RSS (gunicorn tree): idle {result.rss_idle_mb:.1f} MB, start "
        f"{result.rss_start_mb:.1f} MB, end {result.rss_end_mb:.1f} MB "
        f"({result.rss_end_mb - result.rss_start_mb:+.1f} MB)"
        + (f"; during the run: {samples}" if samples else ""),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (50)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds (60)")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--processes", type=int, default=2, help="client processes (2)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before RSS start (3)")
    parser.add_argument(
        "--floor-seconds", type=float, default=15.0, help="seconds on the floor (15; 0: none)"
    )
    parser.add_argument("--sample", type=float, default=10.0, help="RSS every N s (10; 0: none)")
    parser.add_argument("--workers", type=int, help="gunicorn workers (the shipped config's)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--json", type=Path, help="write the figures to this file ('-': stdout)")
    args = parser.parse_args()
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients and --seconds must be positive")
    soap.ENGINE = args.engine
    soap.WORKERS = args.workers

    workdir = Path(args.keep or tempfile.mkdtemp(prefix="smsxml-load-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    quiet = args.json is not None and str(args.json) == "-"
    out = sys.stderr if quiet else sys.stdout
    print("SOAP load benchmark (bench/load.py)", file=out)
    print(
        f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
        f"gunicorn -c server/gunicorn.conf.py, {args.workers or soap.default_workers()} "
        f"workers; store {args.engine} (durable commits), dispatcher off",
        file=out,
    )
    print(
        f"  load: {args.clients} clients (kept-alive connections, {args.processes} processes), "
        f"send 1 recipient / query alternately; {args.warmup:g} s warm-up, then "
        f"{args.seconds:g} s; floor {args.floor_seconds:g} s",
        file=out,
    )
    send = soap.send_envelope([soap.QUERY_MOBILE])
    results: list[Result] = []
    servers: list[soap.Server] = []
    stdout = sys.stdout
    try:
        if quiet:
            sys.stdout = sys.stderr  # the figures alone on stdout
        bridge = soap.start_bridge("bridge", True, workdir, soap.bench_config(workdir))
        servers.append(bridge)
        results.append(measure(bridge, _request(bridge.port, send, "send"), args, args.seconds))
        show(results[-1])
        bridge.stop()
        if args.floor_seconds > 0:
            (workdir / "floor_app.py").write_text(soap.FLOOR_APP)
            floor = soap.start_gunicorn(
                "floor", "floor_app:application", {}, workdir, chdir=workdir
            )
            servers.append(floor)
            results.append(
                measure(floor, _request(floor.port, send, "send"), args, args.floor_seconds)
            )
            show(results[-1])
    finally:
        sys.stdout = stdout
        for server in servers:
            server.stop()
    bridge_result = results[0]
    ratio = cpu_ratio = None
    if len(results) > 1 and results[1].calls_per_s and bridge_result.server_cpu_us_per_call:
        floor = results[1]
        ratio = bridge_result.calls_per_s / floor.calls_per_s
        # on a shared machine the CPU per call is the steadier figure of the two
        cpu_ratio = floor.server_cpu_us_per_call / bridge_result.server_cpu_us_per_call
        print(
            f"  bridge / floor: {ratio:.2f} in calls/s; {cpu_ratio:.2f} in server CPU per call "
            "(the floor's µs / the bridge's)",
            file=out,
        )
    figures = {
        "clients": args.clients,
        "engine": args.engine,
        "cpus": os.cpu_count(),
        "bridge": asdict(bridge_result),
        "floor": asdict(results[1]) if len(results) > 1 else None,
        "floor_ratio": ratio,
        "floor_cpu_ratio": cpu_ratio,
    }
    if args.json is not None:
        text = json.dumps(figures, indent=1)
        if quiet:
            print(text)
        else:
            args.json.write_text(text)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    if bridge_result.errors:
        raise SystemExit(f"{bridge_result.errors} errors")  # exit status 1


if __name__ == "__main__":
    main()
