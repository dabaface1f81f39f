"""Every XML answer the allmysms sandbox gives (sendSms and simulateCampaign, each status of
the vendor's table) is valid against schemas/allmysms/answer.xsd, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from smsxml import xmlsafe
from smsxml.providers.allmysms import DATE_FORMAT, PARIS
from smsxml.sandbox import SandboxConfig, SandboxServer
from smsxml.sandbox.allmysms import STATUS_TEXTS
from tests.conftest import FAST_SCHEDULE

FR1, FR2 = "33612345678", "33687654321"
SMS = f"<SMS><MOBILEPHONE>{FR1}</MOBILEPHONE></SMS>"


@dataclass(frozen=True)
class Case:
    """One feed and the status the sandbox must answer it with; ``credits`` is the demo
    account's balance for the call (None: untouched)."""

    status: int
    head: str = "<MESSAGE>Bonjour</MESSAGE>"
    sms: str = SMS
    api_key: str = "demo-key"
    credits: Decimal | None = None
    raw: str | None = None  # smsData as is, instead of a <DATA> built from head and sms

    def sms_data(self) -> str:
        return self.raw if self.raw is not None else f"<DATA>{self.head}{self.sms}</DATA>"


def _tomorrow() -> str:
    return (datetime.now(PARIS) + timedelta(days=1)).strftime(DATE_FORMAT)


CASES = [
    Case(100, head="<MESSAGE>Bonjour</MESSAGE><TPOA>Shop</TPOA>"),
    Case(101, head=f"<MESSAGE>Bonjour</MESSAGE><DATE>{_tomorrow()}</DATE>"),
    Case(102, api_key="wrong"),
    Case(103, credits=Decimal(0)),
    Case(104, sms=SMS + f"<SMS><MOBILEPHONE>{FR2}</MOBILEPHONE></SMS>", credits=Decimal(1)),
    Case(105, raw=""),
    Case(106, raw="<DATA><MESSAGE>Bonjour</MESSAGE>"),
    Case(107, head="<MESSAGE>Bonjour</MESSAGE><TPOA>1Shop</TPOA>"),
    Case(108, head="<CLIENT>SOMEONE</CLIENT><MESSAGE>Bonjour</MESSAGE>"),
    Case(109, head="<MESSAGE>Bonjour #param_1#</MESSAGE><DYNAMIC>1</DYNAMIC>"),
    Case(110, head="<MESSAGE> </MESSAGE>"),
    Case(111, head=f"<MESSAGE>{'x' * 641}</MESSAGE>"),
    Case(112, head="<MESSAGE>Bonjour #param_1#</MESSAGE>"),
    Case(113, sms=SMS + "<SMS><MOBILEPHONE>123</MOBILEPHONE></SMS>"),
    Case(114, sms="<SMS><MOBILEPHONE>123</MOBILEPHONE></SMS>"),
    Case(115, head="<MESSAGE>Bonjour</MESSAGE><DATE>2030-02-31 10:00:00</DATE>"),
    Case(
        117,
        head=f"<MESSAGE>https://e.fr/{'a' * 80}</MESSAGE><TRACKING>1</TRACKING>",
    ),
    Case(118, head="<MESSAGE>Bonjour</MESSAGE><MASTERACCOUNT>ghost</MASTERACCOUNT>"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(schedule=FAST_SCHEDULE, seed=1)) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def test_the_walk_covers_every_status_of_the_vendor_table() -> None:
    """Each status the sandbox can answer (the vendor's table) has a case below."""
    assert sorted(case.status for case in CASES) == sorted(STATUS_TEXTS)


@pytest.mark.parametrize("call", ["sendSms", "simulateCampaign"])
@pytest.mark.parametrize("case", CASES, ids=lambda case: str(case.status))
def test_each_answer_is_valid_against_answer_xsd(
    server: SandboxServer, http: httpx.Client, call: str, case: Case
) -> None:
    """The XML answer (the default, no returnformat) has the expected status and passes the
    schema with the hardened validator."""
    account = server.sandbox.accounts["allmysms"]["demo"]
    kept = account.credits
    if case.credits is not None:
        account.credits = case.credits
    try:
        answer = http.post(
            f"{server.url_for('allmysms')}/http/9.0/{call}/",
            data={"login": "demo", "apiKey": case.api_key, "smsData": case.sms_data()},
        )
    finally:
        account.credits = kept
    assert answer.status_code == 200
    root = xmlsafe.parse(answer.content)
    assert xmlsafe.schema_problems(xmlsafe.load_schema("allmysms/answer.xsd"), root) == []
    assert root.findtext("status") == str(case.status)
    # 104 counts what the feed needs (2 credits) and what the account has (1)
    assert root.findtext("statusText") == STATUS_TEXTS[case.status].format(used="2", available="1")
