"""Every example in the vendor pages parses into the generated classes and round-trips,
and each schema rejects what it must, at the right line."""

from __future__ import annotations

import json
import re

import pytest

from smsxml import binding, feeds, xmlsafe
from smsxml.errors import BadInput
from smsxml.generated.allmysms import Response as AllmysmsAnswer
from smsxml.generated.net2sms import Response as Net2smsAnswer
from smsxml.generated.smspartner import Result

from .conftest import SEEDS


def _seed(name: str) -> str:
    path = SEEDS / name
    if not path.exists():
        pytest.skip(f"vendor pages not found at {SEEDS} (shared/ sits beside the clone in CI)")
    return path.read_text(encoding="utf-8")


def _allmysms_xml_samples() -> list[str]:
    """The literal <DATA> feeds of the vendor's code samples (C#, .NET, Perl, Ruby, VB),
    not those built by string concatenation."""
    text = _seed("allmysms-http-api-v9.fr.txt")
    return [s for s in re.findall(r"<DATA><MESSAGE>.*?</DATA>", text) if '"' not in s]


def test_allmysms_code_sample_feeds_are_valid_and_round_trip() -> None:
    """The feeds in the vendor's code samples validate, bind and round-trip XML⇄JSON."""
    samples = _allmysms_xml_samples()
    assert len(samples) >= 5
    for sample in samples:
        feed = feeds.feed_from_xml(sample.encode())
        assert feed.sms[0].mobilephone == "33612345678"
        assert feeds.feed_from_xml(feeds.feed_to_xml(feed)) == feed
        assert feeds.feed_from_json(feeds.feed_to_json(feed)) == feed


def test_allmysms_documented_xml_example_round_trips() -> None:
    """The vendor's annotated XML example, its annotations removed, binds and round-trips."""
    text = _seed("allmysms-http-api-v9.fr.txt")
    example = text[text.index("EXEMPLE DE FLUX XML") :].split("\n", 1)[1].split("\n")[0]
    # The page interleaves prose in parentheses with the tags: keep only the markup.
    cleaned = re.sub(r"\s*\([^()]*\)\s*", "", example)
    cleaned = re.sub(r"(<DATE>)date différée facultative ex\.: ", r"\1", cleaned)
    cleaned = re.sub(r"\s+</", "</", cleaned)
    cleaned = re.sub(r"<TPOA>[^<]*</TPOA>", "<TPOA>Emetteur</TPOA>", cleaned)
    cleaned = cleaned.replace(
        "<MESSAGE><![CDATA[Votre message]]>",
        "<MESSAGE><![CDATA[Votre message #param_1# #param_2#]]>",
    )
    feed = feeds.feed_from_xml(cleaned.encode())
    assert feed.dynamic == 2 and feed.date == "2011-11-05 15:10:00"
    assert [s.param_2 for s in feed.sms] == ["Parametre 2", "Parametre 2"]
    assert feeds.feed_from_json(feeds.feed_to_json(feed)) == feed


def test_allmysms_documented_json_example_binds_and_round_trips() -> None:
    """The vendor's JSON example binds as is, round-trips, and its two flaws are reported."""
    text = _seed("allmysms-http-api-v9.fr.txt")
    start = text.index("{", text.index("EXEMPLE DE FLUX JSON"))
    example = text[start:].strip()
    assert json.loads(example)["DATA"]["DYNAMIC"] == "2"
    feed = feeds.feed_from_json(example, check=False)
    assert feed.campaign_name == "Nom de la campagne" and len(feed.sms) == 2
    assert feeds.feed_from_json(feeds.feed_to_json(feed), check=False) == feed
    assert feeds.feed_from_xml(feeds.feed_to_xml(feed), check=False) == feed
    with pytest.raises(BadInput) as caught:
        feeds.feed_from_json(example)
    messages = [p.message for p in caught.value.problems]
    assert any("TPOA" in m for m in messages)  # "Nom de l’émetteur" is no sender id
    assert any("DYNAMIC is 2 but MESSAGE has 0" in m for m in messages)


def test_net2sms_xml_examples_bind_and_round_trip() -> None:
    """Every <response> of the net2sms page is schema-valid, binds and round-trips."""
    text = _seed("net2sms-api-v2.fr.txt")
    samples = re.findall(r"<response>.*?</response>", text, flags=re.DOTALL)
    assert len(samples) >= 5
    schema = xmlsafe.load_schema("net2sms/response.xsd")
    for sample in samples:
        root = xmlsafe.parse(sample)
        assert xmlsafe.schema_problems(schema, root) == []
        answer = binding.bind(root, Net2smsAnswer)
        assert answer.status == "1"
        assert binding.from_xml(binding.to_xml(answer), Net2smsAnswer) == answer
    status = binding.from_xml(samples[-1], Net2smsAnswer)
    assert [(s.id, s.status.value) for s in status.sms] == [
        ("1231223122", "d"),
        ("1234561232", "f"),
    ]


