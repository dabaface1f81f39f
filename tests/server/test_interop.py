"""Clients of other stacks against a running bridge, the way their developers would write
them: each example under docs/clients/ generates (or loads) its client from the served
WSDL, then sends, polls until the final status and provokes a fault.

Each example prints ``id=…``, ``status <mobile>=<status>``, ``fault=<faultstring>`` and
``code=<smsFault code>``; the tests read those lines. The tools come from Debian's
packages (scripts/install-interop.sh): a missing one fails the test, it never skips it,
because CI installs them. Deselect with ``-m "not slow and not interop"`` on a machine
without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from smsxml.server.app import RPC_WSDL_PATH, BridgeServer
from smsxml.server.settings import LoginSettings

from .conftest import bridge_settings

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "docs" / "clients"
INSTALL = "scripts/install-interop.sh"
#: JAX-WS RI runtime from libjaxws-java; its manifest's Class-Path names the rest
JAXWS_RT = Path("/usr/share/java/jaxws-rt.jar")

DELIVERED, FAILED = "306912345678", "306912345670"  # a number ending in 0 fails
MOBILES = (DELIVERED, FAILED)
EXPECTED = {
    f"status {DELIVERED}": "Delivered",
    f"status {FAILED}": "Failed",
    "fault": "Authentication error.",
    "code": "AuthenticationError",
}
#: the bad sender, for the stacks whose generated code the issue found broken (and PHP)
SENDER = {"sender_fault": "Invalid sender identity.", "sender_code": "InvalidSender"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeServer]:
    """One bridge for the whole module (starting one costs about a second)."""
    settings = bridge_settings(tmp_path_factory.mktemp("interop"))
    bridge = BridgeServer(settings).start()
    yield bridge
    bridge.stop()


def need(*tools: str) -> None:
    """Fail (not skip) when a tool is missing: CI installs them all."""
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.fail(
                f"{tool} is not installed: run {INSTALL} "
                '(or deselect these tests with -m "not slow and not interop")',
                pytrace=False,
            )


def run(
    command: Sequence[str | Path], cwd: Path, extra_env: Mapping[str, str] | None = None
) -> str:
    """Run ``command``; its stdout, or a failure that shows everything it printed."""
    env = os.environ | {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    env |= extra_env or {}
    for name in ("SMSXML_WSDL", "SMSXML_USERNAME", "SMSXML_PASSWORD"):
        env.pop(name, None)
    try:
        done = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    except subprocess.TimeoutExpired as late:
        pytest.fail(f"{command[0]} ran over 90 s; it printed:\n{late.stdout!r}", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"{Path(str(command[0])).name} exited {done.returncode}\n"
            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}",
            pytrace=False,
        )
    return done.stdout


def check(output: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The example's printed facts: an id, the final statuses, the documented fault (and
    the ``extra`` facts); all the facts, for more checks."""
    facts = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    assert len(facts.get("id", "")) == 12, output
    expected = EXPECTED | dict(extra or {})
    assert {key: facts.get(key) for key in expected} == expected, output
    return facts


def test_python_zeep(server: BridgeServer, tmp_path: Path) -> None:
    """zeep loads the WSDL at run time; named parameters through the wrapper."""
    check(run([sys.executable, CLIENTS / "python_zeep.py", server.wsdl_url, *MOBILES], tmp_path))


def test_python_suds(server: BridgeServer, tmp_path: Path) -> None:
    """suds-community unwraps the wrapper into positional arguments."""
    check(run([sys.executable, CLIENTS / "python_suds.py", server.wsdl_url, *MOBILES], tmp_path))


def need_php_soap() -> None:
    """php with its soap extension (php-cli and php-soap)."""
    need("php")
    modules = subprocess.run(["php", "-m"], capture_output=True, text=True, check=False).stdout
    if "soap" not in modules.split():
        pytest.fail(f"PHP's soap extension is not installed: run {INSTALL}", pytrace=False)


@pytest.mark.interop
def test_php_soapclient_document_literal(server: BridgeServer, tmp_path: Path) -> None:
    """PHP SoapClient on the document/literal WSDL, one array of named parameters."""
    need_php_soap()
    script = CLIENTS / "php_soapclient.php"
    check(run(["php", script, server.wsdl_url, *MOBILES], tmp_path), SENDER)


@pytest.mark.interop
def test_php_soapclient_rpc_positional(server: BridgeServer, tmp_path: Path) -> None:
    """PHP SoapClient on the rpc/literal WSDL, called positionally like the real iSMS:
    seven arguments, and nine with the schedule ('+1 day') and the dlr-url."""
    need_php_soap()
    script = CLIENTS / "php_soapclient.php"
    wsdl = server.url + RPC_WSDL_PATH
    facts = check(run(["php", script, "--rpc", wsdl, *MOBILES], tmp_path), SENDER)
    assert len(facts.get("scheduled_id", "")) == 12 and facts["scheduled_id"] != facts["id"]
    assert facts.get("scheduled_status") == "Queued", facts  # due tomorrow, whatever today is
    with server.app.store.engine.connect() as connection:  # the two parts reached the row
        row = connection.exec_driver_sql(
            "SELECT send_at, dlr_url FROM messages WHERE id = ?", (facts["scheduled_id"],)
        ).one()
    assert row.send_at is not None and row.dlr_url == "http://127.0.0.1:9/dlr?ref=php"


