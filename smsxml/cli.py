"""The ``smsxml`` command: validate, convert and inspect feeds, regenerate code, and run
the sandboxes and the SOAP bridge. Problems are printed as ``FILE:LINE:COLUMN: message``;
a user never sees a traceback for bad input."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from smsxml.errors import BadInput, Problem
from smsxml.feedreport import DEFAULT_MAX_ERRORS

if TYPE_CHECKING:
    from smsxml.server.settings import Settings
    from smsxml.server.store import Store

__all__ = ["main"]

#: files larger than this get a progress bar on a terminal
PROGRESS_THRESHOLD = 8 * 1024 * 1024

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _problem_printer(path: Path, output_format: str = "text") -> Callable[[Problem], None]:
    """Prints one problem of ``path`` at once, as found: ``FILE:LINE:COLUMN: message``, or
    one JSON object per line for machines."""
    if output_format == "json":

        def emit(problem: Problem) -> None:
            fields = {"line": problem.line, "column": problem.column, "message": problem.message}
            click.echo(json.dumps({"file": str(path), **fields}, ensure_ascii=False))

    else:

        def emit(problem: Problem) -> None:
            click.echo(problem.format(str(path)))

    return emit


def _print_problems(path: Path, problems: list[Problem], output_format: str = "text") -> None:
    emit = _problem_printer(path, output_format)
    for problem in problems:
        emit(problem)


def _print_hidden(path: Path, hidden: int, max_errors: int) -> None:
    """The line that ends a listing cut short by --max-errors: how many were not shown."""
    if hidden:
        click.echo(f"{path}: {hidden} more problem(s) not shown (--max-errors {max_errors})")


_MAX_ERRORS = click.option(
    "--max-errors",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_ERRORS,
    show_default=True,
    help="Problems printed per file; the rest are only counted (0: no limit).",
)


@contextmanager
def _progress(path: Path, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for large files on a terminal; None otherwise."""
    size = path.stat().st_size
    if size < PROGRESS_THRESHOLD or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=size, label=label, file=sys.stderr) as bar:
        done = 0

        def update(consumed: int) -> None:
            nonlocal done
            bar.update(max(0, min(consumed, size) - done))
            done = max(done, min(consumed, size))

        yield update


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGINT and SIGTERM stop a server cleanly (as KeyboardInterrupt): a shell that
    starts it in the background leaves SIGINT ignored, and supervisors send SIGTERM."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = {
        number: signal.signal(number, interrupt) for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smsxml")
