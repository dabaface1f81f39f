"""The bridge's logs, set up the same way in each of its processes (``smsxml serve`` and
its dispatch process, gunicorn's workers and writer, ``smsxml worker``): one line format,
the level of the ``log_level`` setting (``SMSXML_LOG_LEVEL``, ``--log-level``), and the
libraries' chatter (migrations, spyne's start-up, a line per provider call) at WARNING
unless the level is DEBUG. Requests and passwords are never logged at any level."""

from __future__ import annotations

import logging

__all__ = ["LEVELS", "configure"]

#: the levels ``log_level`` accepts
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: libraries that log at INFO what an operator does not need: alembic's migrations,
#: spyne's start-up, httpx's line per provider call
CHATTY = ("alembic", "spyne", "httpx")


def configure(level: str = "INFO", role: str = "") -> None:
    """Log to stderr at ``level``, each line tagged with ``role`` (e.g. ``dispatch``) when
    the process is a helper of another whose output it shares."""
    tag = f"[{role}] " if role else ""
    root = logging.getLogger()
    if not root.handlers:  # a host that set up logging already (a test runner) keeps its own
        logging.basicConfig(format=f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s")
    root.setLevel(level)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
