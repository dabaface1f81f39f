"""smsxml.binding: hardened trees into the generated dataclasses and back, every failure
a BadInput."""

from __future__ import annotations

import pytest

from smsxml import binding, xmlsafe
from smsxml.errors import BadInput
from smsxml.generated.allmysms import Response as AllmysmsAnswer
from smsxml.generated.net2sms import Response

ANSWER = b"<response><status>1</status><remarks>Success &amp; more</remarks></response>"


def test_default_size_quota_refuses_a_huge_answer() -> None:
    """An 11 MiB answer is refused before it is parsed."""
    with pytest.raises(BadInput, match="larger than"):
        binding.from_xml(b"<response>" + b" " * (11 * 1024 * 1024) + b"</response>", Response)


def test_truncated_document_is_not_recovered() -> None:
    """A truncated answer is an error (xsdata's own handler would accept it)."""
    with pytest.raises(BadInput):
        binding.from_xml(b"<response><status>1</status><remarks>Succ", Response)


def test_a_missing_required_element_is_named() -> None:
    """xsdata's raw TypeError for a missing required element becomes BadInput naming it."""
    with pytest.raises(BadInput) as caught:
        binding.from_xml(b"<response>\n<remarks>x</remarks></response>", Response)
    assert caught.value.problems[0].message == "missing required element(s): 'status'"
    assert caught.value.line == 1


def test_an_unknown_element_is_refused() -> None:
    """An element the schema does not have is refused, not silently dropped."""
    with pytest.raises(BadInput, match="Unknown property response:bogus"):
        binding.from_xml(b"<response><status>1</status><bogus/></response>", Response)


@pytest.mark.parametrize(
    ("document", "cls", "fragment"),
    [
        (b"<RESPONSE><status>abc</status><statusText/></RESPONSE>", AllmysmsAnswer, "`int`"),
        (
            b"<response><status>1</status><sms><id>1</id><status>zz</status></sms></response>",
            Response,
            "MessageState",
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_bad_input(document: bytes, cls: type, fragment: str) -> None:
    """A value the field's type cannot hold (a word for an int, an unknown enum) is refused."""
    with pytest.raises(BadInput, match=fragment):
        binding.from_xml(document, cls)


def test_bind_takes_a_tree_parsed_elsewhere() -> None:
    """bind() reads an element already parsed (hardened) by xmlsafe."""
    answer = binding.bind(xmlsafe.parse(ANSWER), Response)
    assert (answer.status, answer.remarks) == ("1", "Success & more")


def test_to_xml_writes_a_declaration_and_indents_when_pretty() -> None:
    """to_xml: UTF-8 with an XML declaration, indented by default, on one line if not."""
    answer = binding.from_xml(ANSWER, Response)
    pretty = binding.to_xml(answer)
    compact = binding.to_xml(answer, pretty=False)
    assert pretty.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<response>\n  <status>')
    assert compact.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert b"<response><status>1</status><remarks>Success &amp; more</remarks></response>" in (
        compact
    )


def test_to_element_and_from_xml_round_trip() -> None:
    """A dataclass as an element, and its XML read back, equal the original."""
    answer = binding.from_xml(ANSWER, Response)
    element = binding.to_element(answer)
    assert (element.tag, element.findtext("remarks")) == ("response", "Success & more")
    assert binding.bind(element, Response) == answer
    assert binding.from_xml(binding.to_xml(answer), Response) == answer


def test_from_xml_applies_the_given_limits() -> None:
    """from_xml passes its quotas to the parser: a tightened one refuses a normal answer."""
    with pytest.raises(BadInput, match="larger than 10 bytes"):
        binding.from_xml(ANSWER, Response, limits=xmlsafe.DEFAULT_LIMITS.tightened(max_bytes=10))
