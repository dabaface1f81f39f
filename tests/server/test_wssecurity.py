"""WS-Security UsernameToken on the bridge, through zeep's own ``UsernameToken`` over real
HTTP, on both lanes: PasswordText and PasswordDigest, the freshness window both ways, a
replayed nonce refused across processes' shared database, a Timestamp answered with a
Timestamp, and every refusal an Authentication error with its WS-Security faultcode and
nothing stored."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine
import zeep
from cryptography.fernet import Fernet
from lxml import etree
from sqlalchemy import select
from zeep.wsse import utils as wsse_utils
from zeep.wsse.username import UsernameToken

from smsxml.server.accounts import Accounts
from smsxml.server.app import RPC_PATH, BridgeServer
from smsxml.server.logins import LoginFailure
from smsxml.server.models import Account, Message, UsedNonce
from smsxml.server.settings import LoginSettings, WsSecuritySettings
from smsxml.server.store import Store
from smsxml.server.wssecurity import (
    WSSE,
    WSU,
    NonceCache,
    SecretBox,
    password_digest,
)

from .conftest import fresh_postgres

#: a fixed moment, far from today: nothing depends on the date the tests run
NOW = datetime(2031, 5, 4, 12, 0, 0, tzinfo=UTC)


def _zulu(moment: datetime) -> str:
    """``moment`` as wsu:Created writes it (seconds, Z)."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"


AUTH = "Authentication error."
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE_NS = {"wsse": WSSE, "wsu": WSU, "soap": SOAP_ENV}


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    """The wall clock at NOW, ticking; tests move it."""
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


def message(**overrides: object) -> dict[str, object]:
    """A send with empty body credentials: the header carries them."""
    return {
        "username": "",
        "password": "",
        "from": "Shop",
        "to": {"recipients": ["306912345678"]},
        "message": "hello",
        "coding": "GSM",
        "flash": False,
    } | overrides


def client(bridge: BridgeServer, token: UsernameToken | None = None) -> zeep.Client:
    return zeep.Client(bridge.wsdl_url, wsse=token)


def digest_token(
    user: str = "demo",
    secret: str = "demo",
    *,
    nonce: str | None = None,
    created: datetime | None = None,
) -> UsernameToken:
    """zeep's PasswordDigest token (its own nonce, unless one is given)."""
    return UsernameToken(
        user, secret, use_digest=True, nonce=nonce, created=created, zulu_timestamp=True
    )


def fault_of(call: Callable[[], object]) -> zeep.exceptions.Fault:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        call()
    return caught.value


def messages(bridge: BridgeServer) -> int:
    """How many sends the store holds."""
    with bridge.app.store.reader.connect() as db:
        return len(db.execute(select(Message.id)).all())


def assert_refused(bridge: BridgeServer, fault: zeep.exceptions.Fault, wsse_code: str) -> None:
    """An Authentication error with the WS-Security faultcode, and nothing stored."""
    assert fault.message.startswith(AUTH), fault.message
    assert fault.code == f"wsse:{wsse_code}" or fault.code.endswith(f"}}{wsse_code}"), fault.code
    assert bridge.app.store.counts() == {}
    assert messages(bridge) == 0


def test_password_text_token_sends(clock: object, bridge: BridgeServer) -> None:
    """zeep's PasswordText token with empty body credentials sends as the token's account."""
    sms = client(bridge, UsernameToken("demo", "demo")).service
    message_id = sms.send(**message())
    assert len(message_id) == 12
    assert sms.query("", "", message_id, "306912345678") in ("Queued", "Pending", "Delivered")


def test_password_digest_token_sends(clock: object, bridge: BridgeServer) -> None:
    """zeep's PasswordDigest token (nonce, Created) sends and queries."""
    message_id = client(bridge, digest_token()).service.send(**message())
    assert len(message_id) == 12
    assert bridge.app.store.counts()


