"""Hostile XML at every entry point (issue 11): each attack of ``payloads.ATTACKS``
against each entry point of ``harness``, through its real interface.

Every cell checks the same things: an answer within seconds (a fault, a 4xx, an error
with its place, or a clean answer where the attack is not one to refuse), no traceback,
no file read (the secret's marker never shows), no connection (the canary listener
stays silent), and for the server, run in its own process: a valid send answered while
the hostile request is in flight, and little growth of the server's RSS.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .harness import (
    CallbackEntry,
    Canary,
    CliEntry,
    EntryPoint,
    ProviderEntry,
    ServeProcess,
    SoapEntry,
    StubServer,
    Tripwire,
    WsdlEntry,
    soap_shape,
    timed,
)
from .payloads import ATTACKS, Attack, Hostile, Targets

#: seconds within which every hostile input gets its answer
WITHIN = 10.0
#: growth of the server's RSS one hostile request may leave behind (an entity expanded,
#: a body kept, would be hundreds of MiB; measured: under 2 MiB)
RSS_BUDGET = 16 * 1024 * 1024


class Matrix:
    """The entry points, started on first use and stopped at the end of the module."""

    def __init__(self, workdir: Path, canary: Canary) -> None:
        self.workdir = workdir
        self.canary = canary
        self._servers: dict[str, ServeProcess] = {}
        self._stub: StubServer | None = None

    def server(self, lane: str) -> ServeProcess:
        if lane not in self._servers:
            home = self.workdir / lane
            home.mkdir()
            self._servers[lane] = ServeProcess(home, fast_lane=lane == "fast")
        return self._servers[lane]

    @property
    def stub(self) -> StubServer:
        if self._stub is None:
            self._stub = StubServer()
        return self._stub

    def folder(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(exist_ok=True)
        return path

    def close(self) -> None:
        for server in self._servers.values():
            server.stop()
        if self._stub is not None:
            self._stub.close()


#: name → (is it reached over HTTP, how to make it)
ENTRIES: dict[str, tuple[bool, Callable[[Matrix], EntryPoint]]] = {
    "soap-document": (
        True,
        lambda m: SoapEntry(m.server("fast"), "/soap", soap_shape("document", typed=False)),
    ),
    "soap-rpc": (
        True,
        lambda m: SoapEntry(m.server("fast"), "/api/soap/sms.php", soap_shape("rpc", typed=True)),
    ),
    "soap-document-spyne": (
        True,
        lambda m: SoapEntry(m.server("spyne"), "/soap", soap_shape("document", typed=False)),
    ),
    "soap-rpc-spyne": (
        True,
        lambda m: SoapEntry(m.server("spyne"), "/api/soap/sms.php", soap_shape("rpc", typed=True)),
    ),
    "callback-isms": (True, lambda m: CallbackEntry(m.server("fast"), "isms")),
    "callback-smspartner": (True, lambda m: CallbackEntry(m.server("fast"), "smspartner")),
    "callback-allmysms": (True, lambda m: CallbackEntry(m.server("fast"), "allmysms")),
    "cli-validate": (False, lambda m: CliEntry("validate", m.folder("validate"))),
    "cli-convert": (False, lambda m: CliEntry("convert", m.folder("convert"))),
    "client-net2sms": (True, lambda m: ProviderEntry("net2sms", m.stub)),
    "client-allmysms": (True, lambda m: ProviderEntry("allmysms", m.stub)),
    "client-smspartner": (True, lambda m: ProviderEntry("smspartner", m.stub)),
    "wsdl-http": (True, lambda m: WsdlEntry(m.stub, None)),
    "wsdl-file": (False, lambda m: WsdlEntry(m.stub, m.folder("wsdl"))),
}

SERVER_ENTRIES = [name for name in ENTRIES if name.startswith(("soap-", "callback-"))]


def _cells() -> Iterator[object]:
    for entry, (http, _) in ENTRIES.items():
        for attack in ATTACKS:
            if attack.http_only and not http:
                continue  # a file has no Content-Length
            marks = [pytest.mark.slow] if attack.slow else []
            yield pytest.param(entry, attack, id=f"{entry}-{attack.name}", marks=marks)


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def tripwire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tripwire]:
    fifo = Tripwire(tmp_path_factory.mktemp("tripwire") / "external.dtd")
    yield fifo
    fifo.close()


@pytest.fixture(scope="module")
def targets(
    tmp_path_factory: pytest.TempPathFactory, canary: Canary, tripwire: Tripwire
) -> Targets:
    marker = f"SECRET-{uuid.uuid4().hex}"
    secret = tmp_path_factory.mktemp("secret") / "secret.txt"
    secret.write_text(f"{marker}\n")
    return Targets(str(secret), marker, canary.url, tripwire.path)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, canary: Canary) -> Iterator[Matrix]:
    entries = Matrix(tmp_path_factory.mktemp("matrix"), canary)
    yield entries
    entries.close()


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_valid_document_is_answered(matrix: Matrix, entry: str) -> None:
    """The shape every attack starts from is valid: each entry point answers it (so a
    refusal in the matrix is the attack's doing)."""
    point = ENTRIES[entry][1](matrix)
    outcome, took = timed(point.deliver, Hostile(point.shape.valid()))
    assert took < WITHIN
    if point.reads_xml:
        assert outcome.clean and not outcome.refused, outcome.reason
        return
    # a callback reads forms and JSON only: XML is unreadable, a form report is answered
    assert isinstance(point, CallbackEntry)
    assert outcome.clean and outcome.reason.startswith("HTTP 400: unreadable delivery report")
    status = "1" if point.provider == "allmysms" else "Delivered"  # allmysms: 1 delivered
    report = {"mid": "1", "smsId": "1", "messageId": "1", "status": status}
    report |= {"mobile": "306912345678", "phoneNumber": "33612345678"}
    answer = point.post_form(report)
    assert (answer.status_code, answer.text) == (200, "OK")


@pytest.mark.parametrize(("entry", "attack"), list(_cells()))
def test_hostile_input_is_refused_cleanly(
    matrix: Matrix,
    canary: Canary,
    tripwire: Tripwire,
    targets: Targets,
    entry: str,
    attack: Attack,
) -> None:
    """The attack gets a clear answer within seconds, reads no file, opens no connection;
    a server answers a valid send meanwhile and keeps its memory."""
    point = ENTRIES[entry][1](matrix)
    hostile = attack.build(point.shape, targets)
    server = point.server
    connections, opens = canary.connections, tripwire.opens
    if server is not None:
        rss_before, log_offset = server.rss, server.log.stat().st_size

    outcome, took = timed(point.deliver, hostile)

    assert outcome.clean, f"no clean answer: {outcome.reason!r} {outcome.seen[:300]!r}"
    assert took < WITHIN, f"took {took:.1f} s"
    if attack.must_refuse:
        assert outcome.refused, f"accepted: {outcome.seen[:300]!r}"
    assert outcome.reason.strip()
    for leak in (targets.secret_marker, "EXPANDED", "lollol", "xxxxxxxx" * 4):
        assert leak not in outcome.seen, f"{leak[:20]!r} came back"
    assert canary.connections == connections, "a parser opened a connection"
    assert tripwire.opens == opens, "a parser opened a local file"
    if server is not None:
        assert outcome.extra["answered_meanwhile"]
        growth = server.rss - rss_before
        if attack.name != "100k-items":  # see test_large_sends_leave_the_memory_bounded
            assert growth < RSS_BUDGET, f"server RSS grew by {growth / 2**20:.0f} MiB"
        log = server.log_since(log_offset)
        assert "Traceback" not in log and targets.secret_marker not in log, log[-2000:]