def test_smspartner_xml_example_binds_positionally() -> None:
    """SMS Partner's positional answer binds to six entries, CDATA and blanks included."""
    text = _seed("smspartner-vn-send.fr.txt")
    sample = re.search(r"<\?xml.*?</result>", text, flags=re.DOTALL)
    assert sample is not None
    result = binding.from_xml(sample.group(0).encode(), Result)
    assert [e.content for e in result.entry] == [
        *(["true"], ["200"], ["xxx"], ["1"], ["xxx"], [" EUR "])
    ]
    assert binding.from_xml(binding.to_xml(result), Result) == result


def test_allmysms_answer_schema_binds_the_documented_fields() -> None:
    """The sendSms answer carries status, statusText and the per-recipient smsIds."""
    document = b"""<RESPONSE><status>100</status>
    <statusText>Your messages have been sent</statusText>
    <invalidNumbers></invalidNumbers><campaignId>abc</campaignId><credits>340</credits>
    <creditsUsed>15</creditsUsed><nbContacts>1</nbContacts><nbSms>1</nbSms>
    <smsIds><SMS><phoneNumber>33612345678</phoneNumber><smsId>330792bd</smsId></SMS></smsIds>
    </RESPONSE>"""
    answer = binding.from_xml(document, AllmysmsAnswer)
    assert answer.status == 100 and answer.sms_ids.sms[0].sms_id == "330792bd"
    assert binding.from_xml(binding.to_xml(answer), AllmysmsAnswer) == answer


FEED_HEAD = "<DATA>\n<MESSAGE>Hello</MESSAGE>\n"
ONE_SMS = "<SMS><MOBILEPHONE>33612345678</MOBILEPHONE></SMS>\n"

INVALID = [
    # (schema, document, line, fragment of the message)
    ("allmysms/feed.xsd", "<DATA>\n<MESSAGE></MESSAGE>\n" + ONE_SMS + "</DATA>", 2, "MESSAGE"),
    ("allmysms/feed.xsd", f"<DATA>\n<MESSAGE>{'x' * 641}</MESSAGE>\n{ONE_SMS}</DATA>", 2, "length"),
    ("allmysms/feed.xsd", FEED_HEAD + "<TPOA>1abc</TPOA>\n" + ONE_SMS + "</DATA>", 3, "TPOA"),
    ("allmysms/feed.xsd", FEED_HEAD + "<TPOA>ab</TPOA>\n" + ONE_SMS + "</DATA>", 3, "TPOA"),
    ("allmysms/feed.xsd", FEED_HEAD + "<TPOA>12</TPOA>\n" + ONE_SMS + "</DATA>", 3, "TPOA"),
    (
        "allmysms/feed.xsd",
        FEED_HEAD + "<TPOA>12345678901234567</TPOA>\n" + ONE_SMS + "</DATA>",
        3,
        "TPOA",
    ),
    ("allmysms/feed.xsd", FEED_HEAD + "<TPOA>+33612345</TPOA>\n" + ONE_SMS + "</DATA>", 3, "TPOA"),
    (
        "allmysms/feed.xsd",
        FEED_HEAD + "<TPOA>Twelve12chars</TPOA>\n" + ONE_SMS + "</DATA>",
        3,
        "TPOA",
    ),
    (
        "allmysms/feed.xsd",
        FEED_HEAD + "<DATE>2011-11-05 25:10:00</DATE>\n" + ONE_SMS + "</DATA>",
        3,
        "DATE",
    ),
    ("allmysms/feed.xsd", FEED_HEAD + "<DATE>05/11/2011</DATE>\n" + ONE_SMS + "</DATA>", 3, "DATE"),
    (
        "allmysms/feed.xsd",
        FEED_HEAD + "<DYNAMIC>-1</DYNAMIC>\n" + ONE_SMS + "</DATA>",
        3,
        "DYNAMIC",
    ),
    ("allmysms/feed.xsd", FEED_HEAD + "<FLASH>yes</FLASH>\n" + ONE_SMS + "</DATA>", 3, "FLASH"),
    (
        "allmysms/feed.xsd",
        FEED_HEAD + "<SMS>\n<MOBILEPHONE>+33612345678</MOBILEPHONE></SMS>\n</DATA>",
        4,
        "MOBILEPHONE",
    ),
    (
        "allmysms/feed.xsd",
        FEED_HEAD + "<SMS>\n<MOBILEPHONE>0612345678</MOBILEPHONE></SMS>\n</DATA>",
        4,
        "MOBILEPHONE",
    ),
    ("allmysms/feed.xsd", FEED_HEAD + "<SMS>\n<PARAM_1>x</PARAM_1></SMS>\n</DATA>", 4, "PARAM_1"),
    ("allmysms/feed.xsd", FEED_HEAD + "</DATA>", 1, "SMS"),  # a missing child: the parent's line
    ("allmysms/feed.xsd", FEED_HEAD + ONE_SMS + "<TPOA>Late</TPOA>\n</DATA>", 4, "TPOA"),
    (
        "allmysms/feed.xsd",
        FEED_HEAD
        + "<SMS><MOBILEPHONE>33612345678</MOBILEPHONE>\n<PARAM_21>x</PARAM_21></SMS>\n</DATA>",
        4,
        "PARAM_21",
    ),
    ("net2sms/response.xsd", "<response>\n<remarks>Success</remarks>\n</response>", 2, "remarks"),
    (
        "net2sms/response.xsd",
        "<response><status>1</status>\n<remarks/>\n<sms><id>1</id><status>x</status></sms>\n</response>",
        3,
        "status",
    ),
    (
        "net2sms/response.xsd",
        "<response><status>1</status>\n<total>two</total><remarks/></response>",
        2,
        "total",
    ),
    ("allmysms/answer.xsd", "<RESPONSE>\n<status>42</status><statusText/></RESPONSE>", 2, "status"),
    ("allmysms/answer.xsd", "<RESPONSE><status>100</status>\n</RESPONSE>", 1, "statusText"),
    ("smspartner/result.xsd", "<result>\n<value>1</value></result>", 2, "value"),
    ("smspartner/result.xsd", "<result><entry>\n<value>1</value></entry></result>", 2, "value"),
]