def test_body_credentials_equal_to_the_header_are_accepted(
    clock: object, bridge: BridgeServer
) -> None:
    """The same account in the header and the body: one login, accepted."""
    sms = client(bridge, digest_token()).service
    assert len(sms.send(**message(username="demo", password="demo"))) == 12


def test_body_credentials_of_another_account_are_refused(
    clock: object, bridge: BridgeServer
) -> None:
    """Header and body naming different accounts: an Authentication error, nothing sent."""
    bridge.app.store.accounts.add("other", "secret", 10)
    sms = client(bridge, digest_token()).service
    fault = fault_of(lambda: sms.send(**message(username="other", password="secret")))
    assert fault.message == AUTH
    assert bridge.app.store.counts() == {}


def test_wrong_digest_is_failed_authentication(clock: object, bridge: BridgeServer) -> None:
    """A digest made with a wrong secret: wsse:FailedAuthentication, nothing sent."""
    sms = client(bridge, digest_token(secret="wrong")).service
    assert_refused(bridge, fault_of(lambda: sms.send(**message())), "FailedAuthentication")


def test_wrong_text_password_is_failed_authentication(clock: object, bridge: BridgeServer) -> None:
    """A wrong PasswordText: wsse:FailedAuthentication, nothing sent."""
    sms = client(bridge, UsernameToken("demo", "wrong")).service
    assert_refused(bridge, fault_of(lambda: sms.send(**message())), "FailedAuthentication")


@pytest.mark.parametrize("digest", [True, False], ids=["digest", "text"])
def test_unknown_user_is_failed_authentication(
    clock: object, bridge: BridgeServer, digest: bool
) -> None:
    """An unknown name, as either token type: wsse:FailedAuthentication, nothing sent."""
    token = digest_token("nobody") if digest else UsernameToken("nobody", "demo")
    sms = client(bridge, token).service
    assert_refused(bridge, fault_of(lambda: sms.send(**message())), "FailedAuthentication")


def test_replayed_nonce_is_refused(clock: object, bridge: BridgeServer) -> None:
    """The same nonce twice within the window: the second is refused, nothing sent by it."""
    created = NOW + timedelta(seconds=1)
    token = digest_token(nonce="0123456789abcdef", created=created)
    sms = client(bridge, token).service
    sms.send(**message())
    fault = fault_of(lambda: sms.send(**message()))
    assert fault.message.startswith(AUTH)
    assert fault.code.endswith("InvalidSecurity"), fault.code
    assert messages(bridge) == 1


@pytest.mark.parametrize("offset", [-301, 301], ids=["stale", "future"])
def test_created_outside_the_window_is_message_expired(
    clock: object, bridge: BridgeServer, offset: int
) -> None:
    """Created more than 5 minutes away from the server's clock, either way: expired."""
    token = digest_token(created=NOW + timedelta(seconds=offset))
    sms = client(bridge, token).service
    assert_refused(bridge, fault_of(lambda: sms.send(**message())), "MessageExpired")


def test_created_within_the_window_is_accepted_both_ways(
    clock: object, bridge: BridgeServer
) -> None:
    """Four minutes behind and ahead (clock skew either way) are accepted."""
    for offset in (-240, 240):
        token = digest_token(created=NOW + timedelta(seconds=offset))
        assert len(client(bridge, token).service.send(**message())) == 12


def test_the_window_is_a_setting(clock: object, make_bridge: Callable[..., BridgeServer]) -> None:
    """logins.wssecurity.window narrows the window."""
    bridge = make_bridge(logins=LoginSettings(wssecurity=WsSecuritySettings(window=30)))
    token = digest_token(created=NOW - timedelta(seconds=60))
    sms = client(bridge, token).service
    assert_refused(bridge, fault_of(lambda: sms.send(**message())), "MessageExpired")


