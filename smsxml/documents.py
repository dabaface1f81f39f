"""The XML and JSON documents smsxml knows, recognised by their root, and how each is
validated. Feeds, XML or JSON, go through the streaming validators; answers are small and
are parsed whole, checked against their schema and bound to their generated class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from smsxml import xmlsafe
from smsxml.errors import BadInput, Problem
from smsxml.feedreport import Emit, FeedReport, Reporter
from smsxml.feedstream import fill_columns, validate_xml_feed
from smsxml.generated.allmysms import Response as AllmysmsAnswer
from smsxml.generated.net2sms import Response as Net2smsAnswer
from smsxml.generated.smspartner import Result as SmsPartnerAnswer

__all__ = ["KINDS", "Kind", "detect", "validate_path"]


@dataclass(frozen=True)
class Kind:
    """One kind of document: its root element, schema and generated class."""

    name: str
    root: str
    schema: str
    cls: type


KINDS = {
    kind.root: kind
    for kind in (
        Kind("allmysms feed", "DATA", "allmysms/feed.xsd", object),
        Kind("allmysms answer", "RESPONSE", "allmysms/answer.xsd", AllmysmsAnswer),
        Kind("net2sms answer", "response", "net2sms/response.xsd", Net2smsAnswer),
        Kind("SMS Partner answer", "result", "smspartner/result.xsd", SmsPartnerAnswer),
    )
}


def _is_json(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] in (b"{", b"[")


def _xml_root(path: Path) -> str:
    """The root element's name, read without parsing the rest of the document."""
    try:
        with path.open("rb") as handle:
            for _event, element in etree.iterparse(
                handle, events=("start",), resolve_entities=False, no_network=True, load_dtd=False
            ):
                return str(element.tag)
    except etree.XMLSyntaxError as error:
        raise BadInput(xmlsafe.syntax_problem(error)) from None
    raise BadInput(Problem(1, 1, "empty document"))


def detect(path: str | Path) -> tuple[Kind, str]:
    """The kind of a document and its syntax ("xml" or "json")."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise BadInput(Problem(1, 1, "empty file"))
    if _is_json(path):
        return KINDS["DATA"], "json"
    root = _xml_root(path)
    kind = KINDS.get(root)
    if kind is None:
        known = ", ".join(f"<{k.root}> ({k.name})" for k in KINDS.values())
        raise BadInput(Problem(1, 1, f"unknown document <{root}>; smsxml knows {known}"))
    return kind, "xml"


def validate_path(
    path: str | Path,
    *,
    progress: Callable[[int], None] | None = None,
    emit: Emit | None = None,
    limit: int | None = None,
) -> FeedReport:
    """Every problem of the document at ``path``, whatever its kind: handed to ``emit``
    as found, or kept; only the first ``limit`` are passed on (None: all), the rest
    counted in the report."""
    from smsxml.jsonfeed import validate_json_feed  # ijson: only JSON feeds need it

    path = Path(path)
    reporter = Reporter(emit, limit)
    try:
        kind, syntax = detect(path)
        if syntax == "json":
            return validate_json_feed(path, progress=progress, emit=emit, limit=limit)
        if kind.root == "DATA":
            return validate_xml_feed(path, progress=progress, emit=emit, limit=limit)
        reporter.extend(_answer_problems(path, kind))
    except BadInput as error:
        reporter.extend(error.problems)
    except UnicodeDecodeError as error:
        reporter(Problem(1, 1, f"not UTF-8: {error.reason}"))
    return reporter.report


def _answer_problems(path: Path, kind: Kind) -> list[Problem]:
    """An answer is small (a few elements): parsed whole, its problems listed."""
    root = xmlsafe.parse_file(path)
    problems = xmlsafe.schema_problems(xmlsafe.load_schema(kind.schema), root)
    if not problems:
        from smsxml import binding  # xsdata is heavy: feeds never need it here

        try:
            binding.bind(root, kind.cls)
        except BadInput as error:
            problems = error.problems
    return fill_columns(path, problems)
