"""The hostile payloads, built in one place for every entry point.

An entry point describes the documents it reads as a :class:`Shape`: a valid document
with slots (a prolog before the document element, text fields, a repeated list). Each
:class:`Attack` builds its payload from a shape, so adding an attack here puts it in
front of every entry point of ``test_matrix.py``, and adding a shape puts every attack in
front of a new entry point.

Attacks that would read a file or open a connection point at :class:`Targets`: a file
holding a marker that must never come back, and a listener on 127.0.0.1 that must never
be connected to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

__all__ = ["ATTACKS", "Attack", "Hostile", "Shape", "Targets"]

PROLOG = b"@@PROLOG@@"
ITEMS = b"@@ITEMS@@"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(frozen=True)
class Targets:
    """What a hostile document reaches for: a local file (its text must never show) and
    an http URL on a 127.0.0.1 port the test listens on (it must never be connected to)."""

    secret_file: str
    secret_marker: str
    canary_url: str
    #: a FIFO: whoever opens it to read is counted (and a parser that would block on it,
    #: reading a file it should never touch, gets an empty file instead of hanging)
    tripwire: str

    @property
    def secret_url(self) -> str:
        return f"file://{self.secret_file}"


@dataclass(frozen=True)
class Shape:
    """A valid document of one entry point, with slots the attacks fill.

    ``template`` holds ``@@PROLOG@@`` (before the document element), ``@@ITEMS@@`` (the
    repeated list: recipients, answer entries) and ``@@<field>@@`` for every text field;
    ``text_field`` is the free text (a message, a remark) text attacks go to.
    """

    name: str
    template: bytes
    root: str
    fields: Mapping[str, str]
    text_field: str
    item: Callable[[bytes], bytes]
    item_value: str
    #: fields that authenticate: "every field" attacks of the in-text kind leave them valid
    credentials: frozenset[str] = field(default_factory=frozenset)

    def render(
        self,
        *,
        prolog: bytes = b"",
        values: Mapping[str, bytes] | None = None,
        items: bytes | None = None,
    ) -> bytes:
        """The document with ``values`` (raw XML, already escaped or deliberately not)
        in place of the valid field values."""
        document = self.template.replace(PROLOG, prolog)
        document = document.replace(
            ITEMS, self.item(xml(self.item_value)) if items is None else items
        )
        for name, valid in self.fields.items():
            value = (values or {}).get(name, xml(valid))
            document = document.replace(f"@@{name}@@".encode(), value)
        return document

    def text(self, value: bytes) -> bytes:
        """The valid document with ``value`` as its free text."""
        return self.render(values={self.text_field: value})

    def valid(self) -> bytes:
        return self.render()


def xml(text: str) -> bytes:
    return escape(text).encode()


@dataclass(frozen=True)
class Hostile:
    """What an entry point receives: a body, and for HTTP a Content-Length to declare
    (``None``: the body's own length)."""

    body: bytes
    declared_length: int | None = None


@dataclass(frozen=True)
class Attack:
    """One attack. ``must_refuse``: every entry point must refuse it; otherwise a clean
    answer (with nothing leaked) is as good as a clean refusal. ``http_only``: it is
    about an HTTP exchange and has no meaning for a file."""

    name: str
    build: Callable[[Shape, Targets], Hostile]
    must_refuse: bool = True
    http_only: bool = False
    #: its cells run with ``-m slow`` (a cell that fails today waits out a deadline)
    slow: bool = False


def _doctype(shape: Shape, declarations: str, *, text: bytes) -> Hostile:
    prolog = f"<!DOCTYPE {shape.root} [\n{declarations}\n]>\n".encode()
    return Hostile(shape.render(prolog=prolog, values={shape.text_field: text}))


def billion_laughs(shape: Shape, targets: Targets) -> Hostile:
    """Ten entities of ten: 10⁹ "lol"s from a 1 kB document."""
    levels = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10)
    ]
    return _doctype(shape, "\n".join(levels), text=b"&l9;")


def quadratic_blowup(shape: Shape, targets: Targets) -> Hostile:
    """One 64 kB entity referenced 20,000 times: 1.3 GB from 140 kB, under any nesting
    limit."""
    return _doctype(shape, f'<!ENTITY a "{"x" * 65536}">', text=b"&a;" * 20000)


def external_entity_file(shape: Shape, targets: Targets) -> Hostile:
    return _doctype(shape, f'<!ENTITY s SYSTEM "{targets.secret_url}">', text=b"&s;")


def external_entity_http(shape: Shape, targets: Targets) -> Hostile:
    return _doctype(shape, f'<!ENTITY s SYSTEM "{targets.canary_url}/entity">', text=b"&s;")


