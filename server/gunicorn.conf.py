"""gunicorn settings for the bridge: ``gunicorn -c server/gunicorn.conf.py
smsxml.server.wsgi:application``. Every value can be overridden on the command line or
with GUNICORN_CMD_ARGS; the bridge's own settings come from SMSXML_* and SMSXML_CONFIG."""

import multiprocessing
import os
import shutil
import socket
import tempfile

from smsxml.server.background import bound_malloc_arenas

# in the master, so that every worker forked from it inherits it (see its docstring)
bound_malloc_arenas()

bind = os.environ.get("SMSXML_BIND", "127.0.0.1:8080")
# one process per core, a few threads each: the SOAP work is short and CPU-bound, but a
# send waits for the database's commit, and gthread workers keep connections alive
# (sync workers close every connection: a reconnect per call, perf-calibration §1)
workers = int(os.environ.get("SMSXML_WORKERS", multiprocessing.cpu_count()))
# each worker listens on a socket of its own (SO_REUSEPORT), and the kernel spreads new
# connections evenly over them. On one shared socket, whichever worker woke first took
# them: often one worker served every connection while the other idled (bench/soap
# `query`, 32 connections: 1,270-2,383 calls/s from one repetition to the next; 1,883-2,332
# with this). The master binds nothing then: on_starting checks that the address is free.
reuse_port = True
# gthread with deadlines for reading each request (SMSXML_HTTP__HEADER_TIMEOUT, 10 s;
# SMSXML_HTTP__BODY_TIMEOUT, 60 s): plain gthread lets a client that sends a byte now and
# then hold a thread forever (4 such clients stopped a worker: smsxml.server.gunicorn_worker)
worker_class = "smsxml.server.gunicorn_worker.DeadlineThreadWorker"
threads = int(os.environ.get("SMSXML_THREADS", 4))
# open connections per worker at most (the bridge's http.connection_limit); beyond it the
# worker stops accepting and connections wait in the listen backlog
worker_connections = int(os.environ.get("SMSXML_HTTP__CONNECTION_LIMIT", 100))
keepalive = 5  # seconds a kept-alive connection may wait idle
timeout = 60
graceful_timeout = 30
# a request larger than this is refused before the bridge reads it (the bridge's own
# SOAP limit is 16 MiB)
limit_request_line = 8190
# access lines cost ~150 µs of CPU per call; /metrics counts requests instead. To log
# them: GUNICORN_CMD_ARGS="--access-logfile -" (the path only, never query or body).
accesslog = None
errorlog = "-"
loglevel = "info"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
preload_app = False  # each worker opens its own database connections after the fork
#: a kept-alive connection is closed (with "Connection: close") after this many requests
REQUESTS_PER_CONNECTION = int(os.environ.get("SMSXML_REQUESTS_PER_CONNECTION", 200))


BRIDGE = "smsxml.server.wsgi:application"
_folder = None  # the private folder on_starting made (on_exit removes it)
_writer = None  # the writer process on_starting started (on_exit stops it)
_dispatch = None  # the dispatch process on_starting started (on_exit stops it)


def on_starting(server):
    """Before the workers: a private folder, for the workers' metrics (prometheus_client's
    multiprocess mode, so that /metrics counts every worker, whichever one answers; a
    folder given in PROMETHEUS_MULTIPROC_DIR must be emptied before each start), and for
    the socket of the writer process, which commits every worker's sends (SQLite or
    PostgreSQL: smsxml.server.writer; SMSXML_WRITER=false leaves each worker committing
    its own).
    Then the dispatch process (smsxml.server.worker), unless SMSXML_DISPATCH__WORKERS=0:
    the node's sending and tracking, while the workers only accept."""
    global _folder, _writer, _dispatch
    _check_addresses(server)
    _folder = tempfile.mkdtemp(prefix="smsxml-gunicorn-")  # 0700: this user's only
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(_folder, "metrics")
        os.mkdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if getattr(server.app, "app_uri", None) != BRIDGE:
        return  # this config serves another app (the benchmark's floor)
    from smsxml.server.settings import Settings
    from smsxml.server.supervise import DispatchProcess

    settings = Settings.load(None).model_copy(update={"sandbox": False})
    if settings.dispatch.workers > 0:
        # dispatch and tracking in a process of their own, not in a SOAP worker's threads
        # (smsxml.server.worker); the workers only accept
        _dispatch = DispatchProcess(settings).start()
        os.environ["SMSXML_DISPATCH__WORKERS"] = "0"
    if os.environ.get("SMSXML_WRITER", "true").lower() in ("0", "false", "no", "off"):
        return
    if settings.writer_socket is None:
        from smsxml.server.writer import WriterProcess

        path = os.path.join(_folder, "writer.sock")
        _writer = WriterProcess(path).start()
        os.environ["SMSXML_WRITER_SOCKET"] = path  # the workers inherit it


def _check_addresses(server):
    """Stop at once, saying why, if an address to listen on is taken. With reuse_port the
    workers bind for themselves: on a taken port they would fail to boot one after the
    other, or, beside another gunicorn of this user, share its port without a word. A
    plain bind (no SO_REUSEPORT) fails on any socket listening there."""
    for address in server.cfg.address:
        if not isinstance(address, tuple):
            continue  # a Unix socket: gunicorn's own checks
        host, port = address[0], address[1]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            try:
                probe.bind(address)
            except OSError as error:
                server.log.error("cannot listen on %s:%s (%s)", host, port, error.strerror)
                raise SystemExit(1) from None
        server.log.info("each worker listens on %s:%s (SO_REUSEPORT)", host, port)


def on_exit(server):
    if _dispatch is not None:
        _dispatch.stop()
    if _writer is not None:
        _writer.stop()
    if _folder is not None:
        shutil.rmtree(_folder, ignore_errors=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def pre_request(worker, req):
    """Close kept-alive connections now and then: a connection stays with the worker that
    accepted it, so a few busy clients can all land on one worker (one core, the other
    idle). On reconnecting, the idler worker, quicker to accept, tends to take them."""
    if req.req_number % REQUESTS_PER_CONNECTION == 0:
        req.must_close = True


def post_worker_init(worker):
    """Build the bridge before the worker takes its first connection: otherwise the first
    requests of every worker wait for migrations and imports (hundreds of ms)."""
    from smsxml.server import wsgi

    if worker.wsgi is wsgi.application:  # not when this config serves another app
        wsgi.warm_up()
