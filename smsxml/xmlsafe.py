"""The one place that builds XML parsers: every XML byte smsxml reads goes through here.

Hostile input is normal input. The parsers built here:

- refuse a DOCTYPE (it is how entity bombs, external entities and DTD fetches get in);
- never resolve entities, never touch the network, never run in recover mode (recover
  mode "parses" truncated documents and hides errors, tefra/xsdata#610);
- never open a file a document names: every external resource (a DTD, an entity) is
  answered by :class:`_NoExternal` with nothing. ``load_dtd=False`` is not enough:
  with ``collect_ids=False`` (lxml 6.1, libxml2 2.14) libxml2 opens the external DTD of
  ``<!DOCTYPE a SYSTEM "/path">`` before we can look at the DOCTYPE, so a FIFO or a
  terminal there hung the parse, and the error told whether the path exists;
- keep libxml2's huge_tree safety limits on;
- enforce quotas in the spirit of Apache CXF's defaults (depth, children per element,
  attributes, attribute and text size, element count, document size), which a caller may
  tighten with :meth:`Limits.tightened`.

xsdata never parses raw bytes itself (its lxml handler runs in recover mode): we build
the tree, :mod:`smsxml.binding` binds it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import IO, Any

from lxml import etree

from smsxml.errors import BadInput, Problem

__all__ = [
    "DEFAULT_LIMITS",
    "FEED_LIMITS",
    "SCHEMAS_DIR",
    "ElementStream",
    "Limits",
    "load_schema",
    "log_problem",
    "new_parser",
    "parse",
    "parse_file",
    "schema_problems",
    "syntax_problem",
]

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
try:  # installed: the schemas are package data of smsxml.schemas
    import smsxml.schemas as _schemas_pkg

    SCHEMAS_DIR = Path(_schemas_pkg.__file__).resolve().parent
except ImportError:  # pragma: no cover - running from a bare source tree
    pass


@dataclass(frozen=True)
class Limits:
    """Quotas on one document. ``None`` means "no quota of ours" (libxml2's still apply).

    Defaults follow Apache CXF's StaxUtils (depth 100, 50 000 children, 500 attributes,
    64 KiB attribute values) with a smaller text and document size: an SMS request or
    answer is a few kilobytes, a text of more than 1 MiB is an attack, not a message.
    """

    max_bytes: int | None = 10 * 1024 * 1024
    max_depth: int = 100
    max_children: int | None = 50_000
    max_elements: int | None = 5_000_000
    max_attributes: int = 500
    max_attribute_length: int = 64 * 1024
    max_text_length: int = 1024 * 1024

    def tightened(self, **changes: Any) -> Limits:
        """A copy with some quotas changed, e.g. ``DEFAULT_LIMITS.tightened(max_bytes=65536)``."""
        return replace(self, **changes)


DEFAULT_LIMITS = Limits()
#: Feeds of millions of recipients: no size, children or element-count quota (the
#: streaming validator runs in bounded memory whatever the size); depth, attributes and
#: text stay bounded.
FEED_LIMITS = Limits(max_bytes=None, max_children=None, max_elements=None)

_local = threading.local()


class _NoExternal(etree.Resolver):
    """Answers every external DTD or entity libxml2 asks for with an empty document:
    nothing is opened or fetched (the DOCTYPE that asked is refused after the parse)."""

    def resolve(
        self, system_url: str | None, public_id: str | None, context: Any
    ) -> Any:  # lxml's _InputDocument, private
        return self.resolve_string("", context)


def new_parser(*, keep_pis: bool = False) -> etree.XMLParser:
    """A hardened parser. lxml parsers must not be shared between threads: one per thread.
    ``keep_pis``: processing instructions stay in the tree, for a caller that refuses them."""
    slot = "pi_parser" if keep_pis else "parser"
    parser: etree.XMLParser | None = getattr(_local, slot, None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            recover=False,
            remove_pis=not keep_pis,
            remove_comments=True,
            strip_cdata=True,
            collect_ids=False,
        )
        parser.resolvers.add(_NoExternal())
        setattr(_local, slot, parser)
    return parser


def _refuse_pis(root: etree._Element) -> None:
    around = [*root.itersiblings(preceding=True), *root.itersiblings()]
    found = [n for n in around if isinstance(n, etree._ProcessingInstruction)]
    found += root.iter(etree.ProcessingInstruction)  # type: ignore[arg-type]
    if found:
        line = found[0].sourceline or 0
        raise BadInput(Problem(line, 0, "processing instructions are not allowed"))


def syntax_problem(error: etree.XMLSyntaxError) -> Problem:
    """lxml's syntax error as a Problem: its place once, in line and column."""
    line, column = error.position if error.position else (0, 0)
    message = error.msg or str(error)
    # lxml words some messages "line N: b'…'" or appends ", line N, column M"; we carry
    # the place separately.
    wrapped = re.fullmatch(r"line \d+: b'(.*)'", message, flags=re.DOTALL)
    message = wrapped.group(1) if wrapped else message.split(", line ")[0]
    message = message.strip()
    return Problem(line or 0, column or 0, message)


