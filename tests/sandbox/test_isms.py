"""The iSMS.gr sandbox: the vendor page's own requests get its exact bytes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import pytest
from werkzeug.test import Client

from smsxml.sandbox import DeliverySchedule, Sandbox, SandboxConfig, SandboxServer
from smsxml.sandbox.core import Account, SandboxMessage
from smsxml.sandbox.isms import IsmsApp, delivery_report
from smsxml.status import DeliveryState
from tests.conftest import FAST_SCHEDULE

GOOD = "306912345678"
SCHEDULE_EXAMPLES = [  # the vendor page's own list
    "2017-07-17",
    "2017-05-11 14:40",
    "2017-04-22 17:47:55",
    "11 June 2017 11:00:00",
    "+1 day",
    "+1 week",
    "+1 week 2 days 4 hours 2 seconds",
    "next Thursday",
    "last Monday",
]


@pytest.fixture
def patient_server(make_sandbox: Callable[..., SandboxServer]) -> SandboxServer:
    """A sandbox whose messages stay Queued for 0.5 s, so that a test sees that state."""
    return make_sandbox(SandboxConfig(schedule=DeliverySchedule(0.5, 1.0), seed=1))


@pytest.fixture(scope="module")
def raw() -> Iterator[httpx.Client]:
    """One plain HTTP client for the vendor's literal URLs (a new one per call is slow)."""
    with httpx.Client(timeout=5.0) as http:
        yield http


@pytest.fixture(scope="module")
def vendor_sandbox() -> Iterator[SandboxServer]:
    """One sandbox for the stateless byte-for-byte checks; "scheduler" has its own credit."""
    with SandboxServer(SandboxConfig(schedule=FAST_SCHEDULE, seed=1)) as server:
        server.sandbox.accounts["isms"]["scheduler"] = Account("scheduler", "pw", "", Decimal(100))
        yield server


def demo(sandbox: SandboxServer) -> Account:
    return sandbox.sandbox.accounts["isms"]["demo"]


def api(sandbox: SandboxServer, call: str) -> str:
    return f"{sandbox.url_for('isms')}/api/http/{call}"


# the vendor's own requests, byte for byte ------------------------------------------------


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("credits.php?username=demo&password=demo", b"Credits:1000.00"),
        (
            "credits.php?username=YourUSERNAME&password=YourPASSWORD",
            b"Error: Authentication error.",
        ),
        ("send.php?username=demo&password=demo&from=myself&message=hi", b"Error: No recipients."),
        (
            "send.php?username=demo&password=demo&from=my+self&message=hi&to=306912345678",
            b"Error: Invalid sender identity.",
        ),
        (
            "send.php?username=demo&password=demo&from=me&to=306912345678&schedule=tomorrowish",
            b"Error: Invalid scheduling date.",
        ),
        (
            "query.php?username=demo&password=demo&mobile=306912345678",
            b"Error: No message ID defined.",
        ),
        ("query.php?username=demo&password=demo&mid=0008FABD", b"Error: No mobile defined."),
        (
            "query.php?username=demo&password=demo&mid=0008FABD&mobile=306912345678",
            b"Error: No such message or recipient.",
        ),
        ("hlr.php?username=demo&password=demo&mobiles=", b"Error: No recipients."),
        (
            "hlrquery.php?username=demo&password=demo&mobile=306971234567",
            b"Error: No message ID defined.",
        ),
        ("hlrquery.php?username=demo&password=demo&mid=MESSAGE_ID", b"Error: No mobile defined."),
        (
            "hlrquery.php?username=demo&password=demo&mid=MESSAGE_ID&mobile=306971234567",
            b"Error: No such message ID or mobile.",
        ),
        (
            "savecontact.php?username=demo&password=demo&surname=SURNAME&name=NAME&mobile=306912345678&comments=COMMENTS",
            b"OK",
        ),
        (
            "savecontact.php?username=demo&password=demo&surname=S&name=N&comments=C",
            b"Error: Mobile number is empty.",
        ),
        (
            "savecontact.php?username=demo&password=demo&mobile=MOBILE",
            b"Error: Invalid mobile number.",
        ),
        ("deletecontact.php?username=demo&password=demo&mobile=306900000001", b"FAILED"),
        ("deletecontact.php?username=demo&password=demo", b"Error: Mobile number is empty."),
    ],
)
def test_vendor_requests_get_exact_answers(
    vendor_sandbox: SandboxServer, raw: httpx.Client, call: str, expected: bytes
) -> None:
    """The page's GET URLs (with demo credentials) get the page's exact lines, HTTP 200."""
    response = raw.get(api(vendor_sandbox, call))
    assert (response.status_code, response.content) == (200, expected)


def test_vendor_send_example_and_query(patient_server: SandboxServer, raw: httpx.Client) -> None:
    """The page's send example answers ID:<id>; query.php answers "Status: Queued" for it."""
    send = "send.php?username=demo&password=demo&from=myself&message=text+at+utf8+format"
    sent = raw.get(api(patient_server, send + "&to=306912345678,306998765432"))
    assert re.fullmatch(rb"ID:[0-9A-F]{10}", sent.content)
    mid = sent.text.removeprefix("ID:")
    for mobile in ("306912345678", "306998765432"):
        query = f"query.php?username=demo&password=demo&mid={mid}&mobile={mobile}"
        assert raw.get(api(patient_server, query)).content == b"Status: Queued"
    credits = raw.get(api(patient_server, "credits.php?username=demo&password=demo"))
    assert credits.content == b"Credits:998.00"


