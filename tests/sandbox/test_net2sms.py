"""Every ``type=xml`` answer the net2sms sandbox gives (each call's success, each error code,
a failure on every call) is valid against schemas/net2sms/response.xsd, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from lxml import etree

from smsxml import xmlsafe
from smsxml.providers.net2sms import ERRORS
from smsxml.sandbox import DeliverySchedule, SandboxConfig, SandboxServer

MakeSandbox = Callable[..., SandboxServer]
KEY = "demo-key"
GOOD, FAILING = "306912345678", "306912345670"  # ends in 0: its delivery fails
#: sent messages are Pending at once and stay so: cancels and status reads see them live
PENDING = DeliverySchedule(pending_after=0.0, final_after=3600.0, fail_suffixes=("0",))
#: sent messages are final at once: the drain and status/sms see delivered and failed
FINAL = DeliverySchedule(pending_after=0.0, final_after=0.0, fail_suffixes=("0",))
CALLS = [
    *("key/get", "key/reset", "sms/send", "sms/bulk", "sms/cancel", "balance/get"),
    *("me/balance", "status/get", "status/sms", "mobile/check"),
]


def api(server: SandboxServer, call: str, **params: str) -> etree._Element:
    """GET one call with ``type=xml``; its root, after checking response.xsd accepts it."""
    url = f"{server.url_for('net2sms')}/api/{call}"
    answer = httpx.get(url, params={"type": "xml", **params}, timeout=10)
    assert answer.status_code == 200
    root = xmlsafe.parse(answer.content)
    assert xmlsafe.schema_problems(xmlsafe.load_schema("net2sms/response.xsd"), root) == []
    return root


def later() -> str:
    """A ``timestamp`` an hour ahead: the message waits, so it can be cancelled."""
    return str(int(time.time()) + 3600)


def send(server: SandboxServer, to: str = GOOD, **params: str) -> str:
    root = api(server, "sms/send", key=KEY, to=to, text="hi", **params)
    assert root.findtext("status") == "1"
    return root.findtext("id") or ""


#: how each error code is provoked: a function of the server giving (call, params)
ERROR_CALLS: dict[str, Callable[[SandboxServer], tuple[str, dict[str, str]]]] = {
    "40": lambda s: ("sms/send", {"key": KEY, "to": GOOD, "text": "hi", "from": "x" * 12}),
    "101": lambda s: ("sms/send", {"key": "wrong", "to": GOOD, "text": "hi"}),
    "102": lambda s: ("sms/send", {"key": KEY, "text": "hi"}),
    "103": lambda s: ("sms/bulk", {"key": KEY, "to": "abc,12", "text": "hi"}),
    "104": lambda s: ("sms/send", {"key": KEY, "to": GOOD}),
    "105": lambda s: ("sms/send", {"key": KEY, "to": GOOD, "text": "x" * 2000}),
    "106": lambda s: ("sms/send", {"key": KEY, "to": GOOD, "text": "hi", "timestamp": "soon"}),
    "107": lambda s: ("status/sms", {"key": KEY}),
    "108": lambda s: ("status/sms", {"key": KEY, "smsId": "abc"}),
    "109": lambda s: ("sms/cancel", {"key": KEY, "smsId": "1"}),
    "110": lambda s: ("sms/cancel", {"key": KEY, "smsId": _cancelled(s)}),
    "111": lambda s: ("sms/cancel", {"key": KEY, "smsId": send(s)}),
    "201": lambda s: ("mobile/check", {"mobile": "abc"}),
    "205": lambda s: ("mobile/check", {}),
}


def _cancelled(server: SandboxServer) -> str:
    sms_id = send(server, timestamp=later())
    assert api(server, "sms/cancel", key=KEY, smsId=sms_id).findtext("status") == "1"
    return sms_id


def test_the_walk_covers_every_error_code() -> None:
    """Each code of the client's table, which the sandbox answers with, is provoked below."""
    assert sorted(ERROR_CALLS) == sorted(ERRORS)


@pytest.mark.parametrize("code", sorted(ERROR_CALLS))
def test_each_error_answer_is_valid(make_sandbox: MakeSandbox, code: str) -> None:
    """status 0 and the code, in the call's own failure shape."""
    server = make_sandbox(SandboxConfig(schedule=PENDING, credits=Decimal(10)))
    call, params = ERROR_CALLS[code](server)
    root = api(server, call, **params)
    assert (root.findtext("status"), root.findtext("error")) == ("0", code)
    assert root.findtext("remarks") == ERRORS[code][1]


@pytest.mark.parametrize("call", CALLS[:-1])  # mobile/check takes no credentials
def test_a_refused_login_is_valid_on_every_call(sandbox: SandboxServer, call: str) -> None:
    """101 with every call's failure shape (zeros for send, bulk and cancel)."""
    root = api(sandbox, call, key="wrong", username="demo", password="wrong")
    assert (root.findtext("status"), root.findtext("error")) == ("0", "101")


def test_each_success_answer_is_valid(make_sandbox: MakeSandbox) -> None:
    """Every call once, with what a success brings: keys, ids, balances, a report."""
    server = make_sandbox(SandboxConfig(schedule=PENDING))
    login = {"username": "demo", "password": "demo"}
    assert api(server, "key/get", **login).findtext("key") == KEY
    key = api(server, "key/reset", **login).findtext("key") or ""
    assert api(server, "balance/get", key=key).findtext("balance") == "1000"
    assert api(server, "me/balance", key=key).findtext("error") == "0"
    sent = api(server, "sms/send", key=key, to=GOOD, text="hi", ucs="true", flash="true")
    sms_id = sent.findtext("id") or ""
    bulk = api(server, "sms/bulk", key=key, to=f"{GOOD},abc", text="hi")
    assert bulk.findtext("remarks") == (
        "Success: Accepted for delivery: 1, Not accepted for delivery: 1"
    )
    drained = api(server, "status/get", key=key).iter("sms")
    assert [sms.findtext("status") for sms in drained] == ["s", "s"]
    assert api(server, "status/get", key=key).findtext("total") == "0"
    assert api(server, "status/sms", key=key, smsId=sms_id).findtext("sms/status") == "s"
    waiting = api(server, "sms/send", key=key, to=GOOD, text="hi", timestamp=later())
    waiting_id = waiting.findtext("id") or ""
    assert api(server, "status/sms", key=key, smsId=waiting_id).findtext("remarks") == (
        "Info: No report"
    )
    cancelled = api(server, "sms/cancel", key=key, smsId=waiting_id)
    assert cancelled.findtext("remarks") == "Success: Message purged"
    assert api(server, "mobile/check", mobile="+30 691 234 5678").findtext("mcc") == "202"


def test_final_states_are_valid(make_sandbox: MakeSandbox) -> None:
    """Delivered and failed messages: the drain's d and f, status/sms with its ttd."""
    server = make_sandbox(SandboxConfig(schedule=FINAL))
    delivered, failed = send(server, GOOD), send(server, FAILING)
    drained = api(server, "status/get", key=KEY)
    assert {(s.findtext("id"), s.findtext("status")) for s in drained.iter("sms")} == {
        (delivered, "d"),
        (failed, "f"),
    }
    assert api(server, "status/sms", key=KEY, smsId=failed).findtext("sms/status") == "f"