def external_dtd(shape: Shape, targets: Targets) -> Hostile:
    prolog = f'<!DOCTYPE {shape.root} SYSTEM "{targets.canary_url}/evil.dtd">\n'.encode()
    return Hostile(shape.render(prolog=prolog))


def external_dtd_file(shape: Shape, targets: Targets) -> Hostile:
    """An external DTD on a local path: parsing must not even open it (a FIFO, a
    terminal or a slow mount would hang the parser; errors would tell what exists)."""
    prolog = f'<!DOCTYPE {shape.root} SYSTEM "{targets.tripwire}">\n'.encode()
    return Hostile(shape.render(prolog=prolog))


def external_dtd_file_utf16(shape: Shape, targets: Targets) -> Hostile:
    """The same in UTF-16, past any check that looks for ``<!DOCTYPE`` in the raw bytes."""
    prolog = f'<!DOCTYPE {shape.root} SYSTEM "{targets.tripwire}">\n'.encode()
    document = shape.render(prolog=prolog).replace(b'encoding="UTF-8"', b'encoding="UTF-16"')
    return Hostile(document.decode("utf-8").encode("utf-16"))


def parameter_entity(shape: Shape, targets: Targets) -> Hostile:
    """A parameter entity fetching a DTD that would define the entity the text uses."""
    declarations = f'<!ENTITY % p SYSTEM "{targets.canary_url}/p.dtd">\n%p;'
    return _doctype(shape, declarations, text=b"&exfiltrated;")


def parameter_entity_file(shape: Shape, targets: Targets) -> Hostile:
    """The out-of-band exfiltration recipe: a parameter entity holding the file."""
    declarations = (
        f'<!ENTITY % file SYSTEM "{targets.secret_url}">\n'
        f"<!ENTITY % wrap \"<!ENTITY leak '%file;'>\">\n%wrap;"
    )
    return _doctype(shape, declarations, text=b"&leak;")


def xinclude(shape: Shape, targets: Targets) -> Hostile:
    include = (
        f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{targets.secret_url}"'
        ' parse="text"/>'
    )
    return Hostile(shape.text(include.encode()))


def harmless_doctype(shape: Shape, targets: Targets) -> Hostile:
    """A DOCTYPE declaring nothing: refused too (any DOCTYPE is)."""
    return Hostile(shape.render(prolog=f"<!DOCTYPE {shape.root}>\n".encode()))


def internal_entity(shape: Shape, targets: Targets) -> Hostile:
    return _doctype(shape, '<!ENTITY e "EXPANDED">', text=b"&e;")


def processing_instructions(shape: Shape, targets: Targets) -> Hostile:
    """Processing instructions in the prolog and in the text: SOAP 1.1 §3 forbids them
    (the endpoint refuses them); a feed or an answer drops them."""
    prolog = (
        b'<?xml-stylesheet type="text/xsl" href="' + targets.canary_url.encode() + b'/x.xsl"?>\n'
    )
    return Hostile(
        shape.render(prolog=prolog, values={shape.text_field: b"a<?php system('id'); ?>b"})
    )


def deep_nesting(shape: Shape, targets: Targets) -> Hostile:
    return Hostile(shape.text(b"<a>" * 5000 + b"</a>" * 5000))


#: larger than every size quota: the SOAP endpoint's 16 MiB, xmlsafe's 10 MiB, a WSDL's 2 MiB
HUGE = 20 * 1024 * 1024


def huge_body(shape: Shape, targets: Targets) -> Hostile:
    return Hostile(shape.text(b"x" * HUGE))


def huge_declared_length(shape: Shape, targets: Targets) -> Hostile:
    """A valid body under a Content-Length of a terabyte."""
    return Hostile(shape.valid(), declared_length=10**12)


def declared_length_over_quota(shape: Shape, targets: Targets) -> Hostile:
    """A valid body under a Content-Length of 100 MiB: over every quota of ours, under
    the 1 GiB a WSGI server may take by default."""
    return Hostile(shape.valid(), declared_length=100 * 1024 * 1024)


def invalid_utf8(shape: Shape, targets: Targets) -> Hostile:
    return Hostile(shape.text(b"caf\xc3 \xff\xfe \xc0\xaf"))


def _utf16(shape: Shape, codec: str) -> bytes:
    document = shape.valid().replace(b'encoding="UTF-8"', b'encoding="UTF-16"')
    return document.decode("utf-8").encode(codec)


def utf16_with_bom(shape: Shape, targets: Targets) -> Hostile:
    return Hostile(_utf16(shape, "utf-16"))


def utf16_without_bom(shape: Shape, targets: Targets) -> Hostile:
    return Hostile(_utf16(shape, "utf-16-le"))


def empty_body(shape: Shape, targets: Targets) -> Hostile:
    return Hostile(b"")