def main() -> None:
    """smsxml: SOAP/XML toolkit for SMS gateways."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=_FILE)
@click.option("-q", "--quiet", is_flag=True, help="Print problems only, no verdict on stderr.")
@_MAX_ERRORS
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: FILE:LINE:COLUMN: message lines; json: one object per problem and line, "
    "then one summary object per file.",
)
def validate(files: tuple[Path, ...], quiet: bool, max_errors: int, output_format: str) -> None:
    """Validate allmysms feeds (XML or JSON) and provider answers (XML).

    Exit status 0 when every file is valid, 1 otherwise. Problems are printed as they are
    found, one FILE:LINE:COLUMN line each, up to --max-errors per file; a last line says
    how many more there were. With --format json every line is a JSON object:
    {"file", "line", "column", "message"} per problem, then {"file", "valid",
    "problems", "not_shown", "recipients"} per file.
    """
    from smsxml.documents import validate_path

    limit = max_errors or None
    failed = False
    for path in files:
        emit = _problem_printer(path, output_format)
        with _progress(path, f"validating {path.name}") as progress:
            report = validate_path(path, progress=progress, emit=emit, limit=limit)
        hidden = report.hidden
        failed |= report.count > 0
        if output_format == "json":
            summary = {
                "file": str(path),
                "valid": report.count == 0,
                "problems": report.count,
                "not_shown": hidden,
                "recipients": report.recipients,
            }
            click.echo(json.dumps(summary, ensure_ascii=False))
            continue
        _print_hidden(path, hidden, max_errors)
        if not quiet:
            verdict = f"{report.count} problem(s)" if report.count else "valid"
            count = f", {report.recipients} recipient(s)" if report.recipients else ""
            click.echo(f"{path}: {verdict}{count}", err=True)
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("file", type=_FILE)
@click.option(
    "--to", "target", type=click.Choice(["json", "xml"]), required=True, help="Output syntax."
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout."
)
@_MAX_ERRORS
def convert(file: Path, target: str, output: Path | None, max_errors: int) -> None:
    """Convert an allmysms feed between XML and JSON, losing nothing, one recipient at a
    time (any size in little memory).

    The feed is validated first; an invalid feed is not converted (exit 1) and its
    problems are printed as `smsxml validate` prints them.
    """
    from smsxml.convert import FeedRefused, convert_feed

    emit = _problem_printer(file)
    try:
        if output is None:
            convert_feed(file, target, sys.stdout, emit=emit, limit=max_errors or None)
        else:
            with output.open("w", encoding="utf-8") as out:
                convert_feed(file, target, out, emit=emit, limit=max_errors or None)
    except FeedRefused as refused:
        _print_hidden(file, refused.report.hidden, max_errors)
        if output is not None:
            output.unlink(missing_ok=True)
        sys.exit(1)
    except BadInput as error:
        _print_problems(file, error.problems)
        if output is not None:
            output.unlink(missing_ok=True)
        sys.exit(1)


@main.command()
@click.argument("file", type=_FILE)
@click.option(
    "--per-recipient", is_flag=True, help="One line per recipient: number, encoding, parts."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def inspect(file: Path, per_recipient: bool, as_json: bool) -> None:
    """Recipients, encoding and SMS parts (after placeholder substitution) of a feed."""
    from smsxml.convert import inspect_feed

    each = None
    if per_recipient:

        def each(mobile: str, encoding: str, parts: int) -> None:
            click.echo(f"{mobile}\t{encoding}\t{parts}")

    try:
        summary = inspect_feed(file, each=each)
    except BadInput as error:
        _print_problems(file, error.problems)
        sys.exit(1)
    data = {
        "recipients": summary.recipients,
        "encodings": dict(summary.encodings),
        "parts_per_recipient": {str(k): v for k, v in sorted(summary.parts.items())},
        "total_parts": summary.total_parts,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"recipients:  {summary.recipients}")
    click.echo("encoding:    " + ", ".join(f"{k} ×{v}" for k, v in summary.encodings.items()))
    for parts, count in sorted(summary.parts.items()):
        click.echo(f"{parts} part(s):  {count} recipient(s)")
    click.echo(f"total parts: {summary.total_parts}")


@main.command()
@click.option("--check", is_flag=True, help="Exit 1 and name the files if generated/ is stale.")
def codegen(check: bool) -> None:
    """Regenerate generated/ from schemas/ with xsdata (or check it is up to date)."""
    from smsxml import codegen as generator

    try:
        drift = generator.check() if check else generator.generate()
    except generator.CodegenError as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    for line in drift.lines():
        click.echo(line)
    if check and drift:
        click.echo("generated/ is out of date: run `smsxml codegen`", err=True)
        sys.exit(1)
    if not drift:
        click.echo("generated/ is up to date", err=True)


# The SOAP bridge ---------------------------------------------------------------------

_LOG_LEVEL = click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    callback=lambda _ctx, _param, value: value.upper() if value else None,
    help="How much the bridge logs [default: INFO, or SMSXML_LOG_LEVEL].",
)
_DATABASE = click.option(
    "--database-url",
    envvar="SMSXML_DATABASE_URL",
    help="SQLAlchemy URL of the bridge's database [default: sqlite:///smsxml.sqlite3].",
)
_CONFIG = click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="SMSXML_CONFIG",
    help="A TOML settings file (see docs/bridge.md).",
)


def _settings(config: Path | None, **overrides: object) -> Settings:
    from pydantic import ValidationError

    from smsxml.server.settings import Settings

    try:
        return Settings.load(config, **overrides)
    except ValidationError as error:
        raise click.UsageError(f"invalid settings: {error}") from None


@main.command()
@click.option("--host", help="Interface to listen on [default: 127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [default: 8080].")
@click.option("--public-url", help="The address clients use; published in the WSDL.")
@click.option("--no-demo", is_flag=True, help="Do not create the demo account (demo / demo).")
@click.option("--no-sandbox", is_flag=True, help="Do not start the provider sandboxes.")
@click.option(
    "--send-demo",
    is_flag=True,
    help="Once started, send a demo message over SOAP and print it going to Delivered.",
)
@click.option(
    "--sandbox-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML for the in-process sandboxes (schedule, faults): rehearse outages.",
)
@click.option(
    "--no-dispatch",
    is_flag=True,
    help="Only accept: leave sending and tracking to `smsxml worker` processes.",
)
@_LOG_LEVEL
@_DATABASE
@_CONFIG
def serve(
    host: str | None,
    port: int | None,
    public_url: str | None,
    no_demo: bool,
    no_sandbox: bool,
    send_demo: bool,
    sandbox_config: Path | None,
    no_dispatch: bool,
    log_level: str | None,
    database_url: str | None,
    config: Path | None,
) -> None:
    """Run the iSMS-compatible SOAP bridge (with the provider sandboxes by default)."""
    import shutil
    import tempfile

    # dispatch runs in a helper process: /metrics adds up both (prometheus_client's
    # multiprocess mode, chosen when it is first imported)
    metrics_folder = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_folder = tempfile.mkdtemp(prefix="smsxml-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_folder
    from smsxml.server import logs
    from smsxml.server.app import BridgeServer

    settings = _settings(
        config,
        host=host,
        port=port,
        public_url=public_url,
        database_url=database_url,
        demo=False if no_demo else None,
        sandbox=False if no_sandbox else None,
        log_level=log_level,
    )
    logs.configure(settings.log_level)
    if no_dispatch:
        settings.dispatch.workers = 0
    from smsxml.sandbox import SandboxConfig

    simulated = SandboxConfig.from_toml(sandbox_config) if sandbox_config else None
    try:
        server = BridgeServer(settings, sandbox_config=simulated, dispatch_process=True)
    except OSError as error:
        if metrics_folder is not None:
            shutil.rmtree(metrics_folder, ignore_errors=True)
        raise click.ClickException(
            f"cannot listen on {settings.host}:{settings.port} ({error.strerror}): "
            "stop what runs there, or pass --port"
        ) from None
    click.echo(f"smsxml SOAP bridge on {server.url}", err=True)
    click.echo(f"WSDL:      {server.wsdl_url}", err=True)
    click.echo(f"RPC WSDL:  {server.url}/api/soap/sms.wsdl  (positional iSMS clients)", err=True)
    click.echo(f"database:  {server.settings.database_url}", err=True)
    if server.sandbox is not None:
        click.echo(f"sandboxes: {server.sandbox.url} (demo / demo, key demo-key)", err=True)
    if server.settings.demo:
        click.echo("account:   demo / demo", err=True)
    if send_demo:
        from smsxml.server.demo import send_demo_in_background

        send_demo_in_background(
            server.url + server.settings.soap_path, lambda line: click.echo(line, err=True)
        )
    try:
        with _stopped_by_signals():
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if metrics_folder is not None:
            shutil.rmtree(metrics_folder, ignore_errors=True)


@main.command()
@click.option("--no-sandbox", is_flag=True, help="Do not start the provider sandboxes.")
@click.option(
    "--sandbox-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML for the in-process sandboxes (schedule, faults).",
)
@_LOG_LEVEL
@_DATABASE
@_CONFIG
def worker(
    no_sandbox: bool,
    sandbox_config: Path | None,
    log_level: str | None,
    database_url: str | None,
    config: Path | None,
) -> None:
    """Send queued messages and track their delivery, without the SOAP endpoint (run
    several, on any node sharing the database; docs/deploy.md)."""
    from smsxml.sandbox import SandboxConfig
    from smsxml.server import logs
    from smsxml.server.worker import run_worker

    settings = _settings(
        config,
        database_url=database_url,
        sandbox=False if no_sandbox else None,
        log_level=log_level,
    )
    logs.configure(settings.log_level)
    if settings.dispatch.workers <= 0:
        raise click.UsageError("dispatch.workers is 0: this worker would do nothing")
    simulated = SandboxConfig.from_toml(sandbox_config) if sandbox_config else None
    run_worker(settings, simulated)


@main.group()
def accounts() -> None:
    """Manage the bridge's accounts (the same database as `smsxml serve`)."""


