"""smsxml.sandbox.app: every provider sandbox under its prefix, faults injected in front,
and the in-process server."""

from __future__ import annotations

import logging

import httpx
import pytest
from werkzeug.test import Client

from smsxml.sandbox import PREFIXES, Sandbox, SandboxConfig, SandboxServer, make_app
from smsxml.sandbox.app import CLIENT_PATHS, SENT_PATH
from smsxml.sandbox.core import PROVIDERS
from tests.conftest import FAST_SCHEDULE

CREDITS = "/isms/api/http/credits.php?username=demo&password=demo"
SEND = "/isms/api/http/send.php?username=demo&password=demo&from=Shop&message=hi&to="


def _client(config: SandboxConfig | None = None) -> Client:
    """The application of every sandbox on one fresh state, called through werkzeug."""
    return Client(make_app(Sandbox(config or SandboxConfig(schedule=FAST_SCHEDULE, seed=1))))


def test_each_provider_is_mounted_under_its_prefix() -> None:
    """Each provider answers under its prefix; other paths get the 404 listing the prefixes."""
    client = _client()
    assert client.get(CREDITS).get_data() == b"Credits:1000.00"
    assert client.get("/net2sms/api/balance/get?key=demo-key").get_data() == b"1000"
    for path in ("/ismsx/api/http/credits.php", "/", "/other"):
        missing = client.get(path)
        assert missing.status_code == 404
        assert missing.get_data(as_text=True).startswith("Not Found: see /net2sms, /easysms")
    assert set(PREFIXES) == set(PROVIDERS)


def test_the_sent_count_says_what_each_provider_took() -> None:
    """GET /_sandbox/sent/<provider> counts what that provider took per recipient; unknown: 404."""
    client = _client()
    for to in ("306912345678", "306912345678,306912345679"):
        assert client.get(SEND + to).get_data().startswith(b"ID:")
    assert client.get(f"{SENT_PATH}/isms").json == {"306912345678": 2, "306912345679": 1}
    assert client.get(f"{SENT_PATH}/net2sms").json == {}
    assert client.get(f"{SENT_PATH}/nobody").status_code == 404


def test_forced_errors_come_first_then_real_answers() -> None:
    """error_count fails that provider's next N requests only; the others answer meanwhile."""
    config = SandboxConfig(seed=1).with_faults("isms", error_count=2, error_status=502)
    client = _client(config)
    statuses = [client.get(CREDITS).status_code for _ in range(3)]
    assert statuses == [502, 502, 200]
    assert client.get("/net2sms/api/balance/get?key=demo-key").status_code == 200


def test_an_error_rate_of_one_fails_every_request() -> None:
    """error_rate 1.0: every request gets the sandbox's fault answer."""
    client = _client(SandboxConfig(seed=1).with_faults("isms", error_rate=1.0))
    answers = [client.get(CREDITS) for _ in range(3)]
    assert {(a.status_code, a.get_data()) for a in answers} == {(503, b"Sandbox fault: HTTP 503")}


def test_a_rate_limit_answers_429_with_retry_after() -> None:
    """Over rate_limit requests a second (0 here): HTTP 429 with Retry-After: 1."""
    client = _client(SandboxConfig(seed=1).with_faults("isms", rate_limit=0))
    limited = client.get(CREDITS)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
    assert client.get("/net2sms/api/balance/get?key=demo-key").status_code == 200


def test_a_malformed_answer_is_the_real_one_cut_with_junk() -> None:
    """malformed_rate 1.0 sends half the real answer and junk, with a matching Content-Length."""
    client = _client(SandboxConfig(seed=1).with_faults("isms", malformed_rate=1.0))
    garbled = client.get(CREDITS)
    body = garbled.get_data()
    assert body == b"Credits" + b"\x00<garbled"  # "Credits:1000.00" cut in half
    assert garbled.headers["Content-Length"] == str(len(body))


def test_the_server_serves_over_http_and_stops() -> None:
    """SandboxServer serves at url_for and client_url; after stop() nothing listens."""
    server = SandboxServer(SandboxConfig(schedule=FAST_SCHEDULE, seed=1)).start()
    try:
        assert server.url_for("isms") == server.url + "/isms"
        assert (
            server.client_url("smspartner")
            == server.url + "/smspartner" + CLIENT_PATHS["smspartner"]
        )
        answer = httpx.get(server.url + CREDITS, timeout=5)
        assert answer.text == "Credits:1000.00"
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + CREDITS, timeout=5)


def test_request_lines_are_logged_without_credentials(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Each request is logged at DEBUG with its password and key parameters blanked."""
    caplog.set_level(logging.DEBUG, logger="smsxml.sandbox.app")
    httpx.get(sandbox.url + CREDITS.replace("password=demo", "password=s3cret"), timeout=5)
    lines = [r.getMessage() for r in caplog.records if r.name == "smsxml.sandbox.app"]
    assert any("credits.php" in line and "password=***" in line for line in lines), lines
    assert "s3cret" not in caplog.text