def test_timestamp_is_answered_with_a_timestamp(clock: object, bridge: BridgeServer) -> None:
    """A request with a wsu:Timestamp gets one in the response's Security header."""
    timestamp = wsse_utils.WSU.Timestamp(
        wsse_utils.WSU.Created(_zulu(NOW)),
        wsse_utils.WSU.Expires(_zulu(NOW + timedelta(minutes=5))),
    )
    token = UsernameToken("demo", "demo", timestamp_token=timestamp)
    zeep_client = client(bridge, token)
    with zeep_client.settings(raw_response=True):
        answer = zeep_client.service.send(**message())
    document = etree.fromstring(answer.content)
    created = document.findtext(
        "soap:Header/wsse:Security/wsu:Timestamp/wsu:Created", namespaces=WSSE_NS
    )
    assert created is not None and created.startswith(_zulu(NOW)[:15]), answer.text
    assert document.find(".//{http://smsxml.org/isms/1}sendResponse") is not None


def test_no_timestamp_no_security_header_in_the_answer(clock: object, bridge: BridgeServer) -> None:
    """Without a request Timestamp the answer stays as it was: no header."""
    zeep_client = client(bridge, digest_token())
    with zeep_client.settings(raw_response=True):
        answer = zeep_client.service.send(**message())
    assert b"Security" not in answer.content


def test_expired_timestamp_is_message_expired(clock: object, bridge: BridgeServer) -> None:
    """A Timestamp from ten minutes ago (Created and Expires long past): MessageExpired."""
    timestamp = wsse_utils.WSU.Timestamp(
        wsse_utils.WSU.Created(_zulu(NOW - timedelta(minutes=10))),
        wsse_utils.WSU.Expires(_zulu(NOW - timedelta(minutes=9))),
    )
    sms = client(bridge, UsernameToken("demo", "demo", timestamp_token=timestamp)).service
    assert_refused(bridge, fault_of(lambda: sms.send(**message())), "MessageExpired")


# --- the wire, as PHP, WCF and Java clients write it (raw HTTP) ---------------------

SEND_BODY = (
    '<t:send xmlns:t="http://smsxml.org/isms/1"><username>{user}</username>'
    "<password>{password}</password><from>Shop</from><to><recipients>306912345678"
    "</recipients></to><message>hello</message><coding>GSM</coding><flash>false</flash>"
    "</t:send>"
)


def security(token: str, must_understand: bool = True) -> str:
    flag = ' soap:mustUnderstand="1"' if must_understand else ""
    return f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"{flag}>{token}</wsse:Security>'


def text_token(user: str = "demo", password: str = "demo") -> str:
    return (
        f"<wsse:UsernameToken><wsse:Username>{user}</wsse:Username>"
        '<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/'
        f'oasis-200401-wss-username-token-profile-1.0#PasswordText">{password}'
        "</wsse:Password></wsse:UsernameToken>"
    )


def post(
    bridge: BridgeServer, headers: str, user: str = "", password: str = "", path: str = "/soap"
) -> httpx.Response:
    envelope = (
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Header>{headers}</soap:Header>'
        f"<soap:Body>{SEND_BODY.format(user=user, password=password)}</soap:Body>"
        "</soap:Envelope>"
    )
    return httpx.post(
        f"{bridge.url}{path}",
        content=envelope,
        headers={"Content-Type": "text/xml; charset=utf-8"},
        timeout=30,
    )


def faultcode(answer: httpx.Response) -> tuple[str, str, str]:
    """(faultcode as a Clark name, faultstring, smsFault code) of a fault answer."""
    document = etree.fromstring(answer.content)
    fault = document.find(".//soap:Fault", namespaces=WSSE_NS)
    assert fault is not None, answer.text
    code_text = fault.findtext("faultcode") or ""
    prefix, _, local = code_text.rpartition(":")
    namespace = fault.find("faultcode").nsmap.get(prefix or None, "")  # type: ignore[union-attr]
    code = document.findtext(".//{*}smsFault/{*}code") or ""
    return f"{{{namespace}}}{local}", fault.findtext("faultstring") or "", code


def test_must_understand_security_header_is_understood(clock: object, bridge: BridgeServer) -> None:
    """wsse:Security with mustUnderstand="1" (PHP, WCF, CXF send it so) is honoured."""
    answer = post(bridge, security(text_token()))
    assert answer.status_code == 200, answer.text


