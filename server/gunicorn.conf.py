"""gunicorn settings for the bridge: ``gunicorn -c server/gunicorn.conf.py
smsxml.server.wsgi:application``. Every value can be overridden on the command line or
with GUNICORN_CMD_ARGS; the bridge's own settings come from SMSXML_* and SMSXML_CONFIG."""

import multiprocessing
import os

bind = os.environ.get("SMSXML_BIND", "127.0.0.1:8080")
# one process per core, a few threads each: the SOAP work is short and CPU-bound, but a
# send waits for the database's commit, and gthread workers keep connections alive
# (sync workers close every connection: a reconnect per call, perf-calibration §1)
workers = int(os.environ.get("SMSXML_WORKERS", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("SMSXML_THREADS", 4))
keepalive = 5
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