@pytest.mark.parametrize("tpoa", ["Abc", "Abcdefghijk", "123", "33612345678", "1234567890123456"])
def test_allmysms_tpoa_takes_names_and_numbers_at_their_limits(tpoa: str) -> None:
    """TPOA: a name of 3-11 letters and digits opening with a letter, or 3-16 digits."""
    document = FEED_HEAD + f"<TPOA>{tpoa}</TPOA>\n" + ONE_SMS + "</DATA>"
    schema = xmlsafe.load_schema("allmysms/feed.xsd")
    assert xmlsafe.schema_problems(schema, xmlsafe.parse(document)) == []


def test_smspartner_schema_takes_nested_entries() -> None:
    """A code-9 answer's errors list, an <entry> of [elementId, message] entries with
    blanks between them, is valid and binds level by level."""
    document = (
        "<result><entry>false</entry><entry>9</entry><entry>\n <entry>"
        "<entry>children[to].data</entry><entry><![CDATA[Numéro invalide]]></entry>"
        "</entry>\n</entry></result>"
    )
    root = xmlsafe.parse(document)
    assert xmlsafe.schema_problems(xmlsafe.load_schema("smspartner/result.xsd"), root) == []
    errors = binding.bind(root, Result).entry[2]
    (problem,) = [part for part in errors.content if not isinstance(part, str)]
    assert [e.content for e in problem.content] == [["children[to].data"], ["Numéro invalide"]]


@pytest.mark.parametrize(("schema", "document", "line", "fragment"), INVALID)
def test_schema_rejects_with_the_line(schema: str, document: str, line: int, fragment: str) -> None:
    """Each invalid document is rejected by its schema, at the line of the fault."""
    root = xmlsafe.parse(document)
    problems = xmlsafe.schema_problems(xmlsafe.load_schema(schema), root)
    assert problems, document
    assert problems[0].line == line
    assert fragment in problems[0].message


def test_isms_schema_requires_every_documented_element() -> None:
    """send without a recipient list, or with an unknown coding, is not schema-valid."""
    schema = xmlsafe.load_schema("isms/sms.xsd")
    ns = 'xmlns:t="http://smsxml.org/isms/1"'
    valid = (
        f"<t:send {ns}><username>u</username><password>p</password><from>Shop</from>"
        "<to><recipients>306912345678</recipients></to><message>hi</message>"
        "<coding>GSM</coding><flash>false</flash></t:send>"
    )
    assert xmlsafe.schema_problems(schema, xmlsafe.parse(valid)) == []
    for broken in (
        valid.replace("<to><recipients>306912345678</recipients></to>", "<to/>"),
        valid.replace("<coding>GSM</coding>", "<coding>latin1</coding>"),
        valid.replace("<flash>false</flash>", "<flash>maybe</flash>"),
        valid.replace("<username>u</username>", ""),
    ):
        assert xmlsafe.schema_problems(schema, xmlsafe.parse(broken)), broken