def test_other_must_understand_headers_still_fault(clock: object, bridge: BridgeServer) -> None:
    """A mandatory header we do not know is still a MustUnderstand fault."""
    other = '<x:Routing xmlns:x="urn:example" soap:mustUnderstand="1"/>'
    answer = post(bridge, security(text_token()) + other)
    assert answer.status_code == 500
    assert "soap:MustUnderstand" in answer.text
    assert messages(bridge) == 0


def test_fault_carries_the_wsse_faultcode_and_the_contract_detail(
    clock: object, bridge: BridgeServer
) -> None:
    """faultcode wsse:FailedAuthentication (namespace declared), faultstring and detail
    of the contract."""
    answer = post(bridge, security(text_token(password="wrong")))
    assert answer.status_code == 500
    assert faultcode(answer) == (f"{{{WSSE}}}FailedAuthentication", AUTH, "AuthenticationError")


@pytest.mark.parametrize(
    ("token", "wsse_code"),
    [
        (
            "<wsse:UsernameToken><wsse:Username>demo</wsse:Username></wsse:UsernameToken>",
            "InvalidSecurityToken",
        ),
        (text_token().replace("#PasswordText", "#PasswordHash"), "InvalidSecurityToken"),
        (
            text_token().replace("#PasswordText", "#PasswordDigest"),  # no nonce, no Created
            "InvalidSecurityToken",
        ),
        (
            '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/>',
            "UnsupportedSecurityToken",
        ),
        (text_token() + text_token(), "InvalidSecurity"),
    ],
    ids=["no-password", "unknown-type", "digest-without-nonce", "signature", "two-tokens"],
)
def test_malformed_security_headers_fault_with_their_code(
    clock: object, bridge: BridgeServer, token: str, wsse_code: str
) -> None:
    """What the header cannot be honoured for is a fault with its WS-Security code."""
    answer = post(bridge, security(token))
    assert faultcode(answer)[::2] == (f"{{{WSSE}}}{wsse_code}", "AuthenticationError")
    assert faultcode(answer)[1].startswith(AUTH)
    assert messages(bridge) == 0


@pytest.mark.parametrize(
    "created",
    [
        _zulu(NOW),
        _zulu(NOW).replace("Z", ".1234567Z"),
        f"{NOW + timedelta(hours=2):%Y-%m-%dT%H:%M:%S}.5+02:00",
    ],
    ids=["php-seconds", "dotnet-7-digits", "offset"],
)
def test_hand_written_digests_with_each_created_form(
    clock: object, bridge: BridgeServer, created: str
) -> None:
    """A digest written by hand (PHP, .NET inspectors): Created in seconds, with 7
    fractional digits, or with an offset; the digest covers Created as written."""
    nonce = created.encode()[-16:]
    token = (
        "<wsse:UsernameToken><wsse:Username>demo</wsse:Username>"
        '<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/'
        'oasis-200401-wss-username-token-profile-1.0#PasswordDigest">'
        f"{password_digest(nonce, created, 'demo')}</wsse:Password>"
        f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>"
        f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken>"
    )
    assert post(bridge, security(token)).status_code == 200


@pytest.mark.parametrize("left_out", ["<username></username>", "<password></password>", "both"])
def test_body_credentials_may_be_left_out_when_the_header_has_them(
    clock: object, bridge: BridgeServer, left_out: str
) -> None:
    """Without username or password elements at all (JAX-WS omits a null): the header's
    account; without a header, still the documented Authentication error."""
    body = SEND_BODY.format(user="", password="")
    for element in ("<username></username>", "<password></password>"):
        if left_out in (element, "both"):
            body = body.replace(element, "")

    def send(headers: str) -> httpx.Response:
        return httpx.post(
            f"{bridge.url}/soap",
            content=f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Header>{headers}'
            f"</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>",
            headers={"Content-Type": "text/xml; charset=utf-8"},
            timeout=30,
        )

    assert send(security(text_token())).status_code == 200
    assert faultcode(send(""))[1:] == (AUTH, "AuthenticationError")


