"""The easysms sandbox (net2sms.gr's legacy API): the vendor page's requests get its exact
answers."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from werkzeug.test import Client

from smsxml.sandbox import Sandbox, SandboxConfig, SandboxServer
from smsxml.sandbox.core import Account
from smsxml.sandbox.easysms import EasysmsApp
from tests.conftest import FAST_SCHEDULE

GR = "306912345671"  # delivered by the sandbox schedule
GR_FAILS = "306912345670"  # numbers ending in 0 fail
SEND = "/srvauth/index?cmd=easysms&action=send_sms"


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One plain HTTP client for the raw requests (building one costs a TLS context)."""
    with httpx.Client() as plain:
        yield plain


def account(sandbox: SandboxServer) -> Account:
    return sandbox.sandbox.accounts["easysms"]["demo"]


# the vendor's own requests, exact answers ------------------------------------------------


def test_send_as_the_vendor_page_writes_it(http: httpx.Client, sandbox: SandboxServer) -> None:
    """GET …/srvauth/index?cmd=easysms&action=send_sms&mobile_number=…&text=…&originator=…
    with Basic auth answers return_code|sms_id|balance, like 1|456123789|112."""
    url = sandbox.url_for("easysms") + SEND + "&mobile_number=4917512345"
    url += "&text=Hello+World&originator=MyCompany"
    answer = http.get(url, auth=("demo", "demo"))
    code, sms_id, balance = answer.text.split("|")
    assert (answer.status_code, code, balance) == (200, "1", "999")
    assert sms_id.isdigit() and len(sms_id) == 10
    assert answer.content == f"1|{sms_id}|999".encode()
    (stored,) = sandbox.sandbox.find("easysms", sms_id)
    assert (stored.recipient, stored.text, stored.sender) == (
        "4917512345",
        "Hello World",
        "MyCompany",
    )


def test_credentials_in_the_url(http: httpx.Client, sandbox: SandboxServer) -> None:
    """https://user:pass@host/srvauth/index?… (the PHP and C samples) is Basic auth too."""
    url = sandbox.url_for("easysms").replace("http://", "http://demo:demo@")
    answer = http.get(url + SEND + "&mobile_number=4917512345&text=x")
    assert answer.text.startswith("1|")


def test_basic_auth_challenge(sandbox: SandboxServer) -> None:
    """Without credentials: 401 with a Basic challenge, so urllib's HTTPBasicAuthHandler
    (the Python sample's opener) answers it and gets the balance."""
    url = sandbox.url_for("easysms") + "/srvauth/index"
    bare = httpx.get(url, params={"cmd": "easysms", "action": "get_balance", "balance": "true"})
    assert bare.status_code == 401
    assert bare.headers["WWW-Authenticate"] == 'Basic realm="net2sms.gr"'
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, url, "demo", "demo")
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(passwords))
    with opener.open(url + "?cmd=easysms&action=get_balance&balance=true") as response:
        assert response.read() == b"1000"


def test_get_status_answers_a_flat_list(http: httpx.Client, sandbox: SandboxServer) -> None:
    """action=get_status&get_status=true answers id|state|id|state, then nothing."""
    base = sandbox.url_for("easysms")
    ids = [
        http.get(
            base + SEND + f"&mobile_number={to}&text=x&request_delivery=true", auth=("demo", "demo")
        ).text.split("|")[1]
        for to in (GR, GR_FAILS)
    ]
    time.sleep(FAST_SCHEDULE.final_after + 0.05)
    status = base + "/srvauth/index?cmd=easysms&action=get_status&get_status=true"
    assert http.get(status, auth=("demo", "demo")).content == f"{ids[0]}|d|{ids[1]}|f".encode()
    assert http.get(status, auth=("demo", "demo")).content == b""


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("&text=x", "102"),
        ("&mobile_number=12ab&text=x", "103"),
        ("&mobile_number=4917512345", "104"),
        ("&mobile_number=4917512345&text=x&originator=TooLongName1", "40"),
    ],
)
def test_refused_sends(http: httpx.Client, sandbox: SandboxServer, query: str, code: str) -> None:
    """A refused send answers code|0|balance with HTTP 200 and charges nothing."""
    answer = http.get(sandbox.url_for("easysms") + SEND + query, auth=("demo", "demo"))
    assert (answer.status_code, answer.content) == (200, f"{code}|0|1000".encode())