def _refuse_doctype(tree: etree._ElementTree) -> None:
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise BadInput(Problem(1, 1, "DOCTYPE is not allowed (DTDs and entities are refused)"))


@cache
def _quota_checks(limits: Limits) -> tuple[tuple[int, etree.XPath, str], ...]:
    """XPath tests, compiled once per Limits, each finding the first node over a quota,
    with the smallest document that could hold such a node (smaller ones skip the test).

    libxml2 evaluates them in C: a walk in Python cost ten times the parse on a SOAP
    request of 10,000 recipients.
    """
    checks: list[tuple[int, str, str]] = [
        # an element at depth max_depth + 1 (the document element is depth 1)
        (0, "/*" * (limits.max_depth + 1), f"document nested deeper than {limits.max_depth}"),
        # the (n+1)th attribute of any element; each takes at least ` a=""`
        (
            5 * limits.max_attributes,
            f"//@*[{limits.max_attributes + 1}]",
            f"element has more than {limits.max_attributes} attributes",
        ),
        (
            limits.max_attribute_length,
            f"//@*[string-length(.) > {limits.max_attribute_length}]",
            "attribute value too long",
        ),
        (
            limits.max_text_length,
            f"//text()[string-length(.) > {limits.max_text_length}]",
            f"text longer than {limits.max_text_length} characters",
        ),
    ]
    if limits.max_children is not None:  # the (n+1)th child of any element; each <a/>
        checks.append(
            (
                4 * limits.max_children,
                f"//*/*[{limits.max_children + 1}]",
                f"element has more than {limits.max_children} children",
            )
        )
    if limits.max_elements is not None:
        checks.append(
            (
                4 * limits.max_elements,
                f"(//*)[{limits.max_elements + 1}]",
                f"more than {limits.max_elements} elements",
            )
        )
    return tuple((size, etree.XPath(f"({path})[1]"), message) for size, path, message in checks)


def _check_quotas(root: etree._Element, limits: Limits, size: int) -> None:
    """The first quota exceeded is the error, with the line of the node over it."""
    document = root.getroottree()
    for smallest, find, message in _quota_checks(limits):
        if size < smallest:
            continue
        found = find(document)
        if found:
            node = found[0]
            holder = node if isinstance(node, etree._Element) else node.getparent()
            line = holder.sourceline if holder is not None else 0
            raise BadInput(Problem(line or 0, 0, message))


