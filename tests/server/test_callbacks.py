"""Delivery callbacks: each provider's report, POSTed to ``/dlr/<provider>/<token>``, settles
the stored row; a wrong token changes nothing; the token's secret may come from the settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import zeep

from smsxml.providers import build
from smsxml.sandbox import DeliverySchedule, SandboxConfig
from smsxml.server.app import BridgeServer
from smsxml.server.delivery import DeliveryTracker, callback_token
from smsxml.server.store import Store

from ..conftest import wait_for

#: the sandboxes say Pending and never settle, so neither polling nor their own callbacks
#: can end a row: only the test's reports do
UNSETTLED = SandboxConfig(schedule=DeliverySchedule(pending_after=0.0, final_after=3600.0))

#: (provider id, recipient, delivered) → httpx.post keywords of one report
Report = Callable[[str, str, bool], dict[str, Any]]


def isms_report(provider_id: str, recipient: str, delivered: bool) -> dict[str, Any]:
    """The form iSMS POSTs to dlr-url."""
    status = "Delivered" if delivered else "Failed"
    form = {"mid": provider_id, "mobile": recipient, "status": status, "timestamp": "1700000000"}
    return {"data": form}


def smspartner_report(provider_id: str, recipient: str, delivered: bool) -> dict[str, Any]:
    """SMS Partner's urlDlr JSON (numeric messageId, "+" number)."""
    payload = {
        "messageId": int(provider_id),
        "phoneNumber": "+" + recipient,
        "status": "Delivered" if delivered else "Not delivered",
        "date": "2024-05-01 12:00:00",
        "cost": "0.045",
        "currency": "EUR",
    }
    return {"json": payload}


def allmysms_report(provider_id: str, recipient: str, delivered: bool) -> dict[str, Any]:
    """The allmysms webhook form, final acknowledgements only (1 delivered, 2 not)."""
    form = {
        "smsId": provider_id,
        "status": "1" if delivered else "2",
        "statusText": "Delivered" if delivered else "Not delivered",
        "phoneNumber": recipient,
        "receptionDate": "2024-05-01 12:00:00",
        "campaignId": "",
    }
    return {"data": form}


def start(make_bridge: Callable[..., BridgeServer], provider: str, prefix: str) -> BridgeServer:
    """A bridge routing ``prefix`` to ``provider`` alone, with unsettling sandboxes."""
    return make_bridge(sandbox_config=UNSETTLED, routes={prefix: [provider]})


def send(bridge: BridgeServer, recipients: list[str]) -> tuple[Any, str]:
    """The SOAP service and the id of a message sent to ``recipients`` over it."""
    service = zeep.Client(bridge.wsdl_url).service
    message_id = service.send(
        "demo", "demo", "Shop", {"recipients": recipients}, "Hi", "GSM", False
    )
    return service, message_id


def pending(bridge: BridgeServer, provider: str) -> list[tuple[str, str]]:
    """(provider id, recipient) of ``provider``'s Pending rows."""
    with bridge.app.store.reader.connect() as db:
        rows = db.exec_driver_sql(
            "SELECT provider_id, recipient FROM deliveries"
            " WHERE provider = ? AND state = 'Pending' ORDER BY id",
            (provider,),
        )
        return [(pid, recipient) for pid, recipient in rows]


def pending_rows(bridge: BridgeServer, provider: str, count: int) -> dict[str, str]:
    """recipient → provider id, once ``provider`` has taken all ``count`` rows."""

    def rows() -> dict[str, str] | None:
        found = pending(bridge, provider)
        return {recipient: pid for pid, recipient in found} if len(found) == count else None

    return wait_for(rows, timeout=10)  # type: ignore[no-any-return]


def states(service: Any, message_id: str, recipients: list[str]) -> list[str]:
    return [service.query("demo", "demo", message_id, r) for r in recipients]


@pytest.mark.parametrize(
    ("provider", "recipients", "report"),
    [
        ("isms", ["306912345678", "306912345679"], isms_report),
        ("smspartner", ["33612345678", "33612345679"], smspartner_report),
        ("allmysms", ["33612345678", "33612345679"], allmysms_report),
    ],
)
def test_a_delivery_report_settles_the_row(
    make_bridge: Callable[..., BridgeServer], provider: str, recipients: list[str], report: Report
) -> None:
    """The provider's own report shape, POSTed over HTTP, moves one Pending row to
    Delivered and the other to Failed, as query then says over SOAP."""
    bridge = start(make_bridge, provider, recipients[0][:2])
    service, message_id = send(bridge, recipients)
    rows = pending_rows(bridge, provider, len(recipients))
    assert states(service, message_id, recipients) == ["Pending", "Pending"]
    url = f"{bridge.url}/dlr/{provider}/{bridge.app.tracker.token(provider)}"
    for recipient, delivered in zip(recipients, (True, False), strict=True):
        answer = httpx.post(url, timeout=10, **report(rows[recipient], recipient, delivered))
        assert (answer.status_code, answer.text) == (200, "OK")
    assert states(service, message_id, recipients) == ["Delivered", "Failed"]
    assert pending(bridge, provider) == []


