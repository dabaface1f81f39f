"""A lean keep-alive HTTP transport for clients shared by many sending threads.

httpx's default transport (httpcore and h11, pure Python) costs about 100 µs of CPU per
call more than the standard library's ``http.client`` (measured with one provider call
per SMS, the dispatcher's hot path). This transport keeps one ``http.client`` connection
per thread and origin, so each of the dispatcher's sender threads has its own kept-alive
connection and no pool lock, and maps its failures onto httpx's exceptions, so that the
clients' error handling (connect failures are safe to retry, anything later may have
reached the provider) is unchanged.
"""

from __future__ import annotations

import codecs
import functools
import http.client
import select
import socket
import ssl
import threading

import httpx

__all__ = [
    "MAX_ANSWER_BYTES",
    "AnswerTooLarge",
    "KeepAliveTransport",
    "Origin",
    "default_port",
    "read_answer",
]

#: (scheme, host, port)
Origin = tuple[str, str, int]

#: the most of an answer a client reads (decoded): a provider's answers are a few kB, and
#: a provider, or anything on the way, answering gigabytes must not fill the dispatcher's
#: memory (what is read is parsed within xmlsafe's 10 MiB quota anyway)
MAX_ANSWER_BYTES = 10 * 1024 * 1024


class AnswerTooLarge(httpx.TransportError):
    """The answer was longer than :data:`MAX_ANSWER_BYTES`: the rest was not read."""


def read_answer(response: httpx.Response, limit: int = MAX_ANSWER_BYTES) -> httpx.Response:
    """``response``, whose stream is not read yet, read and decoded up to ``limit`` bytes
    (a compressed answer is counted decoded: a small gzip can decode to gigabytes)."""
    content = bytearray()
    for chunk in response.iter_bytes():
        content += chunk
        if len(content) > limit:
            response.close()
            raise AnswerTooLarge(f"answer longer than {limit} bytes")
    response.close()
    headers = [
        (name, value)
        for name, value in response.headers.raw
        if name.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")
    ]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=bytes(content),
        extensions=response.extensions,
    )


class KeepAliveTransport(httpx.BaseTransport):
    """One kept-alive connection per (thread, origin); HTTP/1.1, plain or TLS."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._ssl_context = ssl_context
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        return self.exchange(
            request.method,
            (url.scheme, url.host, url.port or default_port(url.scheme)),
            url.raw_path.decode("ascii"),
            body=request.read() or None,
            headers=dict(request.headers.multi_items()),
            timeouts=request.extensions.get("timeout", {}),
        )

    def exchange(
        self,
        method: str,
        origin: Origin,
        target: str,
        *,
        body: bytes | None,
        headers: dict[str, str],
        timeouts: dict[str, float | None],
    ) -> httpx.Response:
        """One call on this thread's connection to ``origin`` (scheme, host, port);
        ``target`` is the path and query. The provider clients' hot path calls it
        directly: building an :class:`httpx.Request` cost more than the call itself."""
        connection = self._connection(origin)
        if connection.sock is None or _closed_by_peer(connection.sock):
            connection.close()
            connection.timeout = timeouts.get("connect")
            try:
                connection.connect()
            except TimeoutError as error:
                raise httpx.ConnectTimeout(str(error)) from error
            except OSError as error:
                raise httpx.ConnectError(str(error)) from error
        assert connection.sock is not None
        connection.sock.settimeout(timeouts.get("read"))
        try:
            connection.request(method, target, body=body, headers=headers)
            answer = connection.getresponse()
            content = answer.read(MAX_ANSWER_BYTES + 1)
            if len(content) > MAX_ANSWER_BYTES:
                answer.close()
                connection.close()
                raise AnswerTooLarge(f"answer longer than {MAX_ANSWER_BYTES} bytes")
        except TimeoutError as error:
            connection.close()
            raise httpx.ReadTimeout(str(error)) from error
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise httpx.RemoteProtocolError(f"{type(error).__name__}: {error}") from error
        if answer.will_close:
            connection.close()
        response = httpx.Response(
            answer.status,
            headers=answer.getheaders(),
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1"},
        )
        response.encoding = text_encoding(answer.getheader("content-type"))
        if "content-encoding" in response.headers:  # counted decoded
            return read_answer(response)
        response.read()
        return response

    def _connection(self, origin: Origin) -> http.client.HTTPConnection:
        connections: dict[Origin, http.client.HTTPConnection] | None = getattr(
            self._local, "connections", None
        )
        if connections is None:
            connections = self._local.connections = {}
        connection = connections.get(origin)
        if connection is None:
            scheme, host, port = origin
            connection = (
                http.client.HTTPSConnection(host, port, context=self._ssl_context)
                if scheme == "https"
                else http.client.HTTPConnection(host, port)
            )
            connections[origin] = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()


@functools.lru_cache(maxsize=64)
def text_encoding(content_type: str | None) -> str:
    """How httpx would decode an answer of ``content_type``: its valid ``charset``, else
    UTF-8. Worked out once per header value: httpx parses it with the ``email`` package
    for every answer (23 µs of the dispatcher's CPU per SMS)."""
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            try:
                return codecs.lookup(value.strip().strip("'\"")).name
            except LookupError:
                break
    return "utf-8"


def default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _closed_by_peer(sock: socket.socket) -> bool:
    """An idle kept-alive socket that is readable has been closed (or sent garbage) by the
    server: reusing it would fail the next request after it was maybe sent."""
    if sock.fileno() < 0:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))