def test_poor_account_raw(http: httpx.Client, sandbox: SandboxServer) -> None:
    """Without SMS left the send answers 105|0|0."""
    account(sandbox).credits = Decimal(0)
    answer = http.get(
        sandbox.url_for("easysms") + SEND + f"&mobile_number={GR}&text=x", auth=("demo", "demo")
    )
    assert answer.content == b"105|0|0"


def test_post_typos_and_unknown_actions(http: httpx.Client, sandbox: SandboxServer) -> None:
    """A POSTed form works; an unknown parameter (the `originator=` typo of one client) is
    ignored; an unknown action answers HTTP 400."""
    url = sandbox.url_for("easysms") + "/srvauth/index"
    form = {
        "cmd": "easysms",
        "action": "send_sms",
        "mobile_number": GR,
        "text": "x",
        "originator=": "PV",
    }
    answer = http.post(url, data=form, auth=("demo", "demo"))
    (stored,) = sandbox.sandbox.find("easysms", answer.text.split("|")[1])
    assert stored.sender == "net2sms"  # the default: the typo sent no originator
    unknown = http.get(url, params={"cmd": "easysms", "action": "teleport"}, auth=("demo", "demo"))
    assert unknown.status_code == 400


def test_accounts_are_not_shared_with_net2sms(http: httpx.Client, sandbox: SandboxServer) -> None:
    """easysms has its own accounts: a changed net2sms password does not change it."""
    sandbox.sandbox.accounts["net2sms"]["demo"].password = "other"
    url = sandbox.url_for("easysms") + "/srvauth/index?cmd=easysms&action=get_balance&balance=true"
    assert http.get(url, auth=("demo", "demo")).content == b"1000"
    assert http.get(url, auth=("demo", "other")).status_code == 401


# in-process, without a socket -------------------------------------------------------------


@pytest.fixture
def wsgi() -> tuple[Sandbox, Client]:
    """The easysms application alone, on a sandbox of its own, called through werkzeug
    with the demo account's Basic credentials."""
    sandbox = Sandbox(SandboxConfig(schedule=FAST_SCHEDULE, seed=1))
    return sandbox, Client(EasysmsApp(sandbox))


AUTH = {"Authorization": httpx.BasicAuth("demo", "demo")._auth_header}


def test_only_its_one_path_and_command_are_served(wsgi: tuple[Sandbox, Client]) -> None:
    """Another path is 404 (a trailing slash is forgiven); another cmd is 400."""
    _sandbox, client = wsgi
    balance = "?cmd=easysms&action=get_balance&balance=true"
    assert client.get("/srvauth/other" + balance, headers=AUTH).status_code == 404
    assert client.get("/srvauth/index/" + balance, headers=AUTH).get_data() == b"1000"
    wrong = client.get("/srvauth/index?cmd=sms&action=get_balance", headers=AUTH)
    assert (wrong.status_code, wrong.get_data()) == (400, b"Unknown command")


def test_get_status_lists_only_messages_that_asked_for_a_report(
    wsgi: tuple[Sandbox, Client],
) -> None:
    """A message sent without request_delivery=true is never listed by get_status."""
    sandbox, client = wsgi
    ids = [
        client.get(f"{SEND}&mobile_number={GR}&text=x{extra}", headers=AUTH)
        .get_data(as_text=True)
        .split("|")[1]
        for extra in ("&request_delivery=true", "")
    ]
    for message in sandbox.owned_by("easysms", "demo"):
        message.send_at -= 60  # long delivered, without waiting for it
    status = client.get("/srvauth/index?cmd=easysms&action=get_status", headers=AUTH)
    assert status.get_data(as_text=True) == f"{ids[0]}|d"
