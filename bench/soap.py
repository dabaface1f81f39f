"""Benchmark: the SOAP bridge's ``send`` and ``query`` under gunicorn, against the floor.

What runs (everything on this machine, loopback only):

- the bridge, as in production: ``gunicorn -c server/gunicorn.conf.py
  smsxml.server.wsgi:application`` as shipped (one gthread worker of 4 threads per core,
  ``--workers`` to change it, and the writer process that commits every worker's sends;
  its CPU counts as the server's), its own temporary SQLite file
  in WAL mode with ``synchronous=FULL`` (a send is answered only once committed and
  fsynced), once with the fast lane (the production setting) and, with ``--lane both``
  or ``spyne``, once more with ``SMSXML_FAST_LANE=false`` (everything through spyne),
  each with its own database;
- the floor: a minimal hand-written lxml WSGI function (written to the temporary folder
  as ``floor_app.py``) that parses the same envelope, reads every field and every
  recipient, and answers from a ``%`` template, under the same gunicorn configuration
  (research/perf-calibration.md §1 and its appendix). It stores nothing.

The dispatcher does not run during the benchmark: ``[dispatch] workers = 0``, and the
only provider (net2sms kind, every route) points at ``127.0.0.1:9``, where nothing
listens, with polling every hour. What is measured is acceptance: parse, schema check,
authentication, charge, the message with its recipient list committed durably, answer.
The dispatcher later turns the list into one ``deliveries`` row per recipient (expand);
that cost is not in these figures.
Dispatch competes for the same SQLite writer and CPU; it is measured elsewhere.
The account is made with ``smsxml accounts add bench --credits 10^15`` before the
servers start (no demo account).

Payloads (zeep-style SOAP 1.1 document/literal envelopes, built once): ``query`` of a
message stored before the runs (its recipient, state Queued), ``send`` to 1 recipient,
``send`` to 10 000 distinct valid Greek mobiles (3069…). Load: ``wrk`` with a Lua script
when it is installed (``apt-get install wrk``), else Python processes (one per
connection) with http.client keep-alive; the output says which. The gthread workers
keep connections alive, as most SOAP clients do. Every answer is checked: HTTP 200 and
the expected element (``<status>Queued</status>``, ``<id>…</id>``); anything else is a bug
and is reported.
After each send run, every id the bridge answered is looked up in its database: the
message row and exactly its recipients (its list, or delivery rows once expanded) must
be there. Rows are
then deleted (``--keep-rows`` keeps them), so every run starts with the same table size.

Each repetition runs every payload on every server, interleaved (floor, fast, spyne,
then the reverse order on the next repetition); ratios are taken per repetition, then
the median is printed. Figures are medians [min–max] over the repetitions; p50/p99 are
wrk's (per call, including queueing at ``--connections``); ``srv µs/call`` is the CPU of
the gunicorn master and workers (``/proc``) divided by the calls; ``cli`` the load
generator's CPU in cores.

    .venv/bin/python bench/soap.py [--duration 8] [--repeat 3] [--connections 4]
                                   [--lane fast|spyne|both] [--client auto|wrk|python] [--workers N]
                                   [--payloads query,send1,send10k] [--keep DIR] [--json FILE]

Targets (2-core machine, fast lane): ``query`` ≥ 4 000 calls/s with p99 ≤ 5 ms and at
least half the floor; ``send`` to 1 recipient, stored durably, ≥ 2 500 calls/s; ``send``
to 10 000 recipients, every one stored, ≥ 250 000 recipients/s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GUNICORN_CONF = ROOT / "server" / "gunicorn.conf.py"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "http://smsxml.org/isms/1"
PATH = "/soap"
USERNAME, PASSWORD = "bench", "bench-Pa55word"
CREDITS = 10**15
QUERY_MOBILE = "306944000000"
ID_RE = re.compile(rb"<id>([A-Z2-7]{12})</id>")

TARGETS = {  # what each payload must reach (fast lane)
    "query_calls": 4000.0,
    "query_p99_ms": 5.0,
    "query_floor_ratio": 0.5,
    "send1_calls": 2500.0,
    "send10k_rcpt": 250_000.0,
}

# --- the floor ---------------------------------------------------------------------------

FLOOR_APP = '''\
"""The floor: the least a WSGI endpoint can do to answer these envelopes with lxml."""
from lxml import etree

PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
BODY = "{http://schemas.xmlsoap.org/soap/envelope/}Body"
QUERY = "{http://smsxml.org/isms/1}query"
RESP = (
    '<?xml version="1.0" encoding="UTF-8"?>\\n'
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    '<tns:%(op)sResponse xmlns:tns="http://smsxml.org/isms/1"><%(field)s>%(value)s</%(field)s>'
    "</tns:%(op)sResponse></soap:Body></soap:Envelope>"
)
HEADERS = "text/xml; charset=utf-8"


def application(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    root = etree.fromstring(environ["wsgi.input"].read(length), PARSER)
    op = root.find(BODY)[0]
    if op.tag == QUERY:
        fields = [op.findtext(n) for n in ("username", "password", "message_id", "mobile")]
        out = RESP % {"op": "query", "field": "status", "value": "Queued"}
    else:
        names = ("username", "password", "from", "message", "coding", "flash")
        fields = [op.findtext(n) for n in names]
        recipients = [r.text for r in op.find("to").iterchildren("recipients")]
        out = RESP % {"op": "send", "field": "id", "value": "FLOOR%07d" % len(recipients)}
    body = out.encode()
    start_response("200 OK", [("Content-Type", HEADERS), ("Content-Length", str(len(body)))])
    return [body]
'''

# --- wrk ---------------------------------------------------------------------------------

WRK_LUA = r"""
local f = assert(io.open(os.getenv("ENVFILE"), "rb"))
wrk.method = "POST"; wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
wrk.headers["SOAPAction"] = os.getenv("SOAPACTION")
local expect = os.getenv("EXPECT")
local idprefix = os.getenv("IDFILE")
local threads, n = {}, 0