def hundred_thousand_items(shape: Shape, targets: Targets) -> Hostile:
    """A send to 100,000 different recipients (for answers: 100,000 entries)."""
    value = shape.item_value
    if value.isdigit():
        values = (f"{value[:-6]}{n:06d}" for n in range(100_000))
        return Hostile(shape.render(items=b"".join(shape.item(xml(v)) for v in values)))
    return Hostile(shape.render(items=shape.item(xml(value)) * 100_000))


#: SQL, format strings of C, Python and log4j, a shell and a path
INJECTION = (
    "'; DROP TABLE deliveries;-- \" OR 1=1 -- %s%s%n%x {0} {__class__} %(password)s "
    "${jndi:ldap://127.0.0.1:1/x} $(id) ../../etc/passwd \\x00"
)


def injection_everywhere(shape: Shape, targets: Targets) -> Hostile:
    """SQL- and format-string-like text in every field and every item, credentials too."""
    values = {name: xml(INJECTION) for name in shape.fields}
    return Hostile(shape.render(values=values, items=shape.item(xml(INJECTION))))


def injection_in_fields(shape: Shape, targets: Targets) -> Hostile:
    """The same text in every field but the credentials (so it passes authentication)."""
    values = {name: xml(INJECTION) for name in shape.fields if name not in shape.credentials}
    return Hostile(shape.render(values=values))


def injection_in_text(shape: Shape, targets: Targets) -> Hostile:
    """The same text as the free text alone (so a send is valid, and stored)."""
    return Hostile(shape.text(xml(INJECTION)))


def control_characters(shape: Shape, targets: Targets) -> Hostile:
    """Raw C0 controls, which XML 1.0 forbids."""
    return Hostile(shape.text(b"bell\x07 escape\x1b null\x00 backspace\x08"))


def control_character_references(shape: Shape, targets: Targets) -> Hostile:
    return Hostile(shape.text(b"bell&#7; null&#0; escape&#x1B;"))


def lone_surrogate_reference(shape: Shape, targets: Targets) -> Hostile:
    return Hostile(shape.text(b"half a pair &#xD800; here"))


def lone_surrogate_bytes(shape: Shape, targets: Targets) -> Hostile:
    """A surrogate encoded as UTF-8 would encode it (CESU-8): invalid UTF-8."""
    return Hostile(shape.text(b"half a pair \xed\xa0\x80 here"))


#: Arabic-Indic and fullwidth digits: digits to Python's str.isdigit, not to a gateway
NON_ASCII_DIGITS = "٣٠٦٩١٢٣٤٥٦٧٨"


def non_ascii_digits(shape: Shape, targets: Targets) -> Hostile:
    """Arabic-Indic digits as the text, fullwidth digits as the recipient (or entry)."""
    items = shape.item(xml("３０６９１２３４５６７８"))
    return Hostile(shape.render(values={shape.text_field: xml(NON_ASCII_DIGITS)}, items=items))


ATTACKS: tuple[Attack, ...] = (
    Attack("billion-laughs", billion_laughs),
    Attack("quadratic-blowup", quadratic_blowup),
    Attack("external-entity-file", external_entity_file),
    Attack("external-entity-http", external_entity_http),
    Attack("external-dtd", external_dtd),
    Attack("external-dtd-file", external_dtd_file),
    Attack("external-dtd-file-utf16", external_dtd_file_utf16),
    Attack("parameter-entity", parameter_entity),
    Attack("parameter-entity-file", parameter_entity_file),
    Attack("internal-entity", internal_entity),
    Attack("harmless-doctype", harmless_doctype),
    Attack("xinclude", xinclude, must_refuse=False),
    Attack("processing-instructions", processing_instructions, must_refuse=False),
    Attack("deep-nesting", deep_nesting),
    Attack("huge-body", huge_body),
    Attack("huge-declared-length", huge_declared_length, http_only=True),
    Attack("declared-length-over-quota", declared_length_over_quota, http_only=True, slow=True),
    Attack("invalid-utf8", invalid_utf8),
    Attack("utf16-bom", utf16_with_bom, must_refuse=False),
    Attack("utf16-no-bom", utf16_without_bom, must_refuse=False),
    Attack("empty-body", empty_body),
    Attack("100k-items", hundred_thousand_items, must_refuse=False),
    Attack("injection-everywhere", injection_everywhere, must_refuse=False),
    Attack("injection-in-fields", injection_in_fields, must_refuse=False),
    Attack("injection-in-text", injection_in_text, must_refuse=False),
    Attack("control-characters", control_characters),
    Attack("control-character-refs", control_character_references),
    Attack("lone-surrogate-ref", lone_surrogate_reference),
    Attack("lone-surrogate-bytes", lone_surrogate_bytes),
    Attack("non-ascii-digits", non_ascii_digits, must_refuse=False),
)
