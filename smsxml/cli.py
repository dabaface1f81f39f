"""The ``smsxml`` command: validate, convert and inspect feeds, regenerate code, and run
the sandboxes and the SOAP bridge. Problems are printed as ``FILE:LINE:COLUMN: message``;
a user never sees a traceback for bad input."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from smsxml.errors import BadInput, Problem

__all__ = ["main"]

#: files larger than this get a progress bar on a terminal
PROGRESS_THRESHOLD = 8 * 1024 * 1024

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _print_problems(path: Path, problems: list[Problem]) -> None:
    for problem in problems:
        click.echo(problem.format(str(path)), err=False)


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smsxml")
def main() -> None:
    """smsxml: SOAP/XML toolkit for SMS gateways."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=_FILE)
@click.option("-q", "--quiet", is_flag=True, help="Print problems only, no summary.")
def validate(files: tuple[Path, ...], quiet: bool) -> None:
    """Validate allmysms feeds (XML or JSON) and provider answers (XML).

    Exit status 0 when every file is valid, 1 otherwise; one FILE:LINE:COLUMN line per
    problem.
    """
    from smsxml.documents import validate_path

    failed = False
    for path in files:
        with _progress(path, f"validating {path.name}") as progress:
            report = validate_path(path, progress=progress)
        _print_problems(path, report.problems)
        failed |= bool(report.problems)
        if not quiet:
            verdict = f"{len(report.problems)} problem(s)" if report.problems else "valid"
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
def convert(file: Path, target: str, output: Path | None) -> None:
    """Convert an allmysms feed between XML and JSON, losing nothing.

    The feed is validated first; an invalid feed is not converted (exit 1).
    """
    from smsxml.convert import convert_feed

    try:
        if output is None:
            convert_feed(file, target, sys.stdout)
        else:
            with output.open("w", encoding="utf-8") as out:
                convert_feed(file, target, out)
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
    click.echo("encoding:    " + ", ".join(f"{k} ×{v}" for k, v in data["encodings"].items()))
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


if __name__ == "__main__":  # pragma: no cover
    main()