@pytest.mark.interop
def test_csharp_mono_wsdl_proxy(server: BridgeServer, tmp_path: Path) -> None:
    """Mono's wsdl (wsdl.exe) generates the proxy; mcs compiles Program.cs against it."""
    need("wsdl", "mcs", "mono")
    run(
        ["wsdl", "-nologo", "-namespace:Smsxml.Isms", "-out:SmsService.cs", server.wsdl_url],
        tmp_path,
    )
    run(
        [
            "mcs",
            "-nologo",
            "-out:Client.exe",
            "-r:System.Web.Services",
            CLIENTS / "csharp" / "Program.cs",
            "SmsService.cs",
        ],
        tmp_path,
    )
    check(run(["mono", "Client.exe", server.wsdl_url, *MOBILES], tmp_path), SENDER)


@pytest.mark.interop
def test_csharp_mono_svcutil_proxy_compiles(server: BridgeServer, tmp_path: Path) -> None:
    """Mono's svcutil (WCF) makes a proxy from ?wsdl that mcs compiles: a wrapped
    ``string send(string username, …)``, not the XmlSerializer message contracts
    (``sendResponse send(send send)``, never defined) it made from unqualified elements."""
    need("svcutil", "mcs")
    run(["svcutil", "-nologo", "-out:SmsService.cs", server.wsdl_url], tmp_path)
    proxy = (tmp_path / "SmsService.cs").read_text()
    assert "string send(string username, string password, string from," in proxy, proxy
    (tmp_path / "Use.cs").write_text(
        "class Use { static void Main() { SmsPortType port = null;"
        " if (port != null) port.send(null, null, null, null, null,"
        " smsxml.org.isms._1.Coding.UTF8, false, null, null); } }"
    )
    run(
        [
            "mcs",
            "-nologo",
            "-out:Use.exe",
            "-r:System.ServiceModel",
            "-r:System.Runtime.Serialization",
            "Use.cs",
            "SmsService.cs",
        ],
        tmp_path,
    )


@pytest.mark.interop
def test_java_jaxws_wsimport(server: BridgeServer, tmp_path: Path) -> None:
    """wsimport (JAX-WS RI) generates the port and types; javac compiles Client.java."""
    need("wsimport", "javac", "java")
    if not JAXWS_RT.is_file():
        pytest.fail(f"{JAXWS_RT} (libjaxws-java) is missing: run {INSTALL}", pytrace=False)
    # Three short-lived JVMs: the C1 compiler alone costs a third less CPU (it only adds
    # a "Picked up JAVA_TOOL_OPTIONS" line on stderr); the commands stay the documented ones.
    fast_jvm = {"JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1"}
    (tmp_path / "generated").mkdir()  # wsimport wants its output folders to exist
    (tmp_path / "classes").mkdir()
    wsimport = ["wsimport", "-quiet", "-Xnocompile", "-s", "generated", "-p", "org.smsxml.isms"]
    run([*wsimport, server.wsdl_url], tmp_path, fast_jvm)
    sources = sorted((tmp_path / "generated").rglob("*.java"))
    assert sources, "wsimport generated nothing"
    run(
        ["javac", "-cp", JAXWS_RT, "-d", "classes", *sources, CLIENTS / "java" / "Client.java"],
        tmp_path,
        fast_jvm,
    )
    classpath = f"{JAXWS_RT}{os.pathsep}classes"
    output = run(
        ["java", "-cp", classpath, "Client", server.wsdl_url, *MOBILES], tmp_path, fast_jvm
    )
    check(output, SENDER)


#: what the WS-Security examples print for the wrong secret: the contract's fault
WSS_WRONG = {"wrong_fault": "Authentication error.", "wrong_code": "AuthenticationError"}


def facts_of(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def wss_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeServer]:
    """A bridge of its own: the other examples' wrong passwords, counted against demo
    from 127.0.0.1, would otherwise slow these examples' own wrong secret down."""
    settings = bridge_settings(
        tmp_path_factory.mktemp("interop-wss"), logins=LoginSettings(free_failures=1000)
    )
    bridge = BridgeServer(settings).start()
    yield bridge
    bridge.stop()


