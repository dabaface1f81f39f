"""The iSMS.gr HTTP client against its sandbox, over real HTTP (the sandbox's exact bytes:
tests/sandbox/test_isms.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from smsxml.errors import (
    AuthenticationFailed,
    BadInput,
    InsufficientCredit,
    InvalidRecipient,
    InvalidSender,
    OutcomeUnknown,
    PermanentFailure,
    ProviderError,
    RateLimited,
    TemporaryFailure,
)
from smsxml.providers.base import Balance, OutgoingMessage, StatusUpdate, Submitted
from smsxml.providers.isms import HlrResult, HlrStatus, Isms
from smsxml.sandbox import DeliverySchedule, SandboxConfig, SandboxServer
from smsxml.sandbox.core import Account
from smsxml.status import DeliveryState
from tests.conftest import FAST_SCHEDULE, CallbackReceiver, wait_for

GOOD = "306912345678"
FAILING = "306912345670"  # ends in 0: the sandbox fails it
OTHER = "306998765432"


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[Isms]:
    with Isms(sandbox.url_for("isms"), "demo", "demo") as isms:
        yield isms


@pytest.fixture
def patient_server(make_sandbox: Callable[..., SandboxServer]) -> SandboxServer:
    """A sandbox whose messages stay Queued for 0.5 s, so that a test sees that state."""
    return make_sandbox(SandboxConfig(schedule=DeliverySchedule(0.5, 1.0), seed=1))


@pytest.fixture
def patient(patient_server: SandboxServer) -> Iterator[Isms]:
    """A client of :func:`patient_server`."""
    with Isms(patient_server.url_for("isms"), "demo", "demo") as isms:
        yield isms


def demo(sandbox: SandboxServer) -> Account:
    return sandbox.sandbox.accounts["isms"]["demo"]


def message(*recipients: str, text: str = "Hello", **options: Any) -> OutgoingMessage:
    return OutgoingMessage("iSMS", recipients, text, **options)


# the Provider interface ------------------------------------------------------------------


def test_balance_reads_credits_as_decimal(client: Isms) -> None:
    """credits.php's "Credits:1000.00" becomes Balance(1000, "credits")."""
    assert client.credits() == Decimal("1000")
    assert client.balance() == Balance(Decimal("1000.00"), "credits")


def test_send_shares_one_id_and_charges_per_part_per_recipient(
    client: Isms, sandbox: SandboxServer
) -> None:
    """Two recipients of a two-part text: one id for both, 4 credits taken."""
    submitted = client.send(message(GOOD, OTHER, text="x" * 161))
    assert [s.recipient for s in submitted] == [GOOD, OTHER]
    assert submitted[0].provider_id == submitted[1].provider_id
    assert re.fullmatch(r"[0-9A-F]{10}", submitted[0].provider_id)
    assert client.credits() == Decimal("996")
    stored = sandbox.sandbox.find("isms", submitted[0].provider_id)
    assert [(m.recipient, m.parts, m.sender) for m in stored] == [
        (GOOD, 2, "iSMS"),
        (OTHER, 2, "iSMS"),
    ]


def test_greek_text_goes_out_as_utf8_and_is_billed_as_ucs2(
    client: Isms, sandbox: SandboxServer
) -> None:
    """Text GSM-7 lacks is sent with coding=UTF-8: 71 Greek letters are 2 UCS-2 parts."""
    [sent] = client.send(message(GOOD, text="α" * 71, flash=True))
    [stored] = sandbox.sandbox.find("isms", sent.provider_id)
    assert (stored.unicode, stored.parts, stored.flash) == (True, 2, True)
    assert client.credits() == Decimal("998")


def test_lifecycle_through_statuses(patient: Isms) -> None:
    """Queued right after the send, then Delivered, or Failed for a number ending in 0."""
    submitted = patient.send(message(GOOD, FAILING))
    assert {u.state for u in patient.statuses(submitted)} == {DeliveryState.QUEUED}

    def final() -> list[StatusUpdate] | None:
        updates = patient.statuses(submitted)
        return updates if all(u.state.final for u in updates) else None

    assert [(u.recipient, u.state, u.detail) for u in wait_for(final)] == [
        (GOOD, DeliveryState.DELIVERED, "Delivered"),
        (FAILING, DeliveryState.FAILED, "Failed"),
    ]


