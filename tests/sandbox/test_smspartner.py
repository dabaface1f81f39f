"""The SMS Partner sandbox over real HTTP: every answer it gives with ``_format=xml`` (each
call's success, each error code) is valid against schemas/smspartner/result.xsd; and the
vendor page's own Python and PHP samples (seed smspartner-vn-send.fr.txt), which post JSON
without a JSON Content-Type, get their message stored."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import requests

from smsxml import xmlsafe
from smsxml.sandbox import SandboxServer
from smsxml.sandbox.smspartner import ERRORS, PARIS, partner_state

KEY = "demo-key"
MOBILE, STOPPED = "33612345678", "33612345679"
VIRTUAL = "33700000001"

#: how each error code the sandbox knows is provoked: (method, path, fields, setup)
Setup = Callable[[SandboxServer], None]
ERROR_CALLS: dict[int, tuple[str, str, dict[str, Any], Setup | None]] = {
    1: ("POST", "/send", {"phoneNumbers": MOBILE, "message": "hi"}, None),
    2: ("POST", "/send", {"apiKey": KEY, "message": "hi"}, None),
    3: ("GET", "/message-status", {"apiKey": KEY, "phoneNumber": MOBILE}, None),
    4: ("GET", "/message-status", {"apiKey": KEY, "messageId": "9", "phoneNumber": MOBILE}, None),
    9: ("POST", "/send", {"apiKey": KEY, "phoneNumbers": "12", "sender": "x!"}, None),
    10: ("GET", "/me", {"apiKey": "wrong"}, None),
    11: (
        "POST",
        "/send",
        {"apiKey": KEY, "phoneNumbers": MOBILE, "message": "hi"},
        lambda s: setattr(s.sandbox.accounts["smspartner"]["demo"], "credits", Decimal(0)),
    ),
    14: (
        "POST",
        "/vn/send",
        {"apiKey": KEY, "to": STOPPED, "from": VIRTUAL, "message": "hi"},
        lambda s: partner_state(s.sandbox).stop_list.add(STOPPED),
    ),
    20: ("GET", "/me", {"apiKey": KEY}, lambda s: partner_state(s.sandbox).deactivated.add("demo")),
    30: ("GET", "/me", {"apiKey": KEY}, lambda s: partner_state(s.sandbox).blocked.add("demo")),
}


def call(server: SandboxServer, method: str, path: str, fields: dict[str, Any]) -> httpx.Response:
    """One call as the vendor's samples make it: GET with a query string, POST with JSON."""
    url = server.url_for("smspartner") + "/v1" + path
    if method == "GET":
        return httpx.get(url, params=fields, timeout=10)
    return httpx.post(url, json=fields, timeout=10)


def valid_xml(answer: httpx.Response) -> list[Any]:
    """The answer's values (nested entries as lists), after checking it is XML that
    result.xsd accepts."""
    assert answer.headers["content-type"].startswith("text/xml")
    root = xmlsafe.parse(answer.content)
    assert xmlsafe.schema_problems(xmlsafe.load_schema("smspartner/result.xsd"), root) == []
    return _values(root)


def _values(element: Any) -> list[Any]:
    return [_values(e) if len(e) else e.text for e in element]


def test_the_walk_covers_every_error_code() -> None:
    """Each code of the sandbox's table is provoked below."""
    assert sorted(ERROR_CALLS) == sorted(ERRORS)


@pytest.mark.parametrize("code", sorted(ERROR_CALLS))
def test_each_error_answer_is_valid_xml(sandbox: SandboxServer, code: int) -> None:
    """success false, the code, then its message (or code 9's nested list of problems)."""
    method, path, fields, setup = ERROR_CALLS[code]
    if setup is not None:
        setup(sandbox)
    answer = call(sandbox, method, path, fields | {"_format": "xml"})
    assert answer.status_code == ERRORS[code][0]
    entries = valid_xml(answer)
    assert entries[:2] == ["false", str(code)]
    if code == 9:  # one nested <entry> [elementId, message] per problem
        at_fault = ("sender", "sender", "phoneNumbers", "message")  # "x!": short, special
        assert [problem[0] for problem in entries[2]] == [f"children[{f}].data" for f in at_fault]