def test_a_report_with_a_wrong_token_changes_nothing(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """A made-up token, or another route's, is 404 and the row stays Pending."""
    recipient = "306912345678"
    bridge = start(make_bridge, "isms", "30")
    service, message_id = send(bridge, [recipient])
    provider_id = pending_rows(bridge, "isms", 1)[recipient]
    for token in ("0" * 32, bridge.app.tracker.token("smspartner")):
        answer = httpx.post(
            f"{bridge.url}/dlr/isms/{token}",
            timeout=10,
            **isms_report(provider_id, recipient, delivered=True),
        )
        assert answer.status_code == 404
    assert states(service, message_id, [recipient]) == ["Pending"]
    assert pending(bridge, "isms") == [(provider_id, recipient)]


def test_a_configured_secret_replaces_the_stored_one(tmp_path: Path) -> None:
    """With a secret given (the callback_token setting), tokens made from it are accepted
    and the token of the secret kept in the database is refused."""
    store = Store(f"sqlite:///{tmp_path / 'tracker.sqlite3'}")
    isms = build("isms", "http://127.0.0.1:9/", username="demo", password="demo")
    try:
        stored = DeliveryTracker(store, {"isms": isms}, {})
        configured = DeliveryTracker(store, {"isms": isms}, {}, secret="shared-by-every-node")
        assert stored.token("isms") == callback_token(store.secret("callback-token"), "isms")
        assert configured.token("isms") == callback_token("shared-by-every-node", "isms")
        report = {"mid": "UNKNOWN", "mobile": "306912345678", "status": "Delivered"}
        assert configured.callback("isms", configured.token("isms"), report) == 0  # no such row
        with pytest.raises(PermissionError):
            configured.callback("isms", stored.token("isms"), report)
    finally:
        isms.close()
        store.close()


def test_the_bridge_hands_out_urls_with_the_configured_secret(
    make_bridge: Callable[..., BridgeServer],
) -> None:
    """``callback_token`` in the settings makes the tokens of the URLs given to providers."""
    bridge = make_bridge(callback_token="a-secret-shared-by-every-node")
    url = bridge.app.callback_url("isms")
    assert url is not None
    assert url.endswith("/dlr/isms/" + callback_token("a-secret-shared-by-every-node", "isms"))


#: what reaches a callback URL from a broken or hostile sender: (body, content type)
MALFORMED = [
    (b"garbage", "application/x-www-form-urlencoded"),
    (b"", "application/x-www-form-urlencoded"),
    (b'{"messageId": 12', "application/json"),  # truncated JSON
    (b"[1, 2, 3]", "application/json"),
    (b'{"messageId": {"a": 1}, "status": ["x"], "smsId": [], "mid": {}}', "application/json"),
    (b"<DATA><SMS><MOBILEPHONE>3069", "text/xml"),  # truncated XML
    (b"mid=&mobile=&status=", "application/x-www-form-urlencoded"),
    (b"smsId=1&status=%ED%B2%80&receptionDate=yesterday-ish", "application/x-www-form-urlencoded"),
    (b"mid=X&mobile=306912345678&status=" + b"Z" * 100_000, "application/x-www-form-urlencoded"),
    (
        b"messageId=1&status=%25s%25s%25n'; DROP TABLE deliveries;--",
        "application/x-www-form-urlencoded",
    ),
]


@pytest.mark.parametrize("provider", ["isms", "smspartner", "allmysms"])
def test_a_malformed_report_is_refused_with_a_reason_and_changes_nothing(
    make_bridge: Callable[..., BridgeServer], provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage, truncated JSON or XML, wrong types, empty or huge fields, SQL- and
    format-string-like text: each a 400 with a short plain reason, no traceback logged,
    and the Pending row stays Pending."""
    recipient = {"isms": "306912345678"}.get(provider, "33612345678")
    bridge = start(make_bridge, provider, recipient[:2])
    service, message_id = send(bridge, [recipient])
    pending_rows(bridge, provider, 1)
    url = f"{bridge.url}/dlr/{provider}/{bridge.app.tracker.token(provider)}"
    for body, content_type in MALFORMED:
        answer = httpx.post(url, content=body, headers={"Content-Type": content_type}, timeout=10)
        assert answer.status_code == 400, (body[:60], answer.text)
        assert answer.text.startswith("unreadable delivery report")
        assert len(answer.text) <= 200
    assert states(service, message_id, [recipient]) == ["Pending"]
    assert not [r for r in caplog.records if r.exc_info or r.levelname in ("ERROR", "CRITICAL")]