def test_the_rpc_endpoint_reads_the_header_too(clock: object, bridge: BridgeServer) -> None:
    """Code written for the real iSMS (rpc/literal endpoint) may add the header as well."""
    assert post(bridge, security(text_token()), path=RPC_PATH).status_code == 200
    refused = post(bridge, security(text_token(password="wrong")), path=RPC_PATH)
    assert faultcode(refused)[0] == f"{{{WSSE}}}FailedAuthentication"


def test_body_credentials_still_work_without_a_header(clock: object, bridge: BridgeServer) -> None:
    """No header: the body's credentials, as before."""
    assert post(bridge, "", "demo", "demo").status_code == 200


# --- the opt-in, the throttle, the nonce cache ---------------------------------------


def test_digest_needs_the_opt_in_text_does_not(
    clock: object, make_bridge: Callable[..., BridgeServer]
) -> None:
    """An account without a WS-Security secret logs in with PasswordText only."""
    bridge = make_bridge(fast_lane=True)
    bridge.app.store.accounts.add("acme", "s3cret", 10)
    assert len(client(bridge, UsernameToken("acme", "s3cret")).service.send(**message())) == 12
    sms = client(bridge, digest_token("acme", "s3cret")).service
    assert fault_of(lambda: sms.send(**message())).code.endswith("FailedAuthentication")
    bridge.app.store.accounts.set_wss_secret("acme", "digest-secret")
    assert (
        len(client(bridge, digest_token("acme", "digest-secret")).service.send(**message())) == 12
    )


def test_secrets_are_stored_encrypted(tmp_path: object) -> None:
    """The column holds a Fernet token, not the secret; configured keys rotate."""
    url = f"sqlite:///{tmp_path}/keys.sqlite3"
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    store = Store(url)
    store.accounts.configure(LoginSettings(wssecurity=WsSecuritySettings(keys=[old])))
    store.accounts.add("acme", "pw", wss_secret="top-secret")
    with store.reader.connect() as db:
        sealed = db.execute(select(Account.wss_secret).where(Account.name == "acme")).scalar()
    assert sealed and "top-secret" not in sealed
    assert SecretBox([old]).open(sealed) == "top-secret"
    assert SecretBox([new, old]).open(sealed) == "top-secret"  # rotation: new first
    assert SecretBox([new]).open(sealed) is None  # a lost key: digest refused, no crash
    rotated = Store(url)
    rotated.accounts.configure(LoginSettings(wssecurity=WsSecuritySettings(keys=[new])))
    digest = password_digest(b"n", "c", "top-secret")
    match = lambda secret: password_digest(b"n", "c", secret) == digest  # noqa: E731 - short
    assert rotated.accounts.authenticate_digest("acme", match) is None
    store.close()
    rotated.close()