@pytest.mark.usefixtures("moved_clock")
def test_pending_is_reported_between_queued_and_final(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    """With a slower schedule, query.php answers Pending before the final state."""
    server = make_sandbox(SandboxConfig(schedule=DeliverySchedule(0.05, 5.0)))
    with Isms(server.url_for("isms"), "demo", "demo") as isms:
        [sent] = isms.send(message(GOOD))
        assert wait_for(lambda: isms.query(sent.provider_id, GOOD) is DeliveryState.PENDING)


def test_dropped_recipient_is_reported_failed(client: Isms) -> None:
    """An invalid number is dropped from the send (not charged) and later reported Failed."""
    submitted = client.send(message(GOOD, "12"))
    assert client.credits() == Decimal("999")
    updates = client.statuses(submitted)
    assert updates[1].state is DeliveryState.FAILED
    assert updates[1].detail == "Error: No such message or recipient."


def test_delivery_reports_are_posted_and_parsed(client: Isms, callbacks: CallbackReceiver) -> None:
    """dlr-url receives a form POST per final state; parse_delivery_report reads it."""
    [good, failing] = client.send(message(GOOD, FAILING, dlr_url=callbacks.url))
    wait_for(lambda: len(callbacks.received) >= 2)
    time.sleep(0.1)  # nothing more may come (Queued/Pending are not reported)
    assert len(callbacks.received) == 2
    assert {r["method"] for r in callbacks.received} == {"POST"}
    assert set(callbacks.received[0]["form"]) == {"mid", "mobile", "status", "timestamp"}
    updates = {
        u.recipient: u for u in (Isms.parse_delivery_report(r["form"]) for r in callbacks.received)
    }
    assert updates[GOOD].state is DeliveryState.DELIVERED
    assert updates[FAILING].state is DeliveryState.FAILED
    assert updates[GOOD].provider_id == good.provider_id == failing.provider_id


def test_too_many_recipients_for_one_call(client: Isms) -> None:
    """More than max_batch recipients is refused before any request."""
    with pytest.raises(ValueError, match="at most 250"):
        client.send(message(*[GOOD] * (Isms.max_batch + 1)))


# send errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.credits(),
        lambda c: c.send(message(GOOD)),
        lambda c: c.query("0000000001", GOOD),
        lambda c: c.hlr([GOOD]),
        lambda c: c.hlr_query("0000000001", GOOD),
        lambda c: c.save_contact(GOOD),
        lambda c: c.delete_contact(GOOD),
    ],
    ids=["credits", "send", "query", "hlr", "hlrquery", "savecontact", "deletecontact"],
)
def test_wrong_password_is_authentication_failed(
    sandbox: SandboxServer, call: Callable[[Isms], object]
) -> None:
    """Every call answers "Error: Authentication error." to a wrong password."""
    with (
        Isms(sandbox.url_for("isms"), "demo", "wrong") as isms,
        pytest.raises(AuthenticationFailed) as raised,
    ):
        call(isms)
    assert raised.value.text == "Error: Authentication error."
    assert raised.value.code == "Authentication error."  # the SOAP API's fault string
    assert raised.value.provider == "isms"


def test_poor_account_is_insufficient_credit(client: Isms, sandbox: SandboxServer) -> None:
    """Half a credit cannot pay one SMS: nothing is charged, nothing stored."""
    demo(sandbox).credits = Decimal("0.5")
    with pytest.raises(InsufficientCredit, match="Insufficient credits"):
        client.send(message(GOOD))
    assert client.credits() == Decimal("0.5")
    assert not sandbox.sandbox.messages["isms"]


@pytest.mark.parametrize(
    "sender", ["TwelveLetter", "12345678901234567", "+306912345678", "", "iSMS.gr"]
)
def test_bad_sender_is_invalid_sender(client: Isms, sender: str) -> None:
    """Senders other than ≤ 11 letters/digits or ≤ 16 digits are refused."""
    with pytest.raises(InvalidSender):
        client.send(OutgoingMessage(sender, [GOOD], "Hi"))


@pytest.mark.parametrize("sender", ["Abcdefghijk", "1234567890123456"])
def test_longest_senders_are_accepted(client: Isms, sender: str) -> None:
    """11 alphanumerics and 16 digits are the limits, both included."""
    assert client.send(OutgoingMessage(sender, [GOOD], "Hi"))


@pytest.mark.parametrize("recipients", [(), ("abc",), ("0030691234",)])
def test_no_valid_recipient_is_invalid_recipient(client: Isms, recipients: tuple[str, ...]) -> None:
    """No number, or none shaped like an MSISDN: "Error: No recipients."."""
    with pytest.raises(InvalidRecipient, match="No recipients"):
        client.send(message(*recipients))


