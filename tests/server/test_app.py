"""The bridge as a WSGI application (BridgeApp): its routes, its demo account, and what
it says when it would publish an address nobody can reach."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug.test import Client

from smsxml.server.accounts import Accounts
from smsxml.server.app import RPC_PATH, RPC_WSDL_PATH, BridgeApp
from smsxml.server.settings import DispatchSettings

from .conftest import bridge_settings


def test_the_routes_answer_without_dispatching(tmp_path: Path) -> None:
    """An endpoint that only accepts answers ?wsdl with its public address, the rpc WSDL
    where iSMS code looks, /healthz with the counts, GET /soap with how to use it, and
    anything else with 404."""
    settings = bridge_settings(
        tmp_path,
        sandbox=False,
        public_url="https://sms.example.org/",
        dispatch=DispatchSettings(workers=0),
    )
    app = BridgeApp(settings)
    try:
        client = Client(app)
        wsdl = client.get("/soap?wsdl")
        assert wsdl.status_code == 200
        assert b'location="https://sms.example.org/soap"' in wsdl.data
        rpc = client.get(RPC_WSDL_PATH)
        assert f'location="https://sms.example.org{RPC_PATH}"'.encode() in rpc.data
        health = client.get("/healthz")
        assert json.loads(health.data) == {"status": "ok", "database": "ok", "deliveries": {}}
        usage = client.get("/soap")
        assert usage.status_code == 405 and usage.headers["Allow"] == "GET, POST"
        assert client.get("/admin").status_code == 404
    finally:
        app.stop()


def test_workers_starting_together_share_one_demo_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every worker adds the demo account unless it exists; a worker that loses the race
    (another one inserted it between its look and its insert) starts all the same."""
    settings = bridge_settings(tmp_path)
    BridgeApp(settings).stop()
    monkeypatch.setattr(Accounts, "get", lambda self, name: None)  # it looked too early
    late = BridgeApp(settings)
    try:
        assert [account.name for account in late.store.accounts.all()] == ["demo"]
    finally:
        late.stop()


def test_a_bridge_on_every_address_without_a_public_url_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its WSDL would advertise http://0.0.0.0:…, which no client can reach."""
    with caplog.at_level("WARNING", logger="smsxml.server"):
        BridgeApp(bridge_settings(tmp_path, host="0.0.0.0", port=8080)).stop()
        BridgeApp(
            bridge_settings(tmp_path, host="0.0.0.0", public_url="https://sms.example.org")
        ).stop()
    warnings = [r.getMessage() for r in caplog.records if "public_url" in r.getMessage()]
    assert len(warnings) == 1
    assert "http://0.0.0.0:8080/soap" in warnings[0]
