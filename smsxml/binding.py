"""Between hardened lxml trees and the generated dataclasses, in both directions.

xsdata binds a tree we parsed (never raw bytes: its own lxml handler runs in recover
mode); its errors — including the raw ``TypeError`` it raises for a missing required
element — become :class:`~smsxml.errors.BadInput`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from lxml import etree
from xsdata.exceptions import ConverterError, ParserError
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.config import ParserConfig
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig

from smsxml import xmlsafe
from smsxml.errors import BadInput, Problem

__all__ = ["bind", "from_xml", "to_element", "to_xml"]

T = TypeVar("T")

_PARSER_CONFIG = ParserConfig(
    load_dtd=False,
    resolve_entities=False,
    process_xinclude=False,
    fail_on_unknown_properties=True,
    fail_on_unknown_attributes=False,
    fail_on_converter_warnings=True,
)
_SERIALIZER_CONFIG = SerializerConfig(
    indent="  ", xml_declaration=True, encoding="UTF-8", ignore_default_attributes=True
)


def bind(element: etree._Element, cls: type[T]) -> T:
    """The dataclass ``cls`` holding what ``element`` says; :class:`BadInput` if it can't."""
    try:
        return XmlParser(config=_PARSER_CONFIG).parse(element, cls)
    except (ParserError, ConverterError, TypeError, ValueError) as error:
        message = str(error)
        if isinstance(error, TypeError) and "required" in message:
            missing = message.split(":")[-1].strip()
            message = f"missing required element(s): {missing}"
        raise BadInput(Problem(element.sourceline or 0, 0, message)) from None


def from_xml(
    data: bytes | str, cls: type[T], *, limits: xmlsafe.Limits = xmlsafe.DEFAULT_LIMITS
) -> T:
    """Parse (hardened) and bind in one step."""
    return bind(xmlsafe.parse(data, limits=limits), cls)


def to_xml(obj: Any, *, pretty: bool = True) -> bytes:
    """Serialise a generated dataclass to UTF-8 XML with a declaration."""
    config = _SERIALIZER_CONFIG if pretty else SerializerConfig(xml_declaration=True)
    return XmlSerializer(config=config).render(obj).encode("utf-8")


def to_element(obj: Any) -> etree._Element:
    """A generated dataclass as an lxml element (serialised, then re-read hardened)."""
    return xmlsafe.parse(to_xml(obj, pretty=False), limits=xmlsafe.FEED_LIMITS)