def test_bad_schedule_is_permanent_and_free(client: Isms) -> None:
    """An unreadable schedule is "Invalid scheduling date.", and costs nothing."""
    with pytest.raises(PermanentFailure) as raised:
        client.submit("iSMS", [GOOD], "Hi", schedule="someday soon")
    assert raised.value.code == "Invalid scheduling date."
    assert client.credits() == Decimal("1000")


@pytest.mark.usefixtures("moved_clock")
def test_future_schedule_stays_queued(client: Isms) -> None:
    """A message scheduled in an hour (datetime or strtotime text) is still Queued later."""
    by_date = client.send(message(GOOD, schedule=datetime.now(UTC) + timedelta(hours=1)))
    by_text = client.submit("iSMS", [GOOD], "Hi", schedule="+1 day")
    time.sleep(FAST_SCHEDULE.final_after + 0.05)
    assert client.query(by_date[0].provider_id, GOOD) is DeliveryState.QUEUED
    assert client.query(by_text, GOOD) is DeliveryState.QUEUED


@pytest.mark.usefixtures("moved_clock")
def test_past_schedule_sends_at_once(client: Isms) -> None:
    """ "last Monday" (a vendor example, always past) is accepted and delivered as usual."""
    mid = client.submit("iSMS", [GOOD], "Hi", schedule="last Monday")
    assert wait_for(lambda: client.query(mid, GOOD) is DeliveryState.DELIVERED)


# query, HLR, contacts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mid", "mobile", "code"),
    [
        ("", GOOD, "No message ID defined."),
        ("0000000001", "", "No mobile defined."),
        ("NOSUCHID", GOOD, "No such message or recipient."),
    ],
)
def test_query_errors(client: Isms, mid: str, mobile: str, code: str) -> None:
    """query.php's three refusals are permanent failures with the vendor's text."""
    with pytest.raises(PermanentFailure) as raised:
        client.query(mid, mobile)
    assert raised.value.code == code


def test_query_sees_only_the_accounts_own_messages(client: Isms, sandbox: SandboxServer) -> None:
    """Another account asking for demo's message id gets "No such message or recipient."."""
    [sent] = client.send(message(GOOD))
    sandbox.sandbox.accounts["isms"]["other"] = Account("other", "pw", "k", Decimal(10))
    with Isms(sandbox.url_for("isms"), "other", "pw") as other, pytest.raises(PermanentFailure):
        other.query(sent.provider_id, GOOD)


def test_hlr_lookup_lifecycle(patient: Isms) -> None:
    """hlr.php takes 0.1 credit a number; hlrquery.php answers Queued, then the full line."""
    numbers = ["306931234567", FAILING, "35712548796"]  # live, unreachable, not a valid number
    lookup = patient.hlr(numbers)
    assert patient.credits() == Decimal("999.7")
    assert patient.hlr_query(lookup, numbers[0]) == HlrResult(HlrStatus.QUEUED)

    def final() -> list[HlrResult] | None:
        results = [patient.hlr_query(lookup, number) for number in numbers]
        return results if all(result.final for result in results) else None

    live, unreachable, unknown = wait_for(final)
    assert (live.status, live.country, live.error_code) == (HlrStatus.DELIVERED, "GR", "0")
    assert live.operator and live.imsi.startswith("00101") and live.serving_msc
    assert (unreachable.status, unreachable.error_code) == (HlrStatus.UNDELIVERED, "1")
    assert unknown == HlrResult(HlrStatus.UNKNOWN)


def test_hlr_errors(client: Isms, sandbox: SandboxServer) -> None:
    """hlr.php: no numbers → No recipients; too poor → Insufficient credits."""
    with pytest.raises(InvalidRecipient, match="No recipients"):
        client.hlr([])
    demo(sandbox).credits = Decimal("0.15")
    with pytest.raises(InsufficientCredit):
        client.hlr([GOOD, OTHER])


@pytest.mark.parametrize(
    ("mid", "mobile", "code"),
    [
        ("", GOOD, "No message ID defined."),
        ("0000000001", "", "No mobile defined."),
        ("NOSUCHID", GOOD, "No such message ID or mobile."),
    ],
)
def test_hlr_query_errors(client: Isms, mid: str, mobile: str, code: str) -> None:
    """hlrquery.php's refusals, including its own wording "No such message ID or mobile."."""
    with pytest.raises(PermanentFailure) as raised:
        client.hlr_query(mid, mobile)
    assert raised.value.code == code


