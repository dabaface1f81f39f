"""allmysms ``<DATA>`` feeds in memory: XML and JSON into the generated classes and back.

JSON is mapped onto the very same XML tree (``{"DATA": {"MESSAGE": …, "SMS": [{…}]}}``
→ ``<DATA><MESSAGE>…</MESSAGE><SMS>…</SMS></DATA>``, each element stamped with the line of
its JSON object), so one schema and one set of rules judge both, and XML ⇄ JSON loses
nothing. JSON values are written as strings, as the vendor's example does
(``"DYNAMIC": "2"``). For feeds too large for memory, see :mod:`smsxml.feedstream` (XML)
and :mod:`smsxml.jsonfeed` (JSON), which use the same schema and rules.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import json
import json.decoder
import json.scanner
from collections.abc import Callable
from typing import Any, cast

from lxml import etree

from smsxml import xmlsafe
from smsxml.errors import BadInput, Problem
from smsxml.feedrules import DuplicateFinder, FeedRules
from smsxml.generated.allmysms import Data, Recipient

__all__ = [
    "FEED_SCHEMA",
    "JsonPositions",
    "check_recipient",
    "element_to_json",
    "feed_from_json",
    "feed_from_xml",
    "feed_problems",
    "feed_to_json",
    "feed_to_xml",
    "fill_element",
    "header_skeleton",
    "json_to_element",
    "rules_for",
    "schema_problems_located",
    "tree_problems",
    "xml_where",
]

FEED_SCHEMA = "allmysms/feed.xsd"


def _element_names(cls: type) -> list[str]:
    return [f.metadata.get("name", f.name) for f in dataclasses.fields(cls)]


#: JSON objects have no order, XSD sequences do: children are put in schema order (taken
#: from the generated classes, so it cannot drift from the schema); unknown keys go last
#: and the schema reports them.
CHILD_ORDER = {"DATA": _element_names(Data), "SMS": _element_names(Recipient)}


# JSON with positions -----------------------------------------------------------------


class _Located(dict[str, Any]):
    """A JSON object that remembers the offset of its opening brace."""

    offset: int = 0


def _positioned_loads(text: str) -> Any:
    """json.loads, but every object is a :class:`_Located` with its offset.

    The stdlib's pure-Python scanner hands each object's start offset to parse_object;
    wrapping it is the only way to learn positions without writing a JSON parser.
    """
    decoder = json.JSONDecoder()

    def parse_object(s_and_end: tuple[str, int], *args: Any, **kwargs: Any) -> tuple[Any, int]:
        # the pure-Python scanner's object hook: undocumented, so typeshed does not list it
        obj, end = json.decoder.JSONObject(s_and_end, *args, **kwargs)  # type: ignore[attr-defined]
        located = _Located(obj)
        located.offset = s_and_end[1] - 1
        return located, end

    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder.decode(text)


class _Lines:
    """Offset → (line, column), 1-based."""

    def __init__(self, text: str) -> None:
        self._starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def __call__(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._starts, offset) - 1
        return index + 1, offset - self._starts[index] + 1


@dataclasses.dataclass
class JsonPositions:
    """Where the objects of a JSON feed start: (line, column) of DATA and of each SMS.

    lxml cannot stamp lines above 65 535 on elements it did not parse, and a minified
    feed is one long line, so positions are kept beside the tree, not in it.
    """

    data: tuple[int, int] = (1, 1)
    sms: list[tuple[int, int]] = dataclasses.field(default_factory=list)

    def where(self, element: etree._Element, index: int | None) -> tuple[int, int]:
        return self.sms[index] if index is not None and index < len(self.sms) else self.data


def json_to_element(text: str) -> tuple[etree._Element, JsonPositions]:
    """A JSON document as the equivalent XML tree, and where its objects are."""
    try:
        document = _positioned_loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(Problem(error.lineno, error.colno, f"invalid JSON: {error.msg}")) from None
    if not isinstance(document, dict) or len(document) != 1:
        raise BadInput(Problem(1, 1, 'expected one root object, e.g. {"DATA": {...}}'))
    lines = _Lines(text)
    positions = JsonPositions()
    ((name, value),) = document.items()
    root = etree.Element(name)
    positions.data = lines(getattr(value, "offset", 0))
    _fill(root, value, lines, positions)
    return root, positions


def _fill(element: etree._Element, value: Any, lines: _Lines, positions: JsonPositions) -> None:
    def mark(entry: Any) -> None:
        positions.sms.append(lines(getattr(entry, "offset", 0)))

    def last() -> tuple[int, int]:
        return positions.sms[-1] if positions.sms else positions.data

    fill_element(element, value, on_sms=mark, where=last)


def fill_element(
    element: etree._Element,
    value: Any,
    *,
    on_sms: Callable[[Any], None] | None = None,
    where: Callable[[], tuple[int, int]] = lambda: (1, 1),
) -> etree._Element:
    """Put a decoded JSON value into ``element`` as the XML it stands for: objects become
    children in schema order, lists repeated siblings, scalars text (``true`` → "1").

    ``on_sms`` is told of each SMS object as it is placed; ``where`` places the error
    raised for a value XML cannot hold. Returns ``element``.
    """
    # Tags here are str: types-lxml types .tag as whatever it may be set to (bytes, QName)
    tag = cast(str, element.tag)
    if isinstance(value, dict):
        order = CHILD_ORDER.get(tag, [])
        rank = {name: index for index, name in enumerate(order)}
        for key, item in sorted(value.items(), key=lambda kv: rank.get(kv[0], len(rank))):
            for entry in item if isinstance(item, list) else [item]:
                child = etree.SubElement(element, key)
                if key == "SMS" and on_sms is not None:
                    on_sms(entry)
                fill_element(child, entry, on_sms=on_sms, where=where)
    elif value is None:
        pass
    elif isinstance(value, bool):
        element.text = "1" if value else "0"
    elif isinstance(value, str | int | float):
        element.text = str(value)
    else:
        raise BadInput(Problem(*where(), f"unexpected JSON value in {tag}"))
    return element


def element_to_json(element: etree._Element) -> dict[str, Any]:
    """An XML tree as JSON: leaves become strings, repeated siblings become lists (SMS is
    always a list, as allmysms expects)."""
    return {cast(str, element.tag): _jsonify(element)}  # str: see fill_element


def _jsonify(element: etree._Element) -> Any:
    if len(element) == 0:
        return element.text or ""
    result: dict[str, Any] = {}
    for child in element:
        value = _jsonify(child)
        tag = cast(str, child.tag)  # str: see fill_element
        if tag in result:
            if not isinstance(result[tag], list):
                result[tag] = [result[tag]]
            result[tag].append(value)
        elif tag == "SMS":
            result[tag] = [value]
        else:
            result[tag] = value
    return result


# Validation of a whole (in-memory) feed ----------------------------------------------

Where = Callable[[etree._Element, int | None], tuple[int, int]]


def xml_where(element: etree._Element, index: int | None) -> tuple[int, int]:
    """Where an element of a parsed XML document is: its line (columns come later)."""
    return (element.sourceline or 0, 0)


def header_skeleton(
    before: list[etree._Element], after: list[etree._Element] | None = None
) -> etree._Element:
    """A ``<DATA>`` holding copies of the elements found before the first SMS, one valid
    SMS, then copies of the non-SMS elements found after it (lines kept): the schema's
    verdict on it is its verdict on everything but the recipients."""
    skeleton = etree.Element("DATA")
    for element in before:
        skeleton.append(copy.deepcopy(element))
    placeholder = etree.SubElement(skeleton, "SMS")
    etree.SubElement(placeholder, "MOBILEPHONE").text = "33612345678"
    for element in after or []:
        skeleton.append(copy.deepcopy(element))
    return skeleton


def schema_problems_located(root: etree._Element, where: Where = xml_where) -> list[Problem]:
    """Schema problems of a feed tree, each placed with ``where``.

    Parsed XML keeps lines in the tree, so libxml2's own lines serve. Otherwise the header
    and each SMS are validated on their own and placed at their object's position.
    """
    schema = xmlsafe.load_schema(FEED_SCHEMA)
    if schema.validate(root):
        return []
    if where is xml_where:
        return [xmlsafe.log_problem(entry) for entry in schema.error_log]
    problems: list[Problem] = []
    children = list(root)
    first_sms = next((i for i, child in enumerate(children) if child.tag == "SMS"), len(children))
    before = children[:first_sms]
    after = [child for child in children[first_sms:] if child.tag != "SMS"]
    if not schema.validate(header_skeleton(before, after)):
        problems += [xmlsafe.log_problem(e, where(root, None)) for e in schema.error_log]
    recipients = root.findall("SMS")
    if not recipients:
        problems.append(Problem(*where(root, None), "DATA has no SMS", "DATA"))
    for index, sms in enumerate(recipients):
        if not schema.validate(sms):
            problems += [xmlsafe.log_problem(e, where(sms, index)) for e in schema.error_log]
    return problems


def rules_for(
    header: list[etree._Element],
    where: Where,
    root: etree._Element,
    sink: Callable[[Problem], None] | None = None,
) -> FeedRules:
    """The rules of a feed, from its header elements (problems to ``sink`` when given)."""
    fields = {cast(str, child.tag): child for child in header}  # parsed: str tags
    message, dynamic, date = fields.get("MESSAGE"), fields.get("DYNAMIC"), fields.get("DATE")
    try:
        dynamic_value = int(dynamic.text or "") if dynamic is not None else None
    except ValueError:
        dynamic_value = None  # the schema reports it
    return FeedRules(
        (message.text or "") if message is not None else "",
        dynamic_value,
        date.text if date is not None else None,
        where={tag: _header_place(el, where, root) for tag, el in fields.items()},
        sink=sink,
    )


def _header_place(element: etree._Element, where: Where, root: etree._Element) -> tuple[int, int]:
    place = where(element, None)
    return place if place[0] else where(root, None)


def check_recipient(
    sms: etree._Element,
    at: tuple[int, int],
    rules: FeedRules,
    duplicates: DuplicateFinder,
    *,
    parsed: bool = True,
) -> None:
    """Hand one ``<SMS>`` element, found at ``at``, to the rules and the duplicate finder.

    ``parsed``: the element comes from parsed XML, so its MOBILEPHONE has its own line
    (JSON-built elements share their object's position).
    """
    children = list(sms)
    mobile = children[0].text if children and children[0].tag == "MOBILEPHONE" else None
    params = children[1:] if mobile is not None else children
    mobile_at = (children[0].sourceline or at[0], 0) if parsed and mobile is not None else at
    tags = [cast(str, p.tag) for p in params]  # parsed or built from str keys: str tags
    rules.check(at, mobile, tags, [p.text for p in params], mobile_at)
    if mobile is not None and mobile.isdigit():
        duplicates.add(int(mobile), *mobile_at)


def tree_problems(root: etree._Element, where: Where = xml_where) -> list[Problem]:
    """Every problem of a feed tree: the schema's, then the rules beyond it."""
    if root.tag != "DATA":
        tag = cast(str, root.tag)  # parsed: a str tag
        return [Problem(*where(root, None), f"expected <DATA>, found <{tag}>", tag)]
    problems = schema_problems_located(root, where)
    rules = rules_for([child for child in root if child.tag != "SMS"], where, root)
    recipients = root.findall("SMS")
    duplicates = DuplicateFinder()
    for index, sms in enumerate(recipients):
        check_recipient(sms, where(sms, index), rules, duplicates, parsed=where is xml_where)
    return sorted(problems + rules.problems + duplicates.problems())


def _bind(root: etree._Element) -> Data:
    from smsxml import binding  # xsdata is heavy: only the in-memory path needs it

    return binding.bind(root, Data)


def _checked(root: etree._Element, where: Where = xml_where) -> Data:
    problems = tree_problems(root, where)
    if problems:
        raise BadInput(problems)
    return _bind(root)


# Conversions -------------------------------------------------------------------------


def feed_from_xml(data: bytes, *, check: bool = True) -> Data:
    """An XML feed, validated (schema and rules) unless ``check`` is False."""
    root = xmlsafe.parse(data, limits=xmlsafe.FEED_LIMITS.tightened(max_bytes=256 * 1024 * 1024))
    return _checked(root) if check else _bind(root)


def feed_from_json(text: str, *, check: bool = True) -> Data:
    """A JSON feed (``{"DATA": {...}}``), validated like XML unless ``check`` is False."""
    root, positions = json_to_element(text)
    return _checked(root, positions.where) if check else _bind(root)


def feed_to_xml(feed: Data) -> bytes:
    """The feed as UTF-8 XML, fields in schema order."""
    from smsxml import binding

    return binding.to_xml(feed)


def feed_to_json(feed: Data, *, indent: int | None = 2) -> str:
    """The feed as allmysms JSON (``{"DATA": {...}}``), values as strings."""
    from smsxml import binding

    return json.dumps(element_to_json(binding.to_element(feed)), ensure_ascii=False, indent=indent)


def feed_problems(feed: Data) -> list[Problem]:
    """Schema and rule problems of a feed built in Python (lines refer to its XML form)."""
    return tree_problems(xmlsafe.parse(feed_to_xml(feed), limits=xmlsafe.FEED_LIMITS))