def _store(config: Path | None, database_url: str | None) -> Store:
    """The database `smsxml serve` would use: the flag, SMSXML_DATABASE_URL, the TOML's
    ``database_url``, then the default; accounts made elsewhere would be invisible to it."""
    from smsxml.server.store import Store

    settings = _settings(config, database_url=database_url)
    store = Store(settings.database_url)
    store.accounts.configure(settings.logins)  # the WS-Security keys the bridge uses
    return store


def _password(password_stdin: bool, prompt: str = "Password") -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.UsageError("the password must not be empty")
    return password


@accounts.command("add")
@click.argument("name")
@click.option(
    "--credits",
    "amount",
    type=click.IntRange(min=0),
    default=0,
    help="Initial credits (SMS parts).",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@_DATABASE
@_CONFIG
def accounts_add(
    name: str, amount: int, password_stdin: bool, database_url: str | None, config: Path | None
) -> None:
    """Create account NAME (the password is asked for, or read from standard input)."""
    from sqlalchemy.exc import IntegrityError

    store = _store(config, database_url)
    password = _password(password_stdin)
    try:
        account = store.accounts.add(name, password, amount)
    except IntegrityError:
        raise click.ClickException(f"account {name!r} already exists") from None
    click.echo(f"{account.name}\t{account.credits}")


@accounts.command("list")
@_DATABASE
@_CONFIG
def accounts_list(database_url: str | None, config: Path | None) -> None:
    """Every account and its credits."""
    for account in _store(config, database_url).accounts.all():
        click.echo(f"{account.name}\t{account.credits}")


@accounts.command("credit", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("amount", type=int)
@_DATABASE
@_CONFIG
def accounts_credit(name: str, amount: int, database_url: str | None, config: Path | None) -> None:
    """Add AMOUNT credits to NAME (negative to take them back); recorded in the ledger."""
    from smsxml.errors import InsufficientCredit

    try:
        account = _store(config, database_url).accounts.credit(name, amount)
    except KeyError:
        raise click.ClickException(f"no account {name!r}") from None
    except InsufficientCredit:
        raise click.ClickException(f"{name!r} has fewer than {-amount} credits") from None
    click.echo(f"{account.name}\t{account.credits}")


@accounts.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@_DATABASE
@_CONFIG
def accounts_passwd(
    name: str, password_stdin: bool, database_url: str | None, config: Path | None
) -> None:
    """Change NAME's password."""
    store = _store(config, database_url)
    try:
        store.accounts.set_password(name, _password(password_stdin))
    except KeyError:
        raise click.ClickException(f"no account {name!r}") from None
    click.echo(f"password of {name} changed")


@accounts.command("wss-secret")
@click.argument("name")
@click.option("--secret-stdin", is_flag=True, help="Read the secret from standard input.")
@click.option("--off", is_flag=True, help="Remove the secret: PasswordDigest is refused.")
@_DATABASE
@_CONFIG
def accounts_wss_secret(
    name: str, secret_stdin: bool, off: bool, database_url: str | None, config: Path | None
) -> None:
    """Set NAME's WS-Security secret, for PasswordDigest tokens (docs/bridge.md).

    A digest can only be checked with the plain secret, so it is kept encrypted and
    recoverable, unlike the password (argon2): give it a secret of its own. PasswordText
    tokens carry the account's password and need no secret."""
    store = _store(config, database_url)
    try:
        store.accounts.set_wss_secret(name, None if off else _password(secret_stdin, "Secret"))
    except KeyError:
        raise click.ClickException(f"no account {name!r}") from None
    click.echo(f"WS-Security secret of {name} {'removed' if off else 'set'}")


@main.command()
@_DATABASE
@_CONFIG
def callbacks(database_url: str | None, config: Path | None) -> None:
    """The delivery-callback URL of each provider that reports by callback: iSMS's and SMS
    Partner's go with every message; allmysms's must be set in its account (webhook)."""
    from smsxml.server.app import BridgeApp

    app = BridgeApp(_settings(config, database_url=database_url, demo=False))
    try:
        for name in app.providers:
            url = app.callback_url(name)
            if url is not None:
                click.echo(f"{name}\t{url}")
    finally:
        app.stop()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8090, show_default=True)
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML: [account], [schedule], [faults.<provider>] (docs/sandbox.md).",
)
def sandbox(host: str, port: int, config: Path | None) -> None:
    """Serve local simulators of the five provider APIs on one port."""
    from smsxml.sandbox import PREFIXES, SandboxConfig
    from smsxml.sandbox.serve import free_port, needs_werkzeug, serve

    settings = SandboxConfig.from_toml(config) if config else SandboxConfig()
    werkzeug = needs_werkzeug(settings)

    def ready(url: str) -> None:
        """Printed once the port answers: whoever reads it may send at once."""
        click.echo(f"smsxml sandboxes on {url}", err=True)
        for provider, prefix in PREFIXES.items():
            click.echo(f"  {provider:<11} {url}{prefix}", err=True)
        click.echo(
            f"account: {settings.username} / {settings.password}, key {settings.api_key}, "
            f"{settings.credits} credits",
            err=True,
        )
        if werkzeug:
            click.echo("server: werkzeug (drop_rate needs the connection's socket)", err=True)
        else:
            click.echo("server: granian, one worker process", err=True)

    if port == 0 and not werkzeug:
        port = free_port(host)  # granian binds in its worker: the port is chosen here
    try:
        with _stopped_by_signals():
            serve(settings, host, port, ready)
    except KeyboardInterrupt:
        pass
    except OSError as error:  # the port is taken (or the host is not ours)
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from None


if __name__ == "__main__":  # pragma: no cover
    main()