def test_contacts_save_update_delete(client: Isms) -> None:
    """savecontact.php adds or updates; deletecontact.php removes; a second delete FAILs."""
    client.save_contact(GOOD, surname="Papadopoulos", name="Maria", comments="VIP")
    client.save_contact(GOOD, surname="Papadopoulou", name="Maria")
    client.delete_contact(GOOD)
    with pytest.raises(PermanentFailure) as raised:
        client.delete_contact(GOOD)
    assert (raised.value.code, raised.value.text) == ("FAILED", "FAILED")


@pytest.mark.parametrize(
    ("mobile", "code"), [("", "Mobile number is empty."), ("69-12", "Invalid mobile number.")]
)
def test_contact_mobile_errors(client: Isms, mobile: str, code: str) -> None:
    """Both contact calls refuse an empty or malformed mobile as an invalid recipient."""
    for call in (client.save_contact, client.delete_contact):
        with pytest.raises(InvalidRecipient) as raised:
            call(mobile)
        assert raised.value.code == code


# the request the client writes -------------------------------------------------------------


def recording(answer: str, seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=answer)

    return httpx.MockTransport(handler)


def test_client_writes_the_vendors_parameters() -> None:
    """send.php gets from, to (comma-separated), message, coding, flash, schedule, dlr-url."""
    seen: list[httpx.Request] = []
    when = datetime(2017, 7, 17, 9, 30, tzinfo=UTC)  # 12:30 in Athens (summer time)
    with Isms(username="u", password="p", transport=recording("ID:I7I5R4HTAA", seen)) as isms:
        submitted = isms.send(
            message(GOOD, OTHER, text="Γειά", flash=True, schedule=when, dlr_url="http://x/d")
        )
    assert submitted == [Submitted(GOOD, "I7I5R4HTAA"), Submitted(OTHER, "I7I5R4HTAA")]
    request = seen[0]
    assert (request.method, request.url.host, request.url.path) == (
        "GET",
        "cp.isms.gr",
        "/api/http/send.php",
    )
    assert dict(request.url.params) == {
        "username": "u",
        "password": "p",
        "from": "iSMS",
        "to": f"{GOOD},{OTHER}",
        "message": "Γειά",
        "coding": "UTF-8",
        "flash": "1",
        "schedule": "2017-07-17 12:30:00",
        "dlr-url": "http://x/d",
    }


def test_naive_schedule_is_sent_as_written() -> None:
    """A naive datetime is taken as Athens wall-clock time already."""
    seen: list[httpx.Request] = []
    with Isms(username="u", password="p", transport=recording("ID:1", seen)) as isms:
        isms.submit("me", [GOOD], "hi", schedule=datetime(2017, 1, 2, 3, 4, 5))
    assert seen[0].url.params["schedule"] == "2017-01-02 03:04:05"


@pytest.mark.parametrize("answer", ["OK", "\u039f\u039a"])
def test_contact_success_in_latin_or_greek_letters(answer: str) -> None:
    """The page prints the contacts' "OK" in Greek capitals; both spellings are success."""
    with Isms(username="u", password="p", transport=recording(answer, [])) as isms:
        isms.save_contact(GOOD)


def test_undocumented_error_line_is_permanent() -> None:
    """An "Error: …" line the page does not list is still a permanent refusal."""
    with Isms(transport=recording("Error: Account suspended.", [])) as isms:
        with pytest.raises(PermanentFailure) as raised:
            isms.credits()
    assert (raised.value.code, raised.value.text) == (
        "Account suspended.",
        "Error: Account suspended.",
    )


def test_hlr_line_of_wrong_shape_is_malformed() -> None:
    """A final HLR status without its fields (or a bare one with them) is not trusted."""
    for line in ("Delivered", "Queued;GR;;;;", "Maybe"):
        with Isms(transport=recording(line, [])) as isms, pytest.raises(TemporaryFailure):
            isms.hlr_query("1", GOOD)


def test_http_4xx_is_a_provider_error(sandbox: SandboxServer) -> None:
    """A wrong base URL (HTTP 404) is neither a refusal nor an outage: a ProviderError."""
    with (
        Isms(sandbox.url + "/nowhere", "demo", "demo") as isms,
        pytest.raises(ProviderError) as raised,
    ):
        isms.credits()
    assert type(raised.value) is ProviderError and raised.value.code == 404


# delivery reports --------------------------------------------------------------------------