function setup(thread)
  n = n + 1; thread:set("tid", n); table.insert(threads, thread)
end

ok_count, bad_count, bad_sample = 0, 0, ""
local ids

function init(args)
  if idprefix and idprefix ~= "" then ids = assert(io.open(idprefix .. "." .. tid, "w")) end
end

function response(status, headers, body)
  if status == 200 and string.find(body, expect, 1, true) then
    ok_count = ok_count + 1
    if ids then
      ids:write((string.match(body, "<id>([^<]*)</id>") or "?"), "\n"); ids:flush()
    end
  else
    bad_count = bad_count + 1
    if bad_sample == "" then bad_sample = status .. " " .. string.sub(body or "", 1, 400) end
  end
end

local function clean(text)  -- JSON-safe
  return (string.gsub(text, '[^%w <>/:=%.%-_]', '?'))
end

function done(summary, latency, requests)
  local ok, bad, sample = 0, 0, ""
  for _, t in ipairs(threads) do
    ok = ok + t:get("ok_count"); bad = bad + t:get("bad_count")
    local s = t:get("bad_sample"); if sample == "" and s then sample = s end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"ok":%d,"bad":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"sample":"%s"}\n',
    summary.requests, summary.duration, ok, bad,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, clean(sample)))
end
"""

# --- envelopes ---------------------------------------------------------------------------


def envelope(operation: str, inner: str) -> bytes:
    """A SOAP 1.1 document/literal request as zeep writes it."""
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        f'<soap-env:Envelope xmlns:soap-env="{SOAP_ENV}"><soap-env:Body>'
        f'<ns0:{operation} xmlns:ns0="{TNS}">{inner}</ns0:{operation}>'
        "</soap-env:Body></soap-env:Envelope>"
    ).encode()


def send_envelope(recipients: list[str]) -> bytes:
    to = "".join(f"<recipients>{r}</recipients>" for r in recipients)
    return envelope(
        "send",
        f"<username>{USERNAME}</username><password>{PASSWORD}</password><from>Shop</from>"
        f"<to>{to}</to><message>Your parcel arrives tomorrow. Reply STOP to opt out.</message>"
        "<coding>GSM</coding><flash>false</flash>",
    )


def query_envelope(message_id: str) -> bytes:
    return envelope(
        "query",
        f"<username>{USERNAME}</username><password>{PASSWORD}</password>"
        f"<message_id>{message_id}</message_id><mobile>{QUERY_MOBILE}</mobile>",
    )


def greek_mobiles(count: int) -> list[str]:
    """``count`` distinct valid Greek mobiles: 30 69x xxx xxxx."""
    return [f"3069{4 + (i // 10_000_000) % 6}{i % 10_000_000:07d}" for i in range(count)]


@dataclass(frozen=True)
class Payload:
    name: str
    operation: str
    recipients: int  # 0 for query
    expect: str


PAYLOADS = {
    "query": Payload("query", "query", 0, "<status>Queued</status>"),
    "send1": Payload("send 1", "send", 1, "<id>"),
    "send10k": Payload("send 10 000", "send", 10_000, "<id>"),
}

# --- servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as handle:
                    todo.extend(int(c) for c in handle.read().split())
        except OSError:
            pass
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (threads included)."""
    ticks = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    label: str  # floor, fast, spyne
    port: int
    process: subprocess.Popen[bytes]
    database: str | None = None  # the bridge's database URL
    query_id: str = ""
    log: Path | None = None

    @property
    def pids(self) -> list[int]:
        return tree_pids(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def bench_config(workdir: Path) -> Path:
    """The bridge's TOML for the bench: no dispatch, one unreachable provider."""
    path = workdir / "bench.toml"
    path.write_text(
        "demo = false\n"
        "sandbox = false\n"
        "[providers.nowhere]\n"
        'kind = "net2sms"\n'
        'base_url = "http://127.0.0.1:9/"\n'
        'options = { key = "bench" }\n'
        "rate_limit = 0.0\n"
        "poll_interval = 3600.0\n"
        "[routes]\n"
        '"*" = ["nowhere"]\n'
        "[dispatch]\n"
        "workers = 0\n"
    )
    return path


WORKERS: int | None = None  # --workers; None: the shipped config decides


def default_workers() -> int:
    """How many workers the shipped gunicorn config starts on this machine."""
    settings: dict[str, Any] = {"__file__": str(GUNICORN_CONF)}
    exec(compile(GUNICORN_CONF.read_text(), str(GUNICORN_CONF), "exec"), settings)
    return int(settings["workers"])


def start_gunicorn(
    label: str, app: str, env: dict[str, str], workdir: Path, chdir: Path | None = None
) -> Server:
    port = free_port()
    log = workdir / f"{label}.log"
    full_env = os.environ | env | {"SMSXML_BIND": f"127.0.0.1:{port}"}
    if WORKERS:
        full_env["SMSXML_WORKERS"] = str(WORKERS)
    argv = [str(BIN / "gunicorn"), "-c", str(GUNICORN_CONF)]
    if chdir is not None:
        argv += ["--chdir", str(chdir)]
    argv.append(app)
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(label, port, process, log=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{label}: gunicorn exited\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise SystemExit(f"{label}: gunicorn did not listen within 30 s\n{log.read_text()[-3000:]}")


ENGINE = "sqlite"  # --engine
#: the PostgreSQL server the bench makes its databases on (one per lane, dropped first)
POSTGRES = os.environ.get("SMSXML_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")


def bench_database(label: str, workdir: Path) -> str:
    """A fresh database for one lane: a SQLite file, or a PostgreSQL database."""
    if ENGINE == "sqlite":
        return f"sqlite:///{workdir / f'{label}.sqlite3'}"
    from sqlalchemy import create_engine, text

    name = f"smsxml_bench_soap_{label}"
    admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        db.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{POSTGRES}/{name}"


def start_bridge(label: str, fast_lane: bool, workdir: Path, config: Path) -> Server:
    url = bench_database(label, workdir)
    made = subprocess.run(
        [
            str(BIN / "smsxml"),
            "accounts",
            "add",
            USERNAME,
            "--credits",
            str(CREDITS),
            "--password-stdin",
            "--database-url",
            url,
        ],
        input=PASSWORD.encode(),
        capture_output=True,
        cwd=ROOT,
    )
    if made.returncode:
        raise SystemExit(f"smsxml accounts add failed: {made.stderr.decode()}")
    env = {
        "SMSXML_CONFIG": str(config),
        "SMSXML_DATABASE_URL": url,
        "SMSXML_FAST_LANE": "true" if fast_lane else "false",
        "SMSXML_SQLITE_SYNCHRONOUS": "FULL",
    }
    server = start_gunicorn(label, "smsxml.server.wsgi:application", env, workdir)
    server.database = url
    return server


def post(port: int, body: bytes, action: str, timeout: float = 60) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", PATH, body, soap_headers(action))
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def soap_headers(action: str) -> dict[str, str]:
    return {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{TNS}/{action}"'}


# --- load generators ---------------------------------------------------------------------


@dataclass
class Run:
    server: str
    payload: str
    rep: int
    calls: int = 0  # answered with 200 and the expected element
    bad: int = 0  # anything else: a bug
    errors: int = 0  # socket errors and timeouts
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    server_cpu_us: float = 0.0  # per call
    client_cores: float = 0.0
    sample: str = ""
    ids: list[str] = field(default_factory=list, repr=False)
    stored: str = ""

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


def wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return out.split(" [")[0].strip()


def run_wrk(
    port: int,
    body_file: Path,
    payload: Payload,
    duration: float,
    connections: int,
    threads: int,
    lua: Path,
    id_prefix: Path | None,
) -> dict[str, Any]:
    env = os.environ | {
        "ENVFILE": str(body_file),
        "SOAPACTION": f'"{TNS}/{payload.operation}"',
        "EXPECT": payload.expect,
        "IDFILE": str(id_prefix) if id_prefix else "",
    }
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "30s",
        "-s",
        str(lua),
        f"http://127.0.0.1:{port}{PATH}",
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if done.returncode or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(line[len("BENCHJSON ") :])
    ids: list[str] = []
    if id_prefix is not None:
        for part in sorted(id_prefix.parent.glob(id_prefix.name + ".*")):
            ids.extend(part.read_text().split())
            part.unlink()
    result["ids"] = ids
    return result


def _py_client(
    port: int, body: bytes, action: str, expect: bytes, deadline: float, queue: Any
) -> None:
    headers = soap_headers(action)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    ok = bad = errors = 0
    sample = ""
    ids: list[str] = []
    while True:
        started = time.perf_counter()
        if started >= deadline:
            break
        try:
            connection.request("POST", PATH, body, headers)
            answer = connection.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            connection.close()
            continue
        latencies.append(time.perf_counter() - started)
        if answer.status == 200 and expect in data:
            ok += 1
            if expect == b"<id>":
                found = re.search(rb"<id>([^<]*)</id>", data)
                ids.append(found.group(1).decode() if found else "?")
        else:
            bad += 1
            sample = sample or f"{answer.status} {data[:400]!r}"
        # http.client reconnects by itself after a "Connection: close" answer
    connection.close()
    queue.put((ok, bad, errors, sample, latencies, ids))


def run_python(
    port: int, body: bytes, payload: Payload, duration: float, connections: int
) -> dict[str, Any]:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    started = time.perf_counter()
    deadline = started + duration
    workers = [
        context.Process(
            target=_py_client,
            args=(port, body, payload.operation, payload.expect.encode(), deadline, queue),
        )
        for _ in range(connections)
    ]
    for worker in workers:
        worker.start()
    parts = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    latencies = sorted(x for part in parts for x in part[4])

    def pct(q: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))] * 1e6

    return {
        "requests": len(latencies),
        "duration_us": elapsed * 1e6,
        "ok": sum(p[0] for p in parts),
        "bad": sum(p[1] for p in parts),
        "connect": 0,
        "read": sum(p[2] for p in parts),
        "write": 0,
        "status": 0,
        "timeout": 0,
        "p50_us": pct(50),
        "p99_us": pct(99),
        "max_us": latencies[-1] * 1e6 if latencies else 0.0,
        "sample": next((p[3] for p in parts if p[3]), ""),
        "ids": [i for p in parts for i in p[5]],
    }


# --- checks on the database --------------------------------------------------------------


def verify_stored(url: str, ids: list[str], recipients: int, query_id: str) -> str:
    """Every answered id has its message row and exactly ``recipients`` recipients
    stored: delivery rows, or the message's list not yet expanded into rows (the
    dispatcher expands it; it does not run during the bench)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    stored = (  # rows, plus the entries of a list not expanded yet
        "(SELECT count(*) FROM deliveries d WHERE d.message_id = a.id)"
        " + CASE WHEN m.pending IS NULL THEN 0"
        " ELSE length(m.pending) - length(replace(m.pending, :nl, '')) + 1 END"
    )
    try:
        with engine.begin() as db:
            db.execute(text("CREATE TEMP TABLE answered (id VARCHAR(32) PRIMARY KEY)"))
            if ids:
                db.execute(
                    text("INSERT INTO answered VALUES (:id) ON CONFLICT DO NOTHING"),
                    [{"id": i} for i in ids],
                )
            distinct = db.execute(text("SELECT count(*) FROM answered")).scalar()
            missing = db.execute(
                text(
                    "SELECT count(*) FROM answered a LEFT JOIN messages m ON m.id = a.id"
                    " WHERE m.id IS NULL"
                )
            ).scalar()
            wrong = db.execute(
                text(
                    "SELECT count(*) FROM answered a JOIN messages m ON m.id = a.id "
                    f"WHERE m.recipients != :n OR {stored} != :n"
                ),
                {"n": recipients, "nl": "\n"},
            ).scalar()
            rows = db.execute(
                text(
                    f"SELECT coalesce(sum({stored}), 0) FROM answered a"
                    " JOIN messages m ON m.id = a.id"
                ),
                {"nl": "\n"},
            ).scalar()
            total_messages = db.execute(
                text("SELECT count(*) FROM messages WHERE id != :q"), {"q": query_id}
            ).scalar()
    finally:
        engine.dispose()
    expected = len(ids) * recipients
    ok = distinct == len(ids) and missing == 0 and wrong == 0 and rows == expected
    verdict = "ok" if ok else "MISMATCH"
    text_ = (
        f"{verdict}: {len(ids)} ids answered ({distinct} distinct), {missing} missing, "
        f"{wrong} with a wrong count; {rows}/{expected} recipients stored; "
        f"{total_messages} messages in the db (answers cut off at the end of a run "
        "may add a few)"
    )
    return text_


def fsync_probe(workdir: Path, commits: int = 200) -> float:
    """µs per durable one-row commit (SQLite WAL, synchronous=FULL) on the disk the
    databases are on: the floor of a durable ``send`` when every send commits alone."""
    path = workdir / "fsync-probe.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        started = time.perf_counter()
        for _ in range(commits):
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t (v) VALUES ('x')")
            db.execute("COMMIT")
        return (time.perf_counter() - started) / commits * 1e6
    finally:
        db.close()


def clear_rows(url: str, query_id: str) -> None:
    """Delete every message but the one ``query`` asks about (same table size each run)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as db:
            for statement in (
                "DELETE FROM delivery_events WHERE delivery_id IN"
                " (SELECT id FROM deliveries WHERE message_id != :q)",
                "DELETE FROM deliveries WHERE message_id != :q",
                "DELETE FROM ledger WHERE message_id IS NOT NULL AND message_id != :q",
                "DELETE FROM messages WHERE id != :q",
            ):
                db.execute(text(statement), {"q": query_id})
        if ENGINE == "sqlite":
            with engine.connect() as db:
                db.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()


# --- the run -----------------------------------------------------------------------------


def median_range(values: list[float], fmt: str = "{:,.0f}") -> str:
    if not values:
        return "-"
    med = fmt.format(statistics.median(values))
    if len(values) == 1:
        return med
    return f"{med} [{fmt.format(min(values))}–{fmt.format(max(values))}]"


def measure(
    server: Server,
    payload: Payload,
    body: bytes,
    body_file: Path,
    rep: int,
    args: argparse.Namespace,
    workdir: Path,
    lua: Path,
    duration: float,
) -> Run:
    run = Run(server.label, payload.name, rep)
    want_ids = payload.operation == "send" and server.database is not None
    id_prefix = workdir / f"ids-{server.label}" if want_ids else None
    pids = server.pids
    cpu_before = cpu_seconds(pids)
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    if args.client == "wrk":
        result = run_wrk(
            server.port,
            body_file,
            payload,
            duration,
            args.connections,
            args.threads,
            lua,
            id_prefix,
        )
    else:
        result = run_python(server.port, body, payload, duration, args.connections)
    wall = time.perf_counter() - wall
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_after = cpu_seconds(pids)
    if sorted(server.pids) != sorted(pids):
        print(f"  warning: {server.label}: a gunicorn worker was replaced during the run")
    run.calls = int(result["ok"])
    run.bad = int(result["bad"])
    run.errors = sum(int(result[k]) for k in ("connect", "read", "write", "timeout"))
    run.seconds = float(result["duration_us"]) / 1e6
    run.p50_ms = float(result["p50_us"]) / 1000
    run.p99_ms = float(result["p99_us"]) / 1000
    run.max_ms = float(result["max_us"]) / 1000
    run.sample = str(result["sample"])
    run.ids = list(result["ids"])
    total = run.calls + run.bad
    run.server_cpu_us = (cpu_after - cpu_before) / total * 1e6 if total else 0.0
    client_cpu = (usage_after.ru_utime - usage_before.ru_utime) + (
        usage_after.ru_stime - usage_before.ru_stime
    )
    run.client_cores = client_cpu / wall if wall else 0.0
    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run (8)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (3)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent connections (4)")
    parser.add_argument("--lane", choices=("fast", "spyne", "both"), default="both")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument(
        "--workers", type=int, help="gunicorn workers (default: the shipped config's, one per core)"
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds per server and payload")
    parser.add_argument(
        "--payloads", default="query,send1,send10k", help="comma-separated: query,send1,send10k"
    )
    parser.add_argument("--keep-rows", action="store_true", help="do not delete rows between runs")
    parser.add_argument(
        "--engine",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the bridge's database: a SQLite file (WAL, synchronous=FULL), or PostgreSQL "
        "at SMSXML_BENCH_POSTGRES (default postgres@127.0.0.1:5432), a database per lane",
    )
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (dbs, logs)")
    parser.add_argument("--json", type=Path, help="write every run's figures to this file")
    args = parser.parse_args()

    global WORKERS, ENGINE
    WORKERS = args.workers
    ENGINE = args.engine
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "python"
    payload_keys = [p.strip() for p in args.payloads.split(",") if p.strip()]
    unknown = [p for p in payload_keys if p not in PAYLOADS]
    if unknown:
        parser.error(f"unknown payload(s): {', '.join(unknown)}")
    lanes = {"fast": ["fast"], "spyne": ["spyne"], "both": ["fast", "spyne"]}[args.lane]

    workdir = Path(args.keep or tempfile.mkdtemp(prefix="smsxml-soap-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    lua = workdir / "post.lua"
    lua.write_text(WRK_LUA)
    (workdir / "floor_app.py").write_text(FLOOR_APP)
    config = bench_config(workdir)

    recipients_10k = greek_mobiles(10_000)
    assert len(set(recipients_10k)) == 10_000
    bodies: dict[str, bytes] = {
        "send1": send_envelope([QUERY_MOBILE]),
        "send10k": send_envelope(recipients_10k),
    }

    client_text = (
        f"wrk ({wrk_version()}, Lua check of every answer, -t{args.threads} -c{args.connections})"
        if args.client == "wrk"
        else f"Python http.client, {args.connections} processes (keep-alive; the server closes)"
    )
    print("SOAP bridge benchmark (bench/soap.py)")
    print(
        f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
        f"Python {platform.python_version()}, lxml {version('lxml')}, "
        f"gunicorn {version('gunicorn')}, SQLite {sqlite3.sqlite_version}"
    )
    print(
        f"  servers: gunicorn -c server/gunicorn.conf.py, {args.workers or default_workers()}"
        " gthread workers x 4 threads each; "
        f"lanes: {', '.join(lanes)} + floor"
    )
    print(
        "  store: "
        + (
            "SQLite WAL, synchronous=FULL, one temp file per lane"
            if args.engine == "sqlite"
            else "PostgreSQL (synchronous_commit as the server has it), one database per lane"
        )
        + "; dispatcher off (workers=0),"
    )
    print("         the only provider at 127.0.0.1:9 (nothing listens)")
    print(
        f"  load: {client_text}; {args.repeat} × {args.duration:g} s per server and payload, "
        "interleaved"
    )
    print(f"  work folder: {workdir}")

    servers: list[Server] = []
    runs: list[Run] = []
    fsyncs: list[float] = []
    try:
        servers.append(start_gunicorn("floor", "floor_app:application", {}, workdir, chdir=workdir))
        for lane in lanes:
            servers.append(start_bridge(lane, lane == "fast", workdir, config))
        # one stored message for query to find (each bridge has its own database)
        for server in servers:
            if server.database is None:
                server.query_id = "FLOOR0000001"
                continue
            status, answer = post(server.port, bodies["send1"], "send")
            found = ID_RE.search(answer)
            if status != 200 or not found:
                raise SystemExit(f"{server.label}: setup send failed: {status} {answer[:500]!r}")
            server.query_id = found.group(1).decode()
        files: dict[tuple[str, str], Path] = {}
        for server in servers:
            for key in payload_keys:
                body = query_envelope(server.query_id) if key == "query" else bodies[key]
                path = workdir / f"{key}-{server.label}.xml"
                path.write_bytes(body)
                files[(server.label, key)] = path
                status, answer = post(server.port, body, PAYLOADS[key].operation)
                if status != 200 or PAYLOADS[key].expect.encode() not in answer:
                    raise SystemExit(
                        f"{server.label} {key}: unexpected answer {status} {answer[:500]!r}"
                    )
        sizes = ", ".join(
            f"{k} {len(files[(servers[0].label, k)].read_bytes()):,} B" for k in payload_keys
        )
        print(f"  envelopes: {sizes}")

        # warm-up: both workers of every server build their app and touch every path
        if args.warmup > 0:
            for server in servers:
                for key in payload_keys:
                    path = files[(server.label, key)]
                    warm = measure(
                        server,
                        PAYLOADS[key],
                        path.read_bytes(),
                        path,
                        -1,
                        args,
                        workdir,
                        lua,
                        args.warmup,
                    )
                    if warm.bad or warm.errors:
                        raise SystemExit(
                            f"warm-up {server.label} {key}: {warm.bad} bad answers, "
                            f"{warm.errors} errors: {warm.sample}"
                        )
                if server.database is not None and not args.keep_rows:
                    clear_rows(server.database, server.query_id)

        print()
        for rep in range(args.repeat):
            order = servers if rep % 2 == 0 else list(reversed(servers))
            probe = fsync_probe(workdir)
            fsyncs.append(probe)
            print(
                f"  rep {rep + 1}: load average {os.getloadavg()[0]:.2f}; durable SQLite commit "
                f"(WAL, FULL, 1 row) {probe:,.0f} µs → at most {1e6 / probe:,.0f} commits/s "
                "from one writer",
                flush=True,
            )
            for key in payload_keys:
                payload = PAYLOADS[key]
                for server in order:
                    path = files[(server.label, key)]
                    run = measure(
                        server,
                        payload,
                        path.read_bytes(),
                        path,
                        rep,
                        args,
                        workdir,
                        lua,
                        args.duration,
                    )
                    if payload.operation == "send" and server.database is not None:
                        run.stored = verify_stored(
                            server.database, run.ids, payload.recipients, server.query_id
                        )
                        if not args.keep_rows:
                            clear_rows(server.database, server.query_id)
                    runs.append(run)
                    rcpt = (
                        f" = {run.rate * payload.recipients:,.0f} rcpt/s"
                        if payload.recipients
                        else ""
                    )
                    print(
                        f"  rep {rep + 1} {payload.name:<11} {server.label:<5} "
                        f"{run.rate:>9,.1f} calls/s{rcpt}  p50 {run.p50_ms:.2f} ms  "
                        f"p99 {run.p99_ms:.2f} ms  srv {run.server_cpu_us:,.0f} µs/call  "
                        f"cli {run.client_cores:.2f}"
                        + (f"  BAD {run.bad}: {run.sample}" if run.bad else "")
                        + (f"  socket errors {run.errors}" if run.errors else "")
                        + (f"\n      stored: {run.stored}" if run.stored else ""),
                        flush=True,
                    )
    finally:
        for server in servers:
            server.stop()

    report(runs, servers, payload_keys, args)
    if fsyncs:
        print(
            f"durable commit probe: {median_range(fsyncs)} µs per commit "
            "(send 1 commits once per call: its ceiling is 1e6 / this, whatever the CPU)"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"fsync_probe_us": fsyncs, "runs": [asdict(r) | {"ids": len(r.ids)} for r in runs]},
                indent=1,
            )
        )
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


def report(
    runs: list[Run], servers: list[Server], payload_keys: list[str], args: argparse.Namespace
) -> None:
    labels = [s.label for s in servers]
    by: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        by.setdefault((run.server, run.payload), []).append(run)

    def ratios(label: str, name: str) -> list[float]:
        floors = {r.rep: r.rate for r in by.get(("floor", name), [])}
        return [r.rate / floors[r.rep] for r in by.get((label, name), []) if floors.get(r.rep)]

    print()
    print(
        f"Medians [min–max] over {args.repeat} repetitions of {args.duration:g} s, "
        f"c={args.connections}; ratio = calls/s ÷ the floor's in the same repetition"
    )
    header = (
        f"{'payload':<12}{'server':<7}{'calls/s':>26}{'recipients/s':>34}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'srv µs/call':>13}{'cli':>6}{'÷ floor':>22}"
    )
    print(header)
    print("-" * len(header))
    for key in payload_keys:
        payload = PAYLOADS[key]
        for label in labels:
            group = by.get((label, payload.name), [])
            if not group:
                continue
            rates = [r.rate for r in group]
            rcpt = (
                median_range([x * payload.recipients for x in rates]) if payload.recipients else "-"
            )
            ratio = median_range(ratios(label, payload.name), "{:.2f}") if label != "floor" else "1"
            print(
                f"{payload.name:<12}{label:<7}{median_range(rates):>26}{rcpt:>34}"
                f"{statistics.median(r.p50_ms for r in group):>9.2f}"
                f"{statistics.median(r.p99_ms for r in group):>9.2f}"
                f"{statistics.median(r.server_cpu_us for r in group):>13,.0f}"
                f"{statistics.median(r.client_cores for r in group):>6.2f}"
                f"{ratio:>22}"
            )
    bad = [r for r in runs if r.bad or r.errors]
    unstored = [r for r in runs if r.stored and not r.stored.startswith("ok")]
    print()
    print(
        f"answers checked: {sum(r.calls + r.bad for r in runs):,}; bad answers: "
        f"{sum(r.bad for r in runs)}; socket errors: {sum(r.errors for r in runs)}; "
        f"send runs with rows missing: {len(unstored)}"
    )
    for r in bad[:5]:
        print(
            f"  {r.server} {r.payload} rep {r.rep + 1}: {r.bad} bad, {r.errors} errors: {r.sample}"
        )
    for r in unstored[:5]:
        print(f"  {r.server} {r.payload} rep {r.rep + 1}: {r.stored}")

    print()
    for label in (x for x in labels if x != "floor"):
        for line in verdicts(label, by, payload_keys, ratios(label, "query")):
            print(line)


def verdicts(
    label: str,
    by: dict[tuple[str, str], list[Run]],
    payload_keys: list[str],
    query_ratios: list[float],
) -> list[str]:
    """One line per target for one lane: met or NOT met, from the medians."""
    note = "" if label == "fast" else " (spyne lane, for comparison)"
    lines = []

    def median_of(name: str, value: Any) -> float:
        group = by.get((label, name), [])
        return statistics.median(value(r) for r in group) if group else 0.0

    def clean(name: str) -> bool:
        return all(
            not r.bad and not r.errors and (not r.stored or r.stored.startswith("ok"))
            for r in by.get((label, name), [])
        )

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    if "query" in payload_keys:
        rate = median_of("query", lambda r: r.rate)
        p99 = median_of("query", lambda r: r.p99_ms)
        ratio = statistics.median(query_ratios or [0.0])
        ok = (
            rate >= TARGETS["query_calls"]
            and p99 <= TARGETS["query_p99_ms"]
            and ratio >= TARGETS["query_floor_ratio"]
            and clean("query")
        )
        lines.append(
            f"verdict {label}: query ≥ 4,000 calls/s, p99 ≤ 5 ms, ≥ 0.5 × floor: {met(ok)} "
            f"({rate:,.0f} calls/s, p99 {p99:.2f} ms, {ratio:.2f} × floor){note}"
        )
    for key, name, recipients, target, unit in (
        ("send1", "send 1", 1, TARGETS["send1_calls"], "calls/s"),
        ("send10k", "send 10 000", 10_000, TARGETS["send10k_rcpt"], "rcpt/s"),
    ):
        if key not in payload_keys:
            continue
        value = median_of(name, lambda r: r.rate) * (1 if unit == "calls/s" else recipients)
        stored = clean(name)
        what = (
            "send 1 recipient, stored durably, ≥ 2,500 calls/s"
            if key == "send1"
            else "send 10,000 recipients, every one stored, ≥ 250,000 rcpt/s"
        )
        lines.append(
            f"verdict {label}: {what}: {met(value >= target and stored)} ({value:,.0f} {unit}, "
            f"{'all stored' if stored else 'NOT all answered and stored'}){note}"
        )
    return lines


if __name__ == "__main__":
    main()
