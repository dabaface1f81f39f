"""gunicorn settings for the bridge: ``gunicorn -c server/gunicorn.conf.py
smsxml.server.wsgi:application``. Every value can be overridden on the command line or
with GUNICORN_CMD_ARGS; the bridge's own settings come from SMSXML_* and SMSXML_CONFIG."""

import multiprocessing
import os

bind = os.environ.get("SMSXML_BIND", "127.0.0.1:8080")
# sync workers: the SOAP work is CPU-bound and short; one process per core
workers = int(os.environ.get("SMSXML_WORKERS", multiprocessing.cpu_count()))
worker_class = "sync"
# keep-alive connections stay with a worker between requests (sync workers otherwise
# reconnect on every call: research/perf-calibration.md §1)
keepalive = 5
timeout = 60
graceful_timeout = 30
# a request larger than this is refused before the bridge reads it (the bridge's own
# SOAP limit is 16 MiB)
limit_request_line = 8190
accesslog = "-"
errorlog = "-"
loglevel = "info"
# never log query strings or bodies: access lines show the path only
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
preload_app = False  # each worker opens its own database connections after the fork