def test_each_success_answer_is_valid_xml(sandbox: SandboxServer) -> None:
    """send (now and scheduled), vn/send, bulk-send with failing lines, me, message-status,
    multi-status with an unknown pair, message-cancel: every XML answer passes."""
    partner_state(sandbox.sandbox).stop_list.add(STOPPED)
    tomorrow = datetime.now(PARIS) + timedelta(days=1)
    later = {"scheduledDeliveryDate": f"{tomorrow:%d/%m/%Y}", "time": 10, "minute": 0}
    send = {"apiKey": KEY, "phoneNumbers": MOBILE, "message": "hi", "_format": "xml"}
    assert valid_xml(call(sandbox, "POST", "/send", send))[:2] == ["true", "200"]
    scheduled = valid_xml(call(sandbox, "POST", "/send", send | later))
    message_id = scheduled[2]
    assert len(scheduled) == 7  # scheduledDeliveryDate follows currency
    vn = {"apiKey": KEY, "to": MOBILE, "from": VIRTUAL, "message": "hi", "_format": "xml"}
    assert valid_xml(call(sandbox, "POST", "/vn/send", vn))[:2] == ["true", "200"]
    lines = [{"phoneNumber": p, "message": "hi"} for p in (MOBILE, "12", STOPPED)]
    bulk = {"apiKey": KEY, "SMSList": lines, "_format": "xml"}
    answered = valid_xml(call(sandbox, "POST", "/bulk-send", bulk))[-1]
    assert [line[:2] for line in answered] == [["true", "200"], ["false", "9"], ["false", "14"]]
    me = valid_xml(call(sandbox, "GET", "/me", {"apiKey": KEY, "_format": "xml"}))
    assert [len(group) for group in me[2:]] == [3, 7]  # user, credits
    status = {"apiKey": KEY, "messageId": message_id, "phoneNumber": MOBILE, "_format": "xml"}
    assert valid_xml(call(sandbox, "GET", "/message-status", status))[6] == "Waiting"
    pairs = [{"messageId": message_id, "phoneNumber": p} for p in (MOBILE, STOPPED)]
    multi = {"apiKey": KEY, "SMSStatut_List": pairs, "_format": "xml"}
    answered = valid_xml(call(sandbox, "POST", "/multi-status", multi))[2]
    assert [line[:2] for line in answered] == [["true", "200"], ["false", "4"]]
    cancel = {"apiKey": KEY, "messageId": message_id, "_format": "xml"}
    assert valid_xml(call(sandbox, "GET", "/message-cancel", cancel))[:2] == ["true", "200"]


# the vendor page's own samples ------------------------------------------------------------


def stored(server: SandboxServer, text: str) -> list[tuple[str, str, str]]:
    """(sender, recipient, text) of the messages the sandbox took with ``text``."""
    messages = server.sandbox.messages["smspartner"].values()
    return [(m.sender, m.recipient, m.text) for ms in messages for m in ms if m.text == text]


def test_python_sample_sends_json_without_content_type(sandbox: SandboxServer) -> None:
    """The page's Python sample: ``requests.post(url, data=json.dumps(OrderedDict(...)))``,
    so no Content-Type at all; it then reads ``r.json()["success"]``."""
    url = sandbox.url_for("smspartner") + "/v1" + "/vn/send"
    data = {"apiKey": KEY, "to": MOBILE, "from": VIRTUAL, "message": "from the Python sample"}
    r = requests.post(url, data=json.dumps(data), timeout=10)
    assert "content-type" not in {h.lower() for h in r.request.headers}
    assert r.json().get("success") is True
    assert stored(sandbox, "from the Python sample") == [
        (VIRTUAL, MOBILE, "from the Python sample")
    ]


#: the page's PHP sample, its URL and key taken from argv: a JSON string as
#: CURLOPT_POSTFIELDS, which curl labels application/x-www-form-urlencoded
PHP_SAMPLE = r"""
$fields = array('apiKey' => $argv[2], 'to' => $argv[3], 'from' => $argv[4],
                'message' => 'This is your message');
$curl = curl_init();
curl_setopt($curl, CURLOPT_URL, $argv[1]);
curl_setopt($curl, CURLOPT_RETURNTRANSFER, true);
curl_setopt($curl, CURLOPT_TIMEOUT, 10);
curl_setopt($curl, CURLOPT_POST, 1);
curl_setopt($curl, CURLOPT_POSTFIELDS, json_encode($fields));
$result = curl_exec($curl);
curl_close($curl);
echo $result;
"""


def _php_with_curl() -> str | None:
    php = shutil.which("php")
    if php is None:
        return None
    probe = [php, "-r", "echo function_exists('curl_init') ? 'yes' : 'no';"]
    return php if subprocess.run(probe, capture_output=True, text=True).stdout == "yes" else None


@pytest.mark.interop
def test_php_sample_posts_json_labelled_as_a_form(sandbox: SandboxServer) -> None:
    """The page's PHP sample, run by PHP's curl, gets success and its message stored."""
    php = _php_with_curl()
    if php is None:
        pytest.skip("php with the curl extension is not installed (Debian: php-cli php-curl)")
    url = sandbox.url_for("smspartner") + "/v1/vn/send"
    run = subprocess.run(
        [php, "-r", PHP_SAMPLE, "--", url, KEY, MOBILE, VIRTUAL],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["success"] is True
    assert stored(sandbox, "This is your message") == [(VIRTUAL, MOBILE, "This is your message")]