@pytest.mark.interop
def test_php_soapclient_wssecurity(wss_server: BridgeServer, tmp_path: Path) -> None:
    """PHP SoapClient with a hand-written wsse:Security header (SoapHeader around a
    SoapVar of XSD_ANYXML, mustUnderstand="1"): PasswordText and PasswordDigest send with
    empty body credentials, the Timestamp is answered, a replayed nonce and a wrong
    secret are Authentication errors with their wsse faultcode, and send nothing."""
    need_php_soap()
    output = run(["php", CLIENTS / "php_wssecurity.php", wss_server.wsdl_url, DELIVERED], tmp_path)
    facts = facts_of(output)
    assert len(facts.get("text_id", "")) == 12 and len(facts.get("digest_id", "")) == 12, output
    assert facts["timestamp_answered"] == "yes", output
    assert facts["replay_fault"].startswith("Authentication error."), output
    assert facts["replay_code"] == "wsse:InvalidSecurity", output
    assert facts["wrong_fault"] == "Authentication error.", output
    assert facts["wrong_code"] == "wsse:FailedAuthentication", output
    with wss_server.app.store.engine.connect() as connection:
        sent = connection.exec_driver_sql(
            "SELECT count(*) FROM messages WHERE text = 'Hello over WS-Security'"
        ).scalar()
    assert sent == 2, output  # the replay and the wrong secret stored nothing


@pytest.mark.interop
def test_java_jaxws_wssecurity_handler(wss_server: BridgeServer, tmp_path: Path) -> None:
    """Plain JAX-WS with a SOAPHandler writing the UsernameToken (text and digest); a
    wrong secret is the contract's SmsFaultMessage (AuthenticationError)."""
    need("wsimport", "javac", "java")
    fast_jvm = {"JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1"}
    (tmp_path / "generated").mkdir()
    (tmp_path / "classes").mkdir()
    wsimport = ["wsimport", "-quiet", "-Xnocompile", "-s", "generated", "-p", "org.smsxml.isms"]
    run([*wsimport, wss_server.wsdl_url], tmp_path, fast_jvm)
    sources = sorted((tmp_path / "generated").rglob("*.java"))
    run(
        [
            "javac",
            "-cp",
            JAXWS_RT,
            "-d",
            "classes",
            *sources,
            CLIENTS / "java" / "WsSecurityClient.java",
        ],
        tmp_path,
        fast_jvm,
    )
    classpath = f"{JAXWS_RT}{os.pathsep}classes"
    output = run(
        ["java", "-cp", classpath, "WsSecurityClient", wss_server.wsdl_url, DELIVERED],
        tmp_path,
        fast_jvm,
    )
    facts = facts_of(output)
    assert len(facts.get("text_id", "")) == 12 and len(facts.get("digest_id", "")) == 12, output
    assert {key: facts.get(key) for key in WSS_WRONG} == WSS_WRONG, output


#: PHP SoapClient speaking SOAP 1.2 (the soap_version option): send, query, and a wrong
#: password; prints what it sent and received, as the examples do
PHP_SOAP12 = r"""<?php
[$_, $wsdl, $mobile] = $argv;
$client = new SoapClient($wsdl, [
    'soap_version' => SOAP_1_2, 'cache_wsdl' => WSDL_CACHE_NONE, 'trace' => true,
]);
$send = ['username' => 'demo', 'password' => 'demo', 'from' => 'Shop',
         'to' => ['recipients' => [$mobile]], 'message' => 'Hello over SOAP 1.2',
         'coding' => 'GSM', 'flash' => false];
$id = $client->send($send)->id;
echo "id=$id\n";
preg_match('/^Content-Type: *(.*)$/mi', $client->__getLastRequestHeaders(), $type);
echo "request_type=" . trim($type[1]) . "\n";
echo "response_1_2=" . (str_contains($client->__getLastResponse(),
    'http://www.w3.org/2003/05/soap-envelope') ? 'yes' : 'no') . "\n";
$query = ['username' => 'demo', 'password' => 'demo', 'message_id' => $id, 'mobile' => $mobile];
echo "status=" . $client->query($query)->status . "\n";
try {
    $client->send(['password' => 'wrong'] + $send);
    echo "fault=none\n";
} catch (SoapFault $fault) {
    echo "fault={$fault->getMessage()}\n";
    echo "faultcode={$fault->faultcode}\n";
    echo "code={$fault->detail->smsFault->code}\n";
}
"""


@pytest.mark.interop
def test_php_soapclient_soap12(wss_server: BridgeServer, tmp_path: Path) -> None:
    """PHP SoapClient with ``'soap_version' => SOAP_1_2`` on the document/literal WSDL:
    application/soap+xml out, SOAP 1.2 back, and a wrong password a Sender fault with
    the contract's faultstring and detail. (On the bridge whose logins forgive many
    failures: the other examples' wrong passwords would slow this one's down.)"""
    need_php_soap()
    script = tmp_path / "soap12.php"
    script.write_text(PHP_SOAP12)
    facts = facts_of(run(["php", script, wss_server.wsdl_url, DELIVERED], tmp_path))
    assert len(facts.get("id", "")) == 12, facts
    assert facts["request_type"].startswith("application/soap+xml"), facts
    assert facts["response_1_2"] == "yes", facts
    assert facts["status"] in ("Queued", "Pending", "Delivered"), facts
    assert facts["fault"] == "Authentication error.", facts
    assert facts["faultcode"].endswith("Sender"), facts
    assert facts["code"] == "AuthenticationError", facts
