"""The keep-alive transport of the dispatcher's clients, against a real HTTP/1.1 server."""

from __future__ import annotations

import codecs
import gzip
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from smsxml.errors import OutcomeUnknown, TemporaryFailure
from smsxml.providers import Isms, build
from smsxml.providers.base import shared_ssl_context
from smsxml.providers.transport import KeepAliveTransport, text_encoding
from smsxml.sandbox import SandboxServer


class _Echo(BaseHTTPRequestHandler):
    """Answers with the client's port (which connection it came on); paths under /slow
    sleep, /gzip compresses, /close closes the connection after answering."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/slow"):
            time.sleep(0.5)
        body = str(self.client_address[1]).encode()
        headers = {"Content-Type": "text/plain"}
        if self.path == "/gzip":
            body = gzip.compress(b"compressed answer")
            headers["Content-Encoding"] = "gzip"
        if self.path == "/bomb":  # 20 kB that decode to 20 MiB
            body = gzip.compress(b" " * (20 * 1024 * 1024))
            headers["Content-Encoding"] = "gzip"
        if self.path == "/close":
            headers["Connection"] = "close"
        if self.path == "/greek":  # what a PHP page of Greek text in ISO-8859-7 answers
            body = "OK Καλημέρα".encode("iso-8859-7")
            headers["Content-Type"] = "text/plain; charset=ISO-8859-7"
        self.send_response(200)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/close":
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(transport=KeepAliveTransport(shared_ssl_context()), timeout=5) as http:
        yield http


def test_one_thread_reuses_its_connection(echo: str, client: httpx.Client) -> None:
    """Calls from one thread go over one kept-alive connection."""
    ports = {client.get(f"{echo}/").text for _ in range(5)}
    assert len(ports) == 1


def test_each_thread_has_its_own_connection(echo: str, client: httpx.Client) -> None:
    """Threads calling at once do not share a connection (no pool lock, no waiting)."""
    ports: list[str] = []
    threads = [
        threading.Thread(target=lambda: ports.append(client.get(f"{echo}/").text)) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ports)) == 4


def test_a_connection_the_server_closed_is_replaced(echo: str, client: httpx.Client) -> None:
    """After the server closes the connection, the next call opens a new one and succeeds."""
    first = client.get(f"{echo}/close").text
    second = client.get(f"{echo}/").text
    assert first != second


def test_compressed_answers_are_decoded(echo: str, client: httpx.Client) -> None:
    """Content-Encoding is honoured as with httpx's own transport."""
    assert client.get(f"{echo}/gzip").text == "compressed answer"


def test_failures_map_onto_httpx_exceptions(echo: str) -> None:
    """Nobody listening: ConnectError; no answer in time: ReadTimeout."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    transport = KeepAliveTransport(shared_ssl_context())
    with httpx.Client(transport=transport, timeout=httpx.Timeout(0.2, connect=1)) as http:
        with pytest.raises(httpx.ConnectError):
            http.get(f"http://127.0.0.1:{closed_port}/")
        with pytest.raises(httpx.ReadTimeout):
            http.get(f"{echo}/slow")


def test_provider_errors_keep_their_meaning_through_it() -> None:
    """Through this transport a client still says "cannot connect" (safe to retry) and, for
    a send whose answer never came, "outcome unknown"."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    isms = build("isms", f"http://127.0.0.1:{closed_port}", threaded=True, username="u")
    with isms, pytest.raises(TemporaryFailure, match="cannot connect"):
        isms.submit("Shop", ["306912345678"], "hi")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        transport = KeepAliveTransport(shared_ssl_context())
        slow = Isms(f"http://127.0.0.1:{server.server_address[1]}/slow", transport=transport,
                    timeout=httpx.Timeout(0.2, connect=1))  # fmt: skip
        with slow, pytest.raises(OutcomeUnknown):
            slow.submit("Shop", ["306912345678"], "hi")
    finally:
        server.shutdown()
        server.server_close()


def test_a_threaded_client_sends_through_the_sandbox(sandbox: SandboxServer) -> None:
    """build(threaded=True) gives a client on this transport that sends and queries."""
    with build("isms", sandbox.client_url("isms"), threaded=True, username="demo",
               password="demo") as isms:  # fmt: skip
        assert isinstance(isms, Isms)
        message_id = isms.submit("Shop", ["306912345678"], "hi")
        assert isms.query(message_id, "306912345678").value in ("Queued", "Pending", "Delivered")


_SANDBOX_CREDENTIALS = {
    "isms": {"username": "demo", "password": "demo"},
    "net2sms": {"key": "demo-key"},
    "easysms": {"username": "demo", "password": "demo"},
    "smspartner": {"api_key": "demo-key"},
    "allmysms": {"login": "demo", "api_key": "demo-key"},
}
#: what an encoder could get wrong: non-ASCII, form and URL syntax, plus signs, percent
_AWKWARD_TEXT = "Γειά & καλή+μέρα ~ 100% a/b?c=d"


@pytest.mark.parametrize("kind", sorted(_SANDBOX_CREDENTIALS))
def test_the_lean_path_sends_what_httpx_sends(kind: str, sandbox: SandboxServer) -> None:
    """A threaded client (calls written straight on the kept-alive connection, no httpx
    request) and a plain one (httpx) send the same message: the provider stores the same
    text for each, and both read statuses and the balance back."""
    from smsxml.providers.base import OutgoingMessage

    stored = []
    for number, threaded in (("33612345671", True), ("33612345672", False)):
        options = _SANDBOX_CREDENTIALS[kind]
        with build(kind, sandbox.client_url(kind), threaded=threaded, **options) as client:
            assert isinstance(client._transport, KeepAliveTransport) is threaded  # type: ignore[attr-defined]
            message = OutgoingMessage(sender="Shop", recipients=[number], text=_AWKWARD_TEXT)
            (submitted,) = client.send(message)
            assert submitted.recipient == number
            updates = client.statuses([submitted])  # drained providers: news only
            assert all(u.state.value in ("Queued", "Pending", "Delivered") for u in updates)
            assert client.balance().amount > 0
        with sandbox.sandbox.lock:
            stored += [m.text for ms in sandbox.sandbox.messages[kind].values() for m in ms
                       if m.recipient == number]  # fmt: skip
    assert stored == [_AWKWARD_TEXT, _AWKWARD_TEXT]


@pytest.mark.parametrize("threaded", [True, False], ids=["keep-alive", "httpx"])
def test_a_compressed_answer_is_bounded_once_decoded(echo: str, threaded: bool) -> None:
    """A small gzip answer that decodes past MAX_ANSWER_BYTES is refused, on both
    transports, rather than inflated into memory."""
    transport = KeepAliveTransport(shared_ssl_context()) if threaded else None
    with Isms(echo, "u", "p", transport=transport) as client:
        assert client.request("GET", "gzip", idempotent=True).text == "compressed answer"
        with pytest.raises(TemporaryFailure, match="AnswerTooLarge"):
            client.request("GET", "bomb", idempotent=True)


def test_an_answer_is_decoded_by_its_charset(echo: str, client: httpx.Client) -> None:
    assert client.get(f"{echo}/greek").text == "OK Καλημέρα"


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/html; charset=UTF-8",
        'text/html;Charset="iso-8859-7"',
        "application/json; charset=latin-1; q=1",
        "text/plain; charset=klingon",
        "text/plain; format=flowed; charset=windows-1253",
    ],
)
def test_answers_are_decoded_as_httpx_decodes_them(content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    expected = httpx.Response(200, headers=headers, content=b"OK").encoding
    assert codecs.lookup(text_encoding(content_type)).name == codecs.lookup(expected).name
