"""smsxml.providers.base: what every HTTP client shares: error mapping, the retry policy,
credentials kept out of sight, the Provider interface."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from decimal import Decimal

import httpx
import pytest

from smsxml.errors import OutcomeUnknown, ProviderError, RateLimited, TemporaryFailure
from smsxml.providers.base import (
    DEFAULT_TIMEOUT,
    RETRY_ATTEMPTS,
    Balance,
    HttpProvider,
    OutgoingMessage,
    Provider,
    StatusUpdate,
    Submitted,
    redact,
)

Answer = Callable[[httpx.Request], httpx.Response]


class Scripted(HttpProvider):
    """A client whose transport plays the given answers in turn (the last one repeats)
    and keeps every request it got."""

    name = "scripted"

    def __init__(
        self,
        *answers: Answer | httpx.Response | Exception,
        basic_auth: tuple[str, str] | None = None,
    ) -> None:
        self.requests: list[httpx.Request] = []
        self._answers = list(answers)
        super().__init__(
            "https://sms.example.org/api",
            transport=httpx.MockTransport(self._play),
            basic_auth=basic_auth,
        )

    def _play(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self._answers[min(len(self.requests), len(self._answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer if isinstance(answer, httpx.Response) else answer(request)

    # The Provider interface, which these tests never call: they drive request() alone.
    def send(self, message: OutgoingMessage) -> list[Submitted]:
        raise AssertionError("not under test: Scripted drives request() only")

    def balance(self) -> Balance:
        raise AssertionError("not under test: Scripted drives request() only")

    def statuses(self, submitted: Sequence[Submitted]) -> list[StatusUpdate]:
        raise AssertionError("not under test: Scripted drives request() only")


def ok(text: str = "OK") -> httpx.Response:
    return httpx.Response(200, text=text)


def test_a_read_is_retried_until_it_succeeds() -> None:
    """Temporary failures of a read (503, a dropped connection) are retried away."""
    client = Scripted(httpx.Response(503), httpx.ReadError("reset"), ok("balance"))
    with client:
        assert client.request("GET", "balance", idempotent=True).text == "balance"
    assert len(client.requests) == 3


def test_retries_stop_after_the_attempts() -> None:
    """A read failing every time is tried RETRY_ATTEMPTS times, then raises its failure."""
    client = Scripted(httpx.Response(503))
    with client, pytest.raises(TemporaryFailure) as caught:
        client.request("GET", "balance", idempotent=True)
    assert len(client.requests) == RETRY_ATTEMPTS == 3
    assert (caught.value.provider, caught.value.code) == ("scripted", 503)


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(500), httpx.Response(504), httpx.ReadTimeout("slow"), httpx.ReadError("x")],
    ids=["500", "504", "read-timeout", "dropped"],
)
def test_a_send_that_may_have_arrived_is_never_retried(
    answer: httpx.Response | Exception,
) -> None:
    """A send answered 500, 504 or nothing is sent once and raises OutcomeUnknown."""
    client = Scripted(answer, ok())
    with client, pytest.raises(OutcomeUnknown):
        client.request("POST", "send", idempotent=False, data={"to": "1"})
    assert len(client.requests) == 1


def test_a_send_that_never_connected_is_retried() -> None:
    """A refused connection means nothing was sent: the send is tried again."""
    client = Scripted(httpx.ConnectError("refused"), ok("sent"))
    with client:
        assert client.request("POST", "send", idempotent=False).text == "sent"
    assert len(client.requests) == 2


def test_a_connection_never_made_is_a_plain_temporary_failure() -> None:
    """Connecting fails every time: TemporaryFailure "cannot connect", not OutcomeUnknown."""
    client = Scripted(httpx.ConnectError("refused"))
    with client, pytest.raises(TemporaryFailure, match="cannot connect") as caught:
        client.request("POST", "send", idempotent=False)
    assert type(caught.value) is TemporaryFailure


@pytest.mark.parametrize(("header", "retry_after"), [("7", 7.0), ("soon", None), (None, None)])
def test_429_is_rate_limited_with_its_retry_after(
    header: str | None, retry_after: float | None
) -> None:
    """HTTP 429 raises RateLimited carrying Retry-After in seconds, when it is a number."""
    headers = {"Retry-After": header} if header is not None else {}
    client = Scripted(httpx.Response(429, headers=headers))
    with client, pytest.raises(RateLimited) as caught:
        client.request("GET", "balance", idempotent=False)
    assert (caught.value.code, caught.value.retry_after) == (429, retry_after)


@pytest.mark.parametrize("idempotent", [True, False])
def test_429_is_not_retried_within_its_retry_after(idempotent: bool) -> None:
    """A provider that says "too many requests" is asked once: the caller honours its wait."""
    client = Scripted(httpx.Response(429, headers={"Retry-After": "2"}), ok())
    with client, pytest.raises(RateLimited):
        client.request("POST", "send", idempotent=idempotent, data={"to": "1"})
    assert len(client.requests) == 1


def test_a_send_answered_502_or_503_is_retried() -> None:
    """502 and 503 say the request was not processed: a send is tried again."""
    client = Scripted(httpx.Response(503), httpx.Response(502), ok("sent"))
    with client:
        assert client.request("POST", "send", idempotent=False).text == "sent"
    assert len(client.requests) == 3


def test_4xx_answers_are_read_unless_refused_by_accept_status() -> None:
    """A 4xx answer is the client's to read, unless accept_status refuses it: ProviderError."""
    client = Scripted(httpx.Response(404, text="no such page"))
    with client:
        assert client.request("GET", "x", idempotent=True).text == "no such page"
        with pytest.raises(ProviderError, match="unexpected HTTP 404") as caught:
            client.request("GET", "x", idempotent=True, accept_status=lambda code: code == 200)
    assert type(caught.value) is ProviderError and caught.value.code == 404
    assert len(client.requests) == 2