def test_parse_delivery_report_reads_form_and_parse_qs_shapes() -> None:
    """Strings or one-item lists; the status word is kept as the detail."""
    update = Isms.parse_delivery_report(
        {"mid": ["0008FABD"], "mobile": GOOD, "status": "Delivered"}
    )
    assert (update.provider_id, update.recipient, update.state, update.detail) == (
        "0008FABD",
        GOOD,
        DeliveryState.DELIVERED,
        "Delivered",
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"mobile": GOOD, "status": "Delivered"},
        {"mid": "1", "status": "Delivered"},
        {"mid": "1", "mobile": GOOD},
        {"mid": "1", "mobile": GOOD, "status": "Lost"},
        {"mid": [], "mobile": GOOD, "status": "Failed"},
    ],
)
def test_parse_delivery_report_refuses_incomplete_reports(fields: dict[str, Any]) -> None:
    """A report without mid, mobile or a known status is bad input."""
    with pytest.raises(BadInput):
        Isms.parse_delivery_report(fields)


# faults ------------------------------------------------------------------------------------


def faulty(
    make_sandbox: Callable[..., SandboxServer], password: str = "demo", **faults: Any
) -> Isms:
    config = SandboxConfig(schedule=FAST_SCHEDULE, seed=1).with_faults("isms", **faults)
    return Isms(make_sandbox(config).url_for("isms"), "demo", password)


def test_503_is_temporary_for_reads_and_sends(make_sandbox: Callable[..., SandboxServer]) -> None:
    """HTTP 503 (not processed) is TemporaryFailure, after retries for reads."""
    with faulty(make_sandbox, error_rate=1.0) as isms:
        with pytest.raises(TemporaryFailure) as read:
            isms.credits()
        with pytest.raises(TemporaryFailure) as sent:
            isms.send(message(GOOD))
    assert read.value.code == 503 and type(sent.value) is TemporaryFailure


def test_500_on_send_is_outcome_unknown(make_sandbox: Callable[..., SandboxServer]) -> None:
    """HTTP 500 to a send may hide a processed request: OutcomeUnknown, not retried."""
    with (
        faulty(make_sandbox, error_rate=1.0, error_status=500) as isms,
        pytest.raises(OutcomeUnknown),
    ):
        isms.send(message(GOOD))


def test_read_recovers_from_one_503(make_sandbox: Callable[..., SandboxServer]) -> None:
    """A single 503 on credits.php is retried away."""
    with faulty(make_sandbox, error_count=1) as isms:
        assert isms.credits() == Decimal("1000")


def test_dropped_connection(make_sandbox: Callable[..., SandboxServer]) -> None:
    """No answer: OutcomeUnknown for a send, TemporaryFailure for a read."""
    with faulty(make_sandbox, drop_rate=1.0) as isms:
        with pytest.raises(OutcomeUnknown):
            isms.send(message(GOOD))
        with pytest.raises(TemporaryFailure) as read:
            isms.query("1", GOOD)
    assert type(read.value) is TemporaryFailure


def test_rate_limit_is_rate_limited(make_sandbox: Callable[..., SandboxServer]) -> None:
    """HTTP 429 with Retry-After: 1 is RateLimited(retry_after=1)."""
    with faulty(make_sandbox, rate_limit=0) as isms, pytest.raises(RateLimited) as raised:
        isms.send(message(GOOD))
    assert raised.value.retry_after == 1.0


def test_garbled_answers(make_sandbox: Callable[..., SandboxServer]) -> None:
    """A half answer with junk: OutcomeUnknown for a send, TemporaryFailure for reads."""
    with faulty(make_sandbox, malformed_rate=1.0) as isms:
        with pytest.raises(OutcomeUnknown) as sent:
            isms.send(message(GOOD))
        for read in (isms.credits, lambda: isms.query("1", GOOD), lambda: isms.save_contact(GOOD)):
            with pytest.raises(TemporaryFailure) as raised:
                read()
            assert raised.value.code == "malformed"
    assert sent.value.code == "malformed"


# secrets -----------------------------------------------------------------------------------


def test_password_never_in_repr_or_errors(
    sandbox: SandboxServer, make_sandbox: Callable[..., SandboxServer]
) -> None:
    """repr(client) and the messages of refusals and outages never show the password."""
    secret = "s3cret-Pa55"
    clients = [
        Isms(sandbox.url_for("isms"), "demo", secret),
        faulty(make_sandbox, secret, error_rate=1.0),
        faulty(make_sandbox, secret, drop_rate=1.0),
    ]
    for isms in clients:
        assert secret not in repr(isms)
        for call in (isms.credits, lambda i=isms: i.send(message(GOOD))):
            with pytest.raises(ProviderError) as raised:
                call()
            assert secret not in str(raised.value) and secret not in repr(raised.value.args)
        isms.close()