def test_failed_digests_are_throttled_like_passwords(
    clock: time_machine.Coordinates, make_bridge: Callable[..., BridgeServer]
) -> None:
    """Wrong digests count as failed logins (login_failures): then even the right one
    waits, refused with the same fault."""
    settings = LoginSettings(free_failures=2, delay=60, max_delay=600)
    bridge = make_bridge(sandbox=False, logins=settings)
    for _ in range(2):
        sms = client(bridge, digest_token(secret="wrong")).service
        fault = fault_of(lambda: sms.send(**message()))  # noqa: B023 - called at once
        assert fault.message == AUTH
    refused = fault_of(lambda: client(bridge, digest_token()).service.send(**message()))
    assert re.fullmatch(
        rf"{re.escape(AUTH)} Too many failed logins: try again in \d+ s\.", refused.message
    ), refused.message
    assert refused.code.endswith("FailedAuthentication")
    with bridge.app.store.reader.connect() as db:
        assert len(db.execute(select(LoginFailure.id)).all()) == 2
    clock.shift(timedelta(seconds=601))
    assert len(client(bridge, digest_token()).service.send(**message())) == 12


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_replay_is_refused_by_another_process_on_the_database(
    clock: object, tmp_path: object, engine: str
) -> None:
    """Two stores on one database (two workers, two nodes): the nonce one saw, the other
    refuses; a sighting whose window passed no longer counts, purged or not."""
    url = f"sqlite:///{tmp_path}/nonces.sqlite3" if engine == "sqlite" else fresh_postgres()
    first, second = NonceCache(Store(url)), NonceCache(Store(url))
    expires = NOW.replace(tzinfo=None) + timedelta(seconds=300)
    assert first.remember(b"nonce-1", expires)
    assert not second.remember(b"nonce-1", expires)
    assert not first.remember(b"nonce-1", expires)
    later = expires + timedelta(seconds=1)
    with time_machine.travel(later.replace(tzinfo=UTC), tick=False):
        assert second.remember(b"nonce-1", later + timedelta(seconds=300))  # expired sighting
        assert second.remember(b"nonce-2", later + timedelta(seconds=300))
        assert first.remember(b"nonce-3", later + timedelta(seconds=300))
    with first.store.reader.connect() as db:
        left = db.execute(select(UsedNonce.digest)).scalars().all()
    assert sorted(left) == sorted(
        hashlib.sha256(n).hexdigest() for n in (b"nonce-1", b"nonce-2", b"nonce-3")
    )
    first.store.close()
    second.store.close()


def test_the_nonce_cache_purges_at_most_every_interval(clock: object, tmp_path: object) -> None:
    """Expired nonces are deleted by a remember() once purge_every has passed in that
    process, not by every one."""
    store = Store(f"sqlite:///{tmp_path}/purge.sqlite3")
    cache = NonceCache(store, purge_every=3600)
    past = NOW.replace(tzinfo=None) - timedelta(seconds=1)
    assert cache.remember(b"a", past)  # the first call purges (nothing yet), then inserts
    assert cache.remember(b"b", past + timedelta(hours=1))

    def stored() -> int:
        with store.reader.connect() as db:
            return len(db.execute(select(UsedNonce.digest)).all())

    assert stored() == 2  # "a" expired, but the interval has not passed
    cache._next_purge = 0.0  # the interval passed
    assert cache.remember(b"c", past + timedelta(hours=1))
    assert stored() == 2  # "a" purged, "c" added
    store.close()


def test_accounts_verified_means_empty_body_credentials_only() -> None:
    """VERIFIED stands in for empty credentials or its own name, never another's."""
    from smsxml.server.accounts import VERIFIED, AccountInfo

    info = AccountInfo(1, "demo", 0)
    token = VERIFIED.set(info)
    try:
        accounts = Accounts.__new__(Accounts)
        assert Accounts.authenticate(accounts, "", "") is info
        assert Accounts.authenticate(accounts, "demo", "") is info
        assert Accounts.authenticate(accounts, "other", "") is None
        assert Accounts.authenticate(accounts, "other", "pw") is None
        assert Accounts.authenticate(accounts, "", "pw") is None
    finally:
        VERIFIED.reset(token)


def test_cli_sets_and_removes_the_secret(tmp_path: object) -> None:
    """`smsxml accounts wss-secret NAME --secret-stdin` opts in; --off opts out."""
    url = f"sqlite:///{tmp_path}/cli.sqlite3"
    with closing(Store(url)) as store:
        store.accounts.add("acme", "pw")

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "smsxml.cli", "accounts", "wss-secret", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("SMSXML_")}
            | {"SMSXML_DATABASE_URL": url},
            check=False,
        )

    def opted_in() -> bool:
        with closing(Store(url)) as store:
            return store.accounts.authenticate_digest("acme", "digest-secret".__eq__) is not None

    done = cli("acme", "--secret-stdin", stdin="digest-secret\n")
    assert done.returncode == 0, done.stderr
    assert opted_in()
    assert cli("acme", "--off").returncode == 0
    assert not opted_in()
    missing = cli("nobody", "--off")
    assert missing.returncode != 0 and "no account" in missing.stderr