def test_vendor_insufficient_credits_line(sandbox: SandboxServer, raw: httpx.Client) -> None:
    """A poor account's send and hlr answer exactly "Error: Insufficient credits."."""
    demo(sandbox).credits = Decimal("0.05")
    for call in (
        "send.php?username=demo&password=demo&from=me&to=306912345678&message=hi",
        "hlr.php?username=demo&password=demo&mobiles=306949876543,306931234567",
    ):
        assert raw.get(api(sandbox, call)).content == b"Error: Insufficient credits."


def test_vendor_hlr_example(patient_server: SandboxServer, raw: httpx.Client) -> None:
    """The page's hlr.php example answers ID:<id>, and hlrquery.php a bare "Queued" first."""
    hlr = "hlr.php?username=demo&password=demo&mobiles=306949876543,306931234567,35712548796"
    answer = raw.get(api(patient_server, hlr))
    assert re.fullmatch(rb"ID:[0-9A-F]{10}", answer.content)
    mid = answer.text.removeprefix("ID:")
    query = f"hlrquery.php?username=demo&password=demo&mid={mid}&mobile=306931234567"
    assert raw.get(api(patient_server, query)).content == b"Queued"


@pytest.mark.usefixtures("moved_clock")
@pytest.mark.parametrize("schedule", SCHEDULE_EXAMPLES)
def test_vendor_schedule_examples_are_accepted(
    vendor_sandbox: SandboxServer, raw: httpx.Client, schedule: str
) -> None:
    """Every schedule the page lists, URL-encoded, is accepted by send.php."""
    params = {"username": "scheduler", "password": "pw", "from": "me", "to": GOOD}
    answer = raw.get(api(vendor_sandbox, "send.php"), params={**params, "schedule": schedule})
    assert answer.text.startswith("ID:")


def test_post_form_is_accepted_and_unknown_parameters_ignored(
    sandbox: SandboxServer, raw: httpx.Client
) -> None:
    """POSTed forms work like GET; typos such as "massage" are ignored, not refused."""
    form = {"username": "demo", "password": "demo", "from": "me", "to": GOOD, "massage": "x"}
    assert raw.post(api(sandbox, "send.php"), data=form).text.startswith("ID:")


def test_gsm_coding_bills_unknown_characters_as_question_marks(
    sandbox: SandboxServer, raw: httpx.Client
) -> None:
    """Greek lowercase under the default coding=GSM is one GSM-7 part, not UCS-2."""
    params = {"username": "demo", "password": "demo", "from": "me", "to": GOOD, "message": "αβγ"}
    mid = raw.get(api(sandbox, "send.php"), params=params).text.removeprefix("ID:")
    [stored] = sandbox.sandbox.find("isms", mid)
    assert (stored.unicode, stored.parts, stored.text) == (False, 1, "αβγ")


def test_unknown_path_is_404(vendor_sandbox: SandboxServer, raw: httpx.Client) -> None:
    """The page's doubled "api/http/api/http/deletecontact.php" is a typo: 404."""
    doubled = api(vendor_sandbox, "api/http/deletecontact.php?username=demo")
    assert raw.get(doubled).status_code == 404


# in-process, without a socket -------------------------------------------------------------


@pytest.fixture
def wsgi() -> tuple[Sandbox, Client]:
    """The iSMS application alone, on a sandbox of its own, called through werkzeug."""
    sandbox = Sandbox(SandboxConfig(schedule=FAST_SCHEDULE, seed=1))
    return sandbox, Client(IsmsApp(sandbox))


def test_answers_are_phps_default_content_type_and_only_get_or_post(
    wsgi: tuple[Sandbox, Client],
) -> None:
    """Answers are text/html; charset=UTF-8 as PHP's; PUT is 405 with Allow: GET, POST."""
    _sandbox, client = wsgi
    answer = client.get("/api/http/credits.php?username=demo&password=demo")
    assert answer.headers["Content-Type"] == "text/html; charset=UTF-8"
    refused = client.put("/api/http/credits.php?username=demo&password=demo")
    assert (refused.status_code, refused.headers["Allow"]) == (405, "GET, POST")


def test_a_send_keeps_each_valid_number_once(wsgi: tuple[Sandbox, Client]) -> None:
    """A send forgives blanks, takes repeats once and drops malformed numbers, uncharged."""
    sandbox, client = wsgi
    query = "username=demo&password=demo&from=Shop&message=hi"
    answer = client.get(f"/api/http/send.php?{query}&to={GOOD},%20{GOOD},,abc")
    mid = answer.get_data(as_text=True).removeprefix("ID:")
    assert [m.recipient for m in sandbox.find("isms", mid)] == [GOOD]
    assert sandbox.accounts["isms"]["demo"].credits == Decimal(999)


def test_delivery_reports_are_for_final_states_only() -> None:
    """The dlr-url form (mid, mobile, status, timestamp) is built for final states only."""
    message = SandboxMessage("isms", "ABC", "demo", "Shop", GOOD, "hi", 1, Decimal(1))
    assert delivery_report(message, DeliveryState.QUEUED) is None
    assert delivery_report(message, DeliveryState.PENDING) is None
    before = int(time.time())
    kind, form = delivery_report(message, DeliveryState.FAILED) or ("", {})
    assert (kind, form["mid"], form["mobile"], form["status"]) == ("form", "ABC", GOOD, "Failed")
    assert before <= int(form["timestamp"]) <= int(time.time())