def test_requests_go_under_the_base_url_with_the_clients_headers() -> None:
    """Calls join the base URL with User-Agent smsxml, Basic auth and the default timeout."""
    client = Scripted(ok(), basic_auth=("user", "pw"))
    with client:
        client.request("GET", "balance/get", idempotent=True, params={"type": "xml"})
    (request,) = client.requests
    assert str(request.url) == "https://sms.example.org/api/balance/get?type=xml"
    assert request.headers["User-Agent"] == "smsxml"
    assert request.headers["Authorization"] == httpx.BasicAuth("user", "pw")._auth_header
    assert request.extensions["timeout"] == DEFAULT_TIMEOUT.as_dict()


def test_the_log_line_and_repr_keep_credentials_out(caplog: pytest.LogCaptureFixture) -> None:
    """The DEBUG line of a call blanks password and key parameters; repr shows the base URL."""
    caplog.set_level(logging.DEBUG, logger="smsxml.providers")
    client = Scripted(ok())
    with client:
        client.request("GET", "send", idempotent=True, params={"password": "s3cret", "to": "1"})
    assert repr(client) == "<Scripted https://sms.example.org/api/>"
    assert "password=***" in caplog.text and "s3cret" not in caplog.text


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("/api?username=u&password=hunter2&to=1", "/api?username=u&password=***&to=1"),
        ("key=abc apiKey=def api_key=ghi", "key=*** apiKey=*** api_key=***"),
        (
            "dlr-url=https%3A%2F%2Fb.example%2Fdlr%2Fisms%2F" + "0123456789abcdef" * 2,
            "dlr-url=https%3A%2F%2Fb.example%2Fdlr%2Fisms%2F***",
        ),
        ("/dlr/net2sms/" + "f" * 32 + "?x=1", "/dlr/net2sms/***?x=1"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_redact_blanks_secrets(text: str, redacted: str) -> None:
    """Passwords, API keys and delivery-callback tokens (plain or URL-encoded) are blanked."""
    assert redact(text) == redacted


def test_a_provider_must_implement_the_interface() -> None:
    """A Provider lacking a method cannot be built; a whole one closes when its with block ends."""

    class Partial(Provider):
        name = "partial"

        def send(self, message: OutgoingMessage) -> list[Submitted]:
            return []

    with pytest.raises(TypeError, match="abstract"):
        Partial()  # type: ignore[abstract]

    closed: list[bool] = []

    class Whole(Partial):
        def balance(self) -> Balance:
            return Balance(Decimal("1"), "SMS")

        def statuses(self, submitted: Sequence[Submitted]) -> list[StatusUpdate]:
            return []

        def close(self) -> None:
            closed.append(True)

    with Whole() as whole:
        assert whole.balance() == Balance(Decimal("1"), "SMS") and whole.max_batch == 1
    assert closed == [True]