def parse(
    data: bytes | str, *, limits: Limits = DEFAULT_LIMITS, refuse_pis: bool = False
) -> etree._Element:
    """Parse a whole document held in memory; raise :class:`BadInput` with line and column.
    ``refuse_pis``: a processing instruction anywhere is refused (SOAP 1.1 §3), where
    otherwise it is dropped."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if limits.max_bytes is not None and len(data) > limits.max_bytes:
        raise BadInput(Problem(0, 0, f"document larger than {limits.max_bytes} bytes"))
    if not data.strip():
        raise BadInput(Problem(1, 1, "empty document"))
    try:
        root = etree.fromstring(data, new_parser(keep_pis=refuse_pis))
    except etree.XMLSyntaxError as error:
        raise BadInput(syntax_problem(error)) from None
    _refuse_doctype(root.getroottree())
    if refuse_pis:
        _refuse_pis(root)
    _check_quotas(root, limits, len(data))
    return root


def parse_file(path: str | Path, *, limits: Limits = DEFAULT_LIMITS) -> etree._Element:
    """Parse a file; the size quota is checked before reading it."""
    size = Path(path).stat().st_size
    if limits.max_bytes is not None and size > limits.max_bytes:
        raise BadInput(Problem(0, 0, f"document larger than {limits.max_bytes} bytes"))
    return parse(Path(path).read_bytes(), limits=limits)


class ElementStream:
    """The ``tag`` elements of a large document, one at a time, in bounded memory.

    Each element is yielded once and then freed with everything before it, so a caller
    must read what it needs before asking for the next. With ``schema`` libxml2 validates
    the whole stream as it goes (and bounds every text by the schema's facets; libxml2
    bounds depth and text nodes without one); schema violations are collected and raised
    as :class:`BadInput` once the stream ends (libxml2 does not stop at them, and gives
    them no line: the caller locates them, see :mod:`smsxml.feedstream`). Malformed XML
    stops the stream at once with its line and column. ``root`` is the document element
    once the first element has been seen.
    """

    def __init__(
        self,
        source: str | Path | IO[bytes],
        *,
        tag: str,
        schema: etree.XMLSchema | None = None,
    ) -> None:
        self.root: etree._Element | None = None
        self._source = source
        self._tag = tag
        self._schema = schema

    def __iter__(self) -> Iterator[etree._Element]:
        if isinstance(self._source, str | Path):
            # libxml2 reads a path itself, ~40 % faster than through a Python file
            # object; the prolog is checked first, by reading the file's head
            with open(self._source, "rb") as head:
                guard = _PrologGuard(head)
                while not guard.done:
                    guard.read(65536)
            yield from self._elements(str(self._source))
        else:
            yield from self._elements(_PrologGuard(self._source))

    def _elements(self, handle: _PrologGuard | str) -> Iterator[etree._Element]:
        etree.clear_error_log()  # the thread's log keeps entries of earlier parses
        # No resolve_entities=False here: with schema= it makes lxml 6.1's iterparse drop
        # fatal errors (a truncated feed, a bad "&" passed as valid; verified). Entities
        # can only be declared in a DOCTYPE, which _PrologGuard refuses before libxml2
        # reads a byte of it.
        context = etree.iterparse(
            handle,
            events=("end",),
            tag=self._tag,
            schema=self._schema,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            recover=False,
            remove_pis=True,
            remove_comments=True,
            strip_cdata=True,
            collect_ids=False,
        )
        context.resolvers.add(_NoExternal())
        try:
            for _event, element in context:
                if self.root is None:
                    self.root = element.getroottree().getroot()
                    _refuse_doctype(element.getroottree())
                yield element
                element.clear(keep_tail=False)
                parent = element.getparent()
                while parent is not None and element.getprevious() is not None:
                    del parent[0]
        except etree.XMLSyntaxError as error:
            problem = syntax_problem(error)
            if problem.line == 0 and self._schema is not None:
                raise BadInput([log_problem(e) for e in error.error_log] or [problem]) from None
            raise BadInput(problem) from None
        if self.root is None and context.root is not None:
            self.root = context.root
            _refuse_doctype(self.root.getroottree())


class _PrologGuard:
    """A reader that refuses a document whose prolog holds a DOCTYPE, before the parser
    sees it (the streaming parser would otherwise read the DTD before we can look)."""

    _DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
    _FIRST_ELEMENT = re.compile(rb"<[A-Za-z_:]")

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._prolog = b""
        self.done = False

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if not self.done:
            self._prolog += data
            first = self._FIRST_ELEMENT.search(self._prolog)
            prolog = self._prolog[: first.start()] if first else self._prolog
            doctype = self._DOCTYPE.search(prolog)
            if doctype is not None:
                line = prolog[: doctype.start()].count(b"\n") + 1
                raise BadInput(
                    Problem(line, 1, "DOCTYPE is not allowed (DTDs and entities are refused)")
                )
            self.done = first is not None or not data
            if self.done:
                self._prolog = b""
        return data


@cache
def load_schema(relative_path: str) -> etree.XMLSchema:
    """The compiled XSD at ``schemas/<relative_path>`` (imports resolved locally, never
    over the network), compiled once per process."""
    path = SCHEMAS_DIR / relative_path
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(path), parser))


def log_problem(entry: etree._LogEntry, where: tuple[int, int] | None = None) -> Problem:
    """A libxml2 log entry as a Problem, tagged with the element it names (libxml2 gives
    schema errors no column; the tag lets a caller find one)."""
    message = entry.message
    tag = message.split("'")[1] if message.startswith("Element '") else ""
    line, column = where if where is not None else (entry.line, entry.column)
    return Problem(line, column, message, tag)


def schema_problems(schema: etree.XMLSchema, node: etree._Element) -> list[Problem]:
    """Validate a tree or subtree; every violation with its line (column 0 when libxml2
    does not know it)."""
    if schema.validate(node):
        return []
    return [log_problem(entry) for entry in schema.error_log]
