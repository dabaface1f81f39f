"""WS-Security 1.1 UsernameToken on the server: the ``wsse:Security`` header read once,
before either SOAP lane, and its token turned into an authenticated account.

No Python SOAP server does this (research/soap-toolkit.md §8: spyne has none, zeep signs
only as a client), so it is written here, after the OASIS UsernameToken Profile 1.1 and
what CXF (WSS4J) and WCF servers do:

- ``PasswordText``: the account's password, checked as body credentials are (argon2,
  remembered, throttled);
- ``PasswordDigest``: Base64(SHA-1(nonce + created + secret)) against the account's
  WS-Security secret, kept encrypted (Fernet) because a digest needs the plain secret
  (accounts opt in: docs/bridge.md, "WS-Security");
- ``wsu:Created`` (of the token or of a ``wsu:Timestamp``) within ``window`` seconds of
  now, either way (clock skew); a nonce seen before within that window is a replay,
  refused by every process and node on the database (``wss_nonces``);
- a ``wsu:Timestamp`` in the request gets one in the response: .NET Core's WCF client
  has no switch to accept an unsecured answer (dotnet/wcf#3979).

Faults keep the contract: faultstring "Authentication error." (refined, as other faults
are, for the cases that are not a wrong password), detail ``tns:smsFault`` with code
``AuthenticationError``; the faultcode is the WS-Security QName (``wsse:FailedAuthentication``,
``wsse:InvalidSecurityToken``, ``wsse:MessageExpired``, …), as the SOAP Message Security
spec (§12) asks of SOAP 1.1 and as CXF and WCF send it. Every SOAP 1.1 client we test
(zeep, suds, PHP, JAX-WS, .NET) reads any QName there and still maps the detail. In a
SOAP 1.2 envelope the header works the same; the fault is a Sender fault with the
WS-Security QName as its Subcode (server/soap.py writes both shapes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from lxml import etree
from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError

from smsxml.ns import WSSE, WSU
from smsxml.server.bridge import FAULTS, SmsFault
from smsxml.server.clock import utcnow
from smsxml.server.models import UsedNonce
from smsxml.server.soapforms import SOAP11, Envelope

if TYPE_CHECKING:
    from smsxml.server.accounts import AccountInfo, Accounts
    from smsxml.server.settings import WsSecuritySettings
    from smsxml.server.store import Store

__all__ = [
    "WSSE",
    "WSU",
    "NonceCache",
    "SecretBox",
    "SecurityHeader",
    "UsernameToken",
    "WsSecurity",
    "WsSecurityFault",
    "password_digest",
    "read_security",
    "response_header",
]

_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_TEXT = f"{_PROFILE}#PasswordText"
PASSWORD_DIGEST = f"{_PROFILE}#PasswordDigest"
BASE64_BINARY = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

#: the WS-Security fault codes (SOAP Message Security 1.1, §12) the bridge sends
FAILED_AUTHENTICATION = "FailedAuthentication"  # wrong password or digest, unknown user
INVALID_SECURITY_TOKEN = "InvalidSecurityToken"  # a malformed UsernameToken
INVALID_SECURITY = "InvalidSecurity"  # a malformed header; a replayed nonce (as WSS4J)
UNSUPPORTED_SECURITY_TOKEN = "UnsupportedSecurityToken"  # signatures, binary tokens …
MESSAGE_EXPIRED = "MessageExpired"  # Created or Expires outside the window

#: nonces longer than this are refused (spec-free bound: clients send 16 bytes)
MAX_NONCE_BYTES = 256


class WsSecurityFault(SmsFault):
    """An AuthenticationError fault whose SOAP 1.1 faultcode (SOAP 1.2 Subcode) is
    ``wsse:<wsse_code>``."""

    def __init__(self, wsse_code: str, reason: str | None = None) -> None:
        text = FAULTS["AuthenticationError"] + (f" {reason}" if reason else "")
        super().__init__("AuthenticationError", text)
        self.wsse_code = wsse_code


@dataclass(frozen=True)
class UsernameToken:
    """A ``wsse:UsernameToken`` as sent: ``created`` is kept as written (the digest
    covers its exact characters)."""

    username: str
    password: str
    digest: bool
    nonce: bytes | None = None
    created: str | None = None


@dataclass(frozen=True)
class SecurityHeader:
    """What the request's ``wsse:Security`` header carried."""

    token: UsernameToken | None
    timestamp: bool  # a wsu:Timestamp: the response carries one too


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _parse_time(value: str) -> datetime:
    """An xsd:dateTime → naive UTC (no zone: read as UTC, as the profile asks UTC)."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise WsSecurityFault(INVALID_SECURITY_TOKEN, f"Invalid time: {value[:40]!r}.") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def read_security(
    header: etree._Element | None, envelope: Envelope = SOAP11
) -> SecurityHeader | None:
    """The ``wsse:Security`` header addressed to us (by ``envelope``'s actor or role),
    read; None if there is none. A header we cannot honour faults (a signature we cannot
    check must not be ignored as if it were not there)."""
    if header is None:
        return None
    blocks = [
        h
        for h in header
        if h.tag == f"{{{WSSE}}}Security" and h.get(envelope.target) in envelope.ours
    ]
    if not blocks:
        return None
    if len(blocks) > 1:
        raise WsSecurityFault(INVALID_SECURITY, "More than one wsse:Security header.")
    token: UsernameToken | None = None
    timestamp = False
    for child in blocks[0]:
        if not isinstance(child.tag, str):
            continue
        if child.tag == f"{{{WSSE}}}UsernameToken":
            if token is not None:
                raise WsSecurityFault(INVALID_SECURITY, "More than one UsernameToken.")
            token = _username_token(child)
        elif child.tag == f"{{{WSU}}}Timestamp":
            if timestamp:
                raise WsSecurityFault(INVALID_SECURITY, "More than one wsu:Timestamp.")
            timestamp = True
        else:
            name = etree.QName(child).localname
            raise WsSecurityFault(
                UNSUPPORTED_SECURITY_TOKEN, f"Unsupported in wsse:Security: {name}."
            )
    return SecurityHeader(token, timestamp)


def _username_token(element: etree._Element) -> UsernameToken:
    username = _text(element.find(f"{{{WSSE}}}Username"))
    password = element.find(f"{{{WSSE}}}Password")
    if not username or password is None:
        raise WsSecurityFault(
            INVALID_SECURITY_TOKEN, "A UsernameToken needs a username and a password."
        )
    kind = (password.get("Type") or PASSWORD_TEXT).strip()
    # the full URI, or the QName form of older toolkits (WSE, some PHP samples)
    digest = kind.rsplit("#", 1)[-1].rsplit(":", 1)[-1]
    if digest not in ("PasswordText", "PasswordDigest"):
        raise WsSecurityFault(INVALID_SECURITY_TOKEN, "Unsupported password type.")
    nonce_element = element.find(f"{{{WSSE}}}Nonce")
    nonce: bytes | None = None
    if nonce_element is not None:
        encoding = nonce_element.get("EncodingType") or BASE64_BINARY
        if not encoding.endswith("Base64Binary"):
            raise WsSecurityFault(INVALID_SECURITY_TOKEN, "The nonce must be Base64Binary.")
        try:
            nonce = base64.b64decode(_text(nonce_element), validate=True)
        except (binascii.Error, ValueError):
            raise WsSecurityFault(INVALID_SECURITY_TOKEN, "The nonce is not Base64.") from None
        if not nonce or len(nonce) > MAX_NONCE_BYTES:
            raise WsSecurityFault(INVALID_SECURITY_TOKEN, "Invalid nonce length.")
    created_element = element.find(f"{{{WSU}}}Created")
    created = None if created_element is None else (created_element.text or "").strip()
    token = UsernameToken(
        username=username,
        # the password as written: a text password is compared whole (no stripping)
        password=password.text or "" if digest == "PasswordText" else _text(password),
        digest=digest == "PasswordDigest",
        nonce=nonce,
        created=created,
    )
    if token.digest and (nonce is None or not created):
        raise WsSecurityFault(
            INVALID_SECURITY_TOKEN, "A PasswordDigest needs a Nonce and a Created."
        )
    return token


def _timestamp(header: etree._Element) -> tuple[str | None, str | None]:
    """Created and Expires of the Security header's wsu:Timestamp."""
    for block in header.iterchildren(f"{{{WSSE}}}Security"):
        stamp = block.find(f"{{{WSU}}}Timestamp")
        if stamp is not None:
            created = stamp.find(f"{{{WSU}}}Created")
            expires = stamp.find(f"{{{WSU}}}Expires")
            return (
                None if created is None else _text(created),
                None if expires is None else _text(expires),
            )
    return None, None


def password_digest(nonce: bytes, created: str, secret: str) -> str:
    """Base64(SHA-1(nonce + created + secret)), UsernameToken Profile 1.1 §3.1."""
    return base64.b64encode(
        hashlib.sha1(nonce + created.encode() + secret.encode()).digest()
    ).decode("ascii")


def response_header(now: datetime, lifetime: float, *, xmlns: str = "") -> bytes:
    """A ``soap:Header`` with a ``wsse:Security`` holding a ``wsu:Timestamp`` (no
    mustUnderstand: a client that does not know it, PHP's, must not fault); ``xmlns``
    is added to the Header's start tag (e.g. to declare ``soap``)."""
    created = now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    expires = (now + timedelta(seconds=lifetime)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return (
        f'<soap:Header{xmlns}><wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}">'
        f'<wsu:Timestamp wsu:Id="TS-1"><wsu:Created>{created}</wsu:Created>'
        f"<wsu:Expires>{expires}</wsu:Expires></wsu:Timestamp></wsse:Security>"
        "</soap:Header>"
    ).encode()


class SecretBox:
    """WS-Security secrets encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256).
    The first key encrypts; every key decrypts, so keys rotate by prepending a new one."""

    def __init__(self, keys: list[str]) -> None:
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    @classmethod
    def for_store(cls, store: Store, keys: list[str]) -> SecretBox:
        """The configured keys, or else one made and kept in the database (``secrets``):
        it then protects a stolen backup no better than the table beside it."""
        if keys:
            return cls(keys)
        kept = bytes.fromhex(store.secret("wssecurity-key"))
        return cls([base64.urlsafe_b64encode(kept).decode()])

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, sealed: str) -> str | None:
        """The secret, or None when no configured key opens it (keys changed)."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except (InvalidToken, ValueError):
            return None


class NonceCache:
    """Nonces seen within the freshness window, in the store's database: one INSERT per
    digest login, refused by the primary key when any process saw it first. Rows
    expire with their token; expired ones are deleted at most every ``purge_every``
    seconds per process (one indexed range delete)."""

    def __init__(self, store: Store, purge_every: float = 60.0) -> None:
        self.store = store
        self.purge_every = purge_every
        self._next_purge = 0.0
        self._lock = threading.Lock()

    def remember(self, nonce: bytes, expires_at: datetime) -> bool:
        """True if ``nonce`` is new (now remembered until ``expires_at``); False: a replay."""
        key = hashlib.sha256(nonce).hexdigest()
        now = utcnow()
        self._purge(now)
        try:
            with self.store.engine.begin() as db:
                db.execute(insert(UsedNonce).values(digest=key, expires_at=expires_at))
            return True
        except IntegrityError:
            # seen before; still a replay unless that sighting expired and is not purged
            with self.store.engine.begin() as db:
                taken = db.execute(
                    update(UsedNonce)
                    .where(UsedNonce.digest == key, UsedNonce.expires_at < now)
                    .values(expires_at=expires_at)
                ).rowcount
            return bool(taken)

    def _purge(self, now: datetime) -> None:
        with self._lock:
            if time.monotonic() < self._next_purge:
                return
            self._next_purge = time.monotonic() + self.purge_every
        with self.store.engine.begin() as db:
            db.execute(delete(UsedNonce).where(UsedNonce.expires_at < now))


class WsSecurity:
    """Turns a request's Security header into an authenticated account."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self.nonces = NonceCache(accounts.store)

    @property
    def settings(self) -> WsSecuritySettings:
        """The bridge's WS-Security settings (those the accounts were configured with)."""
        return self.accounts.guard.settings.wssecurity

    def login(self, header: etree._Element, security: SecurityHeader) -> AccountInfo | None:
        """The account the header's token proves; None if it carries no token (a bare
        Timestamp: the body's credentials then count). Faults for anything else."""
        now = utcnow()
        created, expires = _timestamp(header)
        if created is not None:
            self._fresh(_parse_time(created), now)
        if expires is not None and _parse_time(expires) < now - self._window:
            raise WsSecurityFault(MESSAGE_EXPIRED, "The message has expired.")
        token = security.token
        if token is None:
            return None
        token_created = _parse_time(token.created) if token.created else None
        if token_created is not None:
            self._fresh(token_created, now)
        try:
            if token.digest:
                assert token.nonce is not None and token.created is not None  # read_security
                nonce, stamp = token.nonce, token.created
                account = self.accounts.authenticate_digest(
                    token.username,
                    lambda secret: hmac.compare_digest(
                        password_digest(nonce, stamp, secret).encode(), token.password.encode()
                    ),
                )
            else:
                account = self.accounts.authenticate(token.username, token.password)
        except WsSecurityFault:
            raise
        except SmsFault as refused:  # too many failures: the same refusal, with the wsse code
            raise _refused(refused) from None
        if account is None:
            raise WsSecurityFault(FAILED_AUTHENTICATION)
        if token.nonce is not None and token_created is not None:
            if not self.nonces.remember(token.nonce, token_created + self._window):
                raise WsSecurityFault(INVALID_SECURITY, "The nonce was used before (replay).")
        return account

    @property
    def _window(self) -> timedelta:
        return timedelta(seconds=self.settings.window)

    def _fresh(self, created: datetime, now: datetime) -> None:
        """Created within the window of now, before or after (the clocks may differ)."""
        if abs(created - now) > self._window:
            raise WsSecurityFault(
                MESSAGE_EXPIRED,
                f"The message has expired: Created must be within {self.settings.window:g} s"
                " of the server's time.",
            )


def _refused(fault: SmsFault) -> WsSecurityFault:
    refused = WsSecurityFault(FAILED_AUTHENTICATION)
    refused.text = fault.text
    refused.args = (fault.text,)
    return refused
