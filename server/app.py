"""The bridge assembled: the WSGI application (SOAP endpoint, WSDLs, callbacks, health,
metrics), the dispatcher and the delivery tracker around one store, and a server that
runs them all (``smsxml serve``, and the tests, on real sockets)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from smsxml.errors import BadInput
from smsxml.providers import build
from smsxml.providers.base import Provider
from smsxml.server.background import bound_malloc_arenas, settle_heap
from smsxml.server.bridge import Bridge
from smsxml.server.delivery import DeliveryTracker
from smsxml.server.dispatcher import Dispatcher
from smsxml.server.metrics import Metrics
from smsxml.server.queue import Claims
from smsxml.server.routing import Routes
from smsxml.server.settings import CALLBACK_FIRST_POLL, Settings
from smsxml.server.soap import SoapEndpoint
from smsxml.server.store import Store
from smsxml.server.supervise import DispatchProcess
from smsxml.server.wsdl import DOCUMENT_WSDL, RPC_WSDL, render

if TYPE_CHECKING:  # production code loads the test doubles only when the sandbox is on
    from smsxml.sandbox.core import SandboxConfig

__all__ = ["RPC_PATH", "BridgeApp", "BridgeServer"]

log = logging.getLogger("smsxml.server")

#: where code written for the real iSMS looks: /api/soap/sms.wsdl, and its endpoint
RPC_WSDL_PATH = "/api/soap/sms.wsdl"
RPC_PATH = "/api/soap/sms.php"
XML = "text/xml; charset=utf-8"


class BridgeApp:
    """Everything but the socket: store, providers, dispatcher, tracker, WSGI app."""

    def __init__(
        self,
        settings: Settings,
        *,
        provider_urls: dict[str, str] | None = None,
        dispatch_queue: Claims | None = None,
    ) -> None:
        """``dispatch_queue``: where the dispatcher claims and records (default: the
        store's queue, in this process)."""
        self.settings = settings
        if not settings.public_url and settings.host in ("0.0.0.0", "::", ""):
            log.warning(
                "public_url is not set: the WSDL and callback URLs say %s, which no client "
                "can reach; set public_url (SMSXML_PUBLIC_URL)",
                settings.address,
            )
        self.metrics = Metrics()
        self.store = Store(
            settings.database_url,
            synchronous=settings.sqlite_synchronous,
            writer_socket=settings.writer_socket,
        )
        self.metrics.watch_queue(self.counts, self.store.queue.oldest_wait)
        self.store.accounts.configure(settings.logins, self.metrics)
        if settings.demo:
            self._add_demo_account()
        self.providers: dict[str, Provider] = {
            name: build(
                config.kind,
                config.base_url or (provider_urls or {}).get(config.kind),
                threaded=True,
                **config.options,
            )
            for name, config in settings.providers.items()
        }
        self.routes = Routes(settings.routes, list(self.providers))
        self.tracker = DeliveryTracker(
            self.store,
            self.providers,
            {name: config.poll_interval for name, config in settings.providers.items()},
            secret=settings.callback_token or None,
            private_reports=settings.dlr_private_addresses,
        )
        self._callback_urls: dict[str, str | None] = {}
        first_polls = {
            name: config.first_poll
            if config.first_poll is not None
            else (CALLBACK_FIRST_POLL if self.callback_url(name) else 0.0)
            for name, config in settings.providers.items()
        }
        self.dispatcher = Dispatcher(
            self.store,
            self.providers,
            self.routes,
            settings.dispatch,
            rate_limits={name: c.rate_limit for name, c in settings.providers.items()},
            concurrency={name: c.concurrency for name, c in settings.providers.items()},
            callback_url=self.callback_url,
            first_polls=first_polls,
            metrics=self.metrics,
            claims=dispatch_queue,
        )
        self.bridge = Bridge(self.store)
        self.soap = SoapEndpoint(self.bridge, fast_lane=settings.fast_lane, metrics=self.metrics)
        self._soap_paths = frozenset((settings.soap_path, RPC_PATH))
        self.urls = Map(
            [
                Rule(settings.soap_path, endpoint="soap"),
                Rule(RPC_PATH, endpoint="soap"),
                Rule(RPC_WSDL_PATH, endpoint="rpc_wsdl", methods=["GET"]),
                Rule("/dlr/<provider>/<token>", endpoint="callback", methods=["GET", "POST"]),
                Rule("/healthz", endpoint="health", methods=["GET"]),
                Rule("/metrics", endpoint="metrics", methods=["GET"]),
            ]
        )

    def _add_demo_account(self) -> None:
        """The demo account, unless it exists; several workers start at once, and the
        database says which one made it."""
        if self.store.accounts.get("demo") is None:
            try:
                # demo / demo in a WS-Security header too, as PasswordText or PasswordDigest
                self.store.accounts.add(
                    "demo", "demo", self.settings.demo_credits, wss_secret="demo"
                )
            except IntegrityError:  # another process made it meanwhile
                pass

    def callback_url(self, provider: str) -> str | None:
        """The delivery-callback URL given to ``provider`` (None if it sends none); worked
        out once per provider, as every send carries it."""
        if provider not in self._callback_urls:
            self._callback_urls[provider] = (
                f"{self.settings.base_url}/dlr/{provider}/{self.tracker.token(provider)}"
                if self.tracker.accepts_callbacks(provider)
                else None
            )
        return self._callback_urls[provider]

    @property
    def dispatches(self) -> bool:
        """Whether this process sends and tracks (``dispatch.workers = 0``: it only accepts,
        and ``smsxml worker`` processes, here or on other nodes, send)."""
        return self.settings.dispatch.workers > 0

    def start(self) -> None:
        """Start dispatch and delivery tracking (the SOAP side needs no start)."""
        if not self.dispatches:
            return
        self.dispatcher.start()
        self.tracker.start()
        self.metrics.dispatching.set(1)

    def stop(self) -> None:
        self.metrics.dispatching.set(0)
        self.dispatcher.stop()
        self.tracker.stop()
        for provider in self.providers.values():
            provider.close()
        self.store.close()

    # WSGI -------------------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "POST" and environ.get("PATH_INFO") in self._soap_paths:
            return self.soap(environ, start_response)  # the hot path skips URL routing
        adapter = self.urls.bind_to_environ(environ)
        try:
            endpoint, args = adapter.match()
        except HTTPException as error:
            return error(environ, start_response)
        if endpoint == "soap":
            if environ["REQUEST_METHOD"] == "POST":
                return self.soap(environ, start_response)
            if environ["REQUEST_METHOD"] == "GET" and environ.get("QUERY_STRING", "").lower() in (
                "wsdl",
                "singlewsdl",
            ):
                document = render(DOCUMENT_WSDL, self.settings.address)
                return Response(document, content_type=XML)(environ, start_response)
            return Response(
                "POST a SOAP 1.1 or 1.2 request, or GET ?wsdl", 405, {"Allow": "GET, POST"}
            )(environ, start_response)
        handler: Callable[..., Response] = getattr(self, f"_{endpoint}")
        return handler(Request(environ), **args)(environ, start_response)

    def _rpc_wsdl(self, request: Request) -> Response:
        return Response(render(RPC_WSDL, self.settings.base_url + RPC_PATH), content_type=XML)

    def _callback(self, request: Request, provider: str, token: str) -> Response | NotFound:
        fields: dict[str, Any] = dict(request.args)
        fields.update(request.form)
        payload = request.get_json(silent=True)
        if isinstance(payload, dict):
            fields.update(payload)
        try:
            self.tracker.callback(provider, token, fields)
        except PermissionError:
            return NotFound()  # the same answer as for any unknown URL: nothing to probe
        except (BadInput, ValueError, KeyError, TypeError) as error:
            # the reason, short and as plain text: it may quote what the caller sent
            log.info("refused a %s delivery report: %.200s", provider, error)
            return Response(f"unreadable delivery report: {error}"[:200], 400)
        return Response("OK")

    def _health(self, request: Request) -> Response:
        try:
            counts = self.counts()
        except Exception:
            log.exception("health check: database unreachable")
            return Response(
                json.dumps({"status": "error", "database": "unreachable"}),
                503,
                content_type="application/json",
            )
        body = {"status": "ok", "database": "ok", "deliveries": counts}
        return Response(json.dumps(body), content_type="application/json")

    def counts(self) -> dict[str, int]:
        """Deliveries per state for /healthz and /metrics (final ones possibly a little
        old: ``final_counts_max_age``)."""
        return self.store.counts(final_max_age=self.settings.final_counts_max_age)

    def _metrics(self, request: Request) -> Response:
        return Response(self.metrics.render(), content_type="text/plain; version=0.0.4")


class BridgeServer:
    """The bridge on a real socket (waitress), with its sandboxes when configured.

    ``port=0`` takes a free port; the public URL then follows the real port.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        threads: int = 8,
        sandbox_config: SandboxConfig | None = None,
        dispatch_process: bool = False,
    ) -> None:
        """``dispatch_process``: dispatch and track in a helper process (``smsxml serve``
        does), not in this one's threads (the tests reach into an in-process dispatcher)."""
        bound_malloc_arenas()  # before the server's threads exist
        from smsxml.sandbox import PREFIXES, SandboxServer
        from smsxml.server.connections import create_server

        self.sandbox = None
        provider_urls: dict[str, str] = {}
        if settings.sandbox:
            self.sandbox = SandboxServer(sandbox_config).start()
            provider_urls = {kind: self.sandbox.client_url(kind) for kind in PREFIXES}
        try:
            self._server = create_server(
                lambda environ, start_response: self.app(environ, start_response),
                settings.http,  # deadlines for slow clients, a cap on connections
                host=settings.host,
                port=settings.port,
                threads=threads,
                ident="smsxml",
            )
        except OSError:  # the port is taken (or the host is not ours): nothing left running
            if self.sandbox is not None:
                self.sandbox.stop()
            raise
        port = self._server.effective_port  # type: ignore[attr-defined]  # not in its stubs
        if settings.port == 0:
            updates: dict[str, Any] = {"port": port}
            settings = settings.model_copy(update=updates)
        self.settings = settings
        self.dispatch: DispatchProcess | None = None
        if dispatch_process and settings.dispatch.workers > 0:
            self.dispatch = DispatchProcess(self._helper_settings(provider_urls))
            accepting = settings.dispatch.model_copy(update={"workers": 0})
            settings = settings.model_copy(update={"dispatch": accepting})
        self.app = BridgeApp(settings, provider_urls=provider_urls)
        self._thread: threading.Thread | None = None

    def _helper_settings(self, provider_urls: dict[str, str]) -> Settings:
        """The dispatch process's settings: this bridge's, with the sandboxes' addresses
        filled in and callbacks sent to this endpoint."""
        providers = {
            name: config.model_copy(
                update={"base_url": config.base_url or provider_urls.get(config.kind)}
            )
            for name, config in self.settings.providers.items()
        }
        return self.settings.model_copy(
            update={"providers": providers, "public_url": self.settings.public_url or self.url}
        )

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    @property
    def wsdl_url(self) -> str:
        return f"{self.url}{self.settings.soap_path}?wsdl"

    def start(self) -> BridgeServer:
        self._start_dispatch()
        self.app.start()
        self._thread = threading.Thread(target=self._server.run, name="bridge-http", daemon=True)
        self._thread.start()
        return self

    def _start_dispatch(self) -> None:
        if self.dispatch is not None:
            self.dispatch.start()

    def serve_forever(self) -> None:
        self._start_dispatch()
        self.app.start()
        settle_heap()
        try:
            self._server.run()
        finally:
            self.stop()

    def stop(self) -> None:
        """Close every socket from inside waitress's loop (closing them from here would
        pull descriptors out from under its select), then stop the workers."""
        server = self._server

        def close_everything() -> None:
            for channel in list(server._map.values()):  # type: ignore[attr-defined]
                channel.close()

        # the workers first: one finishing a request after the trigger closed would pull
        # a closed trigger (EBADF)
        server.task_dispatcher.shutdown()
        try:
            if self._thread is None or not self._thread.is_alive():
                raise OSError("the loop is not running")
            server.trigger.pull_trigger(close_everything)  # type: ignore[attr-defined]
        except OSError:  # the loop already ended (or its trigger is gone)
            close_everything()
        if self._thread is not None:
            self._thread.join(5)
        if self.dispatch is not None:
            self.dispatch.stop()
        self.app.stop()
        if self.sandbox is not None:
            self.sandbox.stop()

    def __enter__(self) -> BridgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
