"""One WSGI application serving every provider sandbox under its own path prefix, with
fault injection in front of each, and a server to run it in-process or from the CLI."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

from smsxml.providers.base import redact
from smsxml.sandbox.core import Faults, Sandbox, SandboxConfig

__all__ = ["CLIENT_PATHS", "PREFIXES", "SENT_PATH", "FaultInjector", "SandboxServer", "make_app"]

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: the path prefix of each provider; under it, the provider's real paths
PREFIXES = {
    "net2sms": "/net2sms",
    "easysms": "/easysms",
    "smspartner": "/smspartner",
    "isms": "/isms",
    "allmysms": "/allmysms",
}


#: ``GET {SENT_PATH}/<provider>``: {recipient: messages taken}, for load tests (not a
#: vendor path: no provider's API lives under it)
SENT_PATH = "/_sandbox/sent"

#: what each client's base URL adds to the host, as the vendors' base URLs do
#: (https://api.smspartner.fr/v1, https://api.allmysms.com/http/9.0/); the others take
#: the host and add their paths themselves
CLIENT_PATHS = {"smspartner": "/v1", "allmysms": "/http/9.0/"}


class FaultInjector:
    """WSGI middleware that makes one provider slow, failing, rude or rate limited."""

    def __init__(self, app: WSGIApp, faults: Faults, sandbox: Sandbox) -> None:
        self.app = app
        self.faults = faults
        self.sandbox = sandbox
        self._errors_left = faults.error_count
        self._window_start = time.monotonic()
        self._window_count = 0
        self._lock = threading.Lock()

    def _roll(self, rate: float) -> bool:
        return rate > 0 and (rate >= 1 or self.sandbox.random.random() < rate)

    def _over_rate_limit(self) -> bool:
        if self.faults.rate_limit is None:
            return False
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= 1.0:
                self._window_start, self._window_count = now, 0
            self._window_count += 1
            return self._window_count > self.faults.rate_limit

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        faults = self.faults
        if faults.latency:
            time.sleep(faults.latency)
        if self._over_rate_limit():
            return Response("Too Many Requests", 429, headers={"Retry-After": "1"})(
                environ, start_response
            )
        with self._lock:
            forced = self._errors_left > 0
            self._errors_left -= forced
        if forced or self._roll(faults.error_rate):
            status = faults.error_status
            return Response(f"Sandbox fault: HTTP {status}", status)(environ, start_response)
        if self._roll(faults.drop_rate):
            sock = environ.get("werkzeug.socket")
            if isinstance(sock, socket.socket):
                sock.shutdown(socket.SHUT_RDWR)
            return Response("", 500)(environ, start_response)
        if self._roll(faults.malformed_rate):
            return self._garbled(environ, start_response)
        return self.app(environ, start_response)

    def _garbled(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """The real answer cut in half with junk after it: what a broken proxy sends."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.update(status=status, headers=headers)
            return lambda data: None

        body = b"".join(self.app(environ, capture))
        garbled = body[: len(body) // 2] + b"\x00<garbled"
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(garbled)))])
        return [garbled]


def make_app(sandbox: Sandbox) -> WSGIApp:
    """The WSGI application of every provider sandbox sharing ``sandbox``'s state."""
    from smsxml.sandbox import allmysms, easysms, isms, net2sms, smspartner

    apps: dict[str, WSGIApp] = {
        "net2sms": net2sms.Net2smsApp(sandbox),
        "easysms": easysms.EasysmsApp(sandbox),
        "smspartner": smspartner.SmsPartnerApp(sandbox),
        "isms": isms.IsmsApp(sandbox),
        "allmysms": allmysms.AllmysmsApp(sandbox),
    }
    for provider, app in list(apps.items()):
        faults = sandbox.config.faults.get(provider)
        if faults is not None and faults != Faults():
            apps[provider] = FaultInjector(app, faults, sandbox)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(SENT_PATH + "/") and path[len(SENT_PATH) + 1 :] in PREFIXES:
            counts = sandbox.sent(path[len(SENT_PATH) + 1 :])
            return Response(json.dumps(counts), content_type="application/json")(
                environ, start_response
            )
        for provider, prefix in PREFIXES.items():
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix) :]
                try:
                    return apps[provider](environ, start_response)
                finally:
                    # werkzeug's Request stores itself in environ, a cycle per request
                    # that only the cyclic collector frees; broken here, answers leave no
                    # cyclic garbage, which serve.py relies on when it freezes survivors
                    environ.pop("werkzeug.request", None)
        return Response("Not Found: see /net2sms, /easysms, /smspartner, /isms, /allmysms", 404)(
            environ, start_response
        )

    return application


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to the log at DEBUG, with credentials blanked."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s %s", self.command, redact(self.path), code)


class SandboxServer:
    """Every provider sandbox on one port, in a background thread.

    >>> with SandboxServer() as sandbox:          # doctest: +SKIP
    ...     client = Net2sms(base_url=sandbox.url_for("net2sms"), key="demo-key")
    """

    def __init__(
        self, config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.sandbox = Sandbox(config)
        self._server: BaseWSGIServer = make_server(
            host, port, make_app(self.sandbox), threaded=True, request_handler=_QuietHandler
        )
        self.host = host
        self.port = self._server.port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url_for(self, provider: str) -> str:
        """Where ``provider``'s sandbox is mounted (its real paths follow)."""
        return self.url + PREFIXES[provider]

    def client_url(self, provider: str) -> str:
        """The ``base_url`` to give ``provider``'s client (``smsxml.providers``)."""
        return self.url_for(provider) + CLIENT_PATHS.get(provider, "")

    def start(self) -> SandboxServer:
        self.sandbox.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() returns in 50 ms, not the default 500
            name="sandbox-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI)."""
        self.sandbox.start()
        try:
            self._server.serve_forever()
        finally:
            self.sandbox.stop()
            self._server.server_close()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.sandbox.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
