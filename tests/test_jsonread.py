"""smsxml.jsonread: a JSON feed's header, then its recipients one at a time, as the text
XML would hold."""

from __future__ import annotations

import json
from pathlib import Path

import ijson
import pytest

from smsxml.errors import BadInput
from smsxml.jsonfeed import validate_json_feed
from smsxml.jsonread import (
    BACKEND,
    ROOT_EXPECTED,
    Header,
    inspect_json_recipients,
    json_feed_parts,
    read_header,
    text_of,
)


def _sms(number: str, *params: str) -> str:
    fields = {"MOBILEPHONE": number} | {f"PARAM_{i}": p for i, p in enumerate(params, 1)}
    return json.dumps(fields, ensure_ascii=False)


def _write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "feed.json"
    path.write_text(text, encoding=encoding)
    return path


def test_the_c_backend_parses() -> None:
    """ijson runs on yajl in C here (the wheels carry it): the speed the bench measures."""
    assert BACKEND == "yajl2_c" == ijson.backend


def test_keys_after_sms_are_read(tmp_path: Path) -> None:
    """A header key written after the SMS array still counts for the rules (DYNAMIC here)."""
    path = tmp_path / "late.json"
    path.write_text(
        f'{{"DATA": {{"MESSAGE": "Hi #param_1#", "SMS": [{_sms("33612345678", "A")}], '
        '"DYNAMIC": "1"}}',
        encoding="utf-8",
    )
    assert read_header(path).values == {"MESSAGE": "Hi #param_1#", "DYNAMIC": "1"}
    assert validate_json_feed(path).problems == []


@pytest.mark.parametrize(
    ("value", "text"), [(None, ""), (True, "1"), (False, "0"), (3, "3"), (1.5, "1.5"), ("x", "x")]
)
def test_text_of_gives_the_xml_text_of_a_json_scalar(value: object, text: str) -> None:
    """null is empty, booleans are 1 and 0 (xs:boolean), numbers as written."""
    assert text_of(value) == text


def test_parts_come_in_schema_order_as_text(tmp_path: Path) -> None:
    """Header and SMS keys come out in schema order (unknown keys last), values as XML text."""
    path = _write(
        tmp_path,
        '{"DATA": {"TPOA": "Shop", "ZZZ": 1, "MESSAGE": "Hi #param_1#", "DYNAMIC": 1, "SMS": ['
        '{"PARAM_1": true, "MOBILEPHONE": 33612345678}, {"MOBILEPHONE": "33612345679"}]}}',
    )
    header, recipients = json_feed_parts(path)
    assert list(header.items()) == [
        ("MESSAGE", "Hi #param_1#"),
        ("DYNAMIC", "1"),
        ("TPOA", "Shop"),
        ("ZZZ", "1"),
    ]
    assert [list(sms.items()) for sms in recipients] == [
        [("MOBILEPHONE", "33612345678"), ("PARAM_1", "1")],
        [("MOBILEPHONE", "33612345679")],
    ]


def test_recipients_are_read_one_at_a_time(tmp_path: Path) -> None:
    """The first recipient comes out before a broken one after it is read."""
    broken = '{"MOBILEPHONE": }, ' + _sms("33612345679")
    path = _write(
        tmp_path, f'{{"DATA": {{"MESSAGE": "Hi", "SMS": [{_sms("33612345678")}, {broken}]}}}}'
    )
    _header, recipients = json_feed_parts(path)
    assert next(recipients) == {"MOBILEPHONE": "33612345678"}
    with pytest.raises(BadInput, match="invalid JSON"):
        next(recipients)


def test_inspect_renders_each_recipients_message(tmp_path: Path) -> None:
    """inspect_json_recipients: each MOBILEPHONE with its message after substitution."""
    path = _write(
        tmp_path,
        '{"DATA": {"MESSAGE": "Hi #param_1#", "DYNAMIC": "1", "SMS": ['
        + ", ".join([_sms("33612345678", "Ann"), '{"MOBILEPHONE": "33612345679"}'])
        + "]}}",
    )
    assert list(inspect_json_recipients(path)) == [
        ("33612345678", "Hi Ann"),
        ("33612345679", "Hi "),
    ]


def test_one_sms_object_and_a_bom_are_read(tmp_path: Path) -> None:
    """SMS holding one object rather than a list, behind a BOM, is one recipient."""
    path = _write(tmp_path, '{"DATA": {"SMS": {"MOBILEPHONE": "1"}}}', encoding="utf-8-sig")
    header = read_header(path)
    assert (header.values, header.sms) == ({}, "DATA.SMS")
    assert list(json_feed_parts(path)[1]) == [{"MOBILEPHONE": "1"}]


@pytest.mark.parametrize(
    "text", ["[1]", '{"DATA": 1}', '{"X": {}}', '{"DATA": {}, "MORE": 1}', "{}", '"DATA"']
)
def test_anything_but_one_data_object_is_refused(tmp_path: Path, text: str) -> None:
    """The root must be {"DATA": {...}} and nothing else, refused at 1:1 otherwise."""
    with pytest.raises(BadInput) as caught:
        read_header(_write(tmp_path, text))
    assert caught.value.problems[0].message == ROOT_EXPECTED
    assert (caught.value.line, caught.value.column) == (1, 1)


def test_an_sms_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    """A number in the SMS list is bad input when the recipients are read."""
    with pytest.raises(BadInput, match="an SMS is not an object"):
        list(json_feed_parts(_write(tmp_path, '{"DATA": {"SMS": [1]}}'))[1])


def test_a_syntax_error_in_the_header_is_placed(tmp_path: Path) -> None:
    """A broken header is BadInput at the line and column where the parser stopped."""
    path = _write(tmp_path, '{"DATA": {"MESSAGE": "x",\n "TPOA": }}')
    with pytest.raises(BadInput) as caught:
        read_header(path)
    assert (caught.value.line, caught.value.column) == (2, 10)
    assert caught.value.problems[0].message.startswith("invalid JSON: parse error")


def test_header_elements_split_known_and_unknown() -> None:
    """Header.elements: schema fields in schema order, then the rest, one element per list item."""
    header = Header({"UNKNOWN": "x", "TPOA": "S", "MESSAGE": "Hi", "DYNAMIC": 2, "X": [1, 2]})
    known, unknown = header.elements()
    assert [(e.tag, e.text) for e in known] == [("MESSAGE", "Hi"), ("DYNAMIC", "2"), ("TPOA", "S")]
    assert [(e.tag, e.text) for e in unknown] == [("UNKNOWN", "x"), ("X", "1"), ("X", "2")]
    assert header.text("DYNAMIC") == "2" and header.text("MISSING") == ""
