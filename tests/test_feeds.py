"""allmysms feeds in memory: XML ⇄ JSON ⇄ generated classes, and the rules beyond XSD."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings

from smsxml import feeds
from smsxml.errors import BadInput
from smsxml.generated.allmysms import Data

from .strategies import allmysms_feeds


def _feed(
    message: str, *recipients: tuple[str, ...], dynamic: int | None = None, **header: str
) -> str:
    sms = "".join(
        "<SMS><MOBILEPHONE>{}</MOBILEPHONE>{}</SMS>\n".format(
            number, "".join(f"<PARAM_{i}>{v}</PARAM_{i}>" for i, v in enumerate(params, 1))
        )
        for number, *params in recipients
    )
    head = f"<DYNAMIC>{dynamic}</DYNAMIC>\n" if dynamic is not None else ""
    head += "".join(f"<{k}>{v}</{k}>\n" for k, v in header.items())
    return f"<DATA>\n<MESSAGE>{message}</MESSAGE>\n{head}{sms}</DATA>\n"


def _problems(xml: str) -> list[tuple[int, str]]:
    with pytest.raises(BadInput) as caught:
        feeds.feed_from_xml(xml.encode())
    return [(p.line, p.message) for p in caught.value.problems]


def test_a_valid_personalised_feed_binds() -> None:
    """A feed whose DYNAMIC, placeholders and PARAMs agree binds to the generated class."""
    feed = feeds.feed_from_xml(
        _feed("Hi #param_1#, code #param_2#", ("33612345678", "Ann", "42"), dynamic=2).encode()
    )
    assert feed.dynamic == 2 and feed.sms[0].param_2 == "42"


def test_dynamic_must_match_the_placeholders() -> None:
    """DYNAMIC differing from the number of distinct placeholders is reported at DYNAMIC."""
    problems = _problems(_feed("Hi #param_1# #param_1#", ("33612345678", "A", "B"), dynamic=2))
    assert (3, "DYNAMIC is 2 but MESSAGE has 1 distinct placeholder(s) #param_n#") in problems


def test_placeholders_without_dynamic_are_reported() -> None:
    """A MESSAGE with placeholders but no DYNAMIC is reported at MESSAGE."""
    problems = _problems(_feed("Hi #param_1#", ("33612345678", "A")))
    assert problems[0] == (2, "MESSAGE has 1 placeholder(s) #param_n# but no DYNAMIC")


def test_placeholders_must_have_no_gaps() -> None:
    """#param_1# and #param_3# with DYNAMIC 2 is a gap, reported."""
    problems = _problems(_feed("#param_1# #param_3#", ("33612345678", "A", "B"), dynamic=2))
    assert any("without gaps" in m for _, m in problems)


def test_every_sms_carries_exactly_the_params() -> None:
    """An SMS with too few PARAMs is reported at its own line."""
    problems = _problems(
        _feed("#param_1# #param_2#", ("33612345678", "A", "B"), ("33612345679", "A"), dynamic=2)
    )
    assert (5, "SMS must carry PARAM_1, PARAM_2 (DYNAMIC), found PARAM_1") in problems


def test_invalid_numbers_are_reported_per_line() -> None:
    """A well-shaped but impossible number (Greek 1xx…) is reported at its line."""
    problems = _problems(_feed("Hi", ("33612345678",), ("301234567890",)))
    assert problems == [(4, "MOBILEPHONE 301234567890 is not a valid phone number")]


def test_dates_must_exist() -> None:
    """30 February passes the pattern but is reported as no real date."""
    problems = _problems(_feed("Hi", ("33612345678",), DATE="2026-02-30 10:00:00"))
    assert problems == [(3, "DATE '2026-02-30 10:00:00' is not a real date")]


def test_duplicates_are_reported_with_the_first_line() -> None:
    """A recipient listed twice is reported at the second line, naming the first."""
    problems = _problems(_feed("Hi", ("33612345678",), ("33612345679",), ("33612345678",)))
    assert problems == [(5, "duplicate recipient 33612345678 (first listed on line 3)")]


def test_substituted_length_is_limited_per_recipient() -> None:
    """A recipient whose substituted message passes 640 characters is reported."""
    long = "x" * 600
    problems = _problems(
        _feed("#param_1# #param_1#", ("33612345678", "short"), ("33612345679", long), dynamic=1)
    )
    assert problems == [
        (5, "the message for 33612345679 is 1201 characters after substitution (at most 640)")
    ]


def test_json_key_order_does_not_matter() -> None:
    """JSON objects have no order: keys in any order give the same feed."""
    a = '{"DATA": {"MESSAGE": "Hi", "TPOA": "Shop", "SMS": [{"MOBILEPHONE": "33612345678"}]}}'
    b = '{"DATA": {"SMS": [{"MOBILEPHONE": "33612345678"}], "TPOA": "Shop", "MESSAGE": "Hi"}}'
    assert feeds.feed_from_json(a) == feeds.feed_from_json(b)


def test_json_problems_point_at_the_sms_object() -> None:
    """A problem in the third SMS of a minified JSON feed names the column of that object."""
    text = json.dumps(
        {
            "DATA": {
                "MESSAGE": "Hi",
                "SMS": [
                    {"MOBILEPHONE": "33612345678"},
                    {"MOBILEPHONE": "33612345679"},
                    {"MOBILEPHONE": "x1"},
                ],
            }
        }
    )
    with pytest.raises(BadInput) as caught:
        feeds.feed_from_json(text)
    problem = caught.value.problems[0]
    assert problem.line == 1 and text[problem.column - 1 :].startswith('{"MOBILEPHONE": "x1"}')


def test_invalid_json_reports_line_and_column() -> None:
    """A JSON syntax error keeps the decoder's line and column."""
    with pytest.raises(BadInput) as caught:
        feeds.feed_from_json('{"DATA": {\n  "MESSAGE": "Hi",\n  "SMS": [}\n}')
    assert (caught.value.line, caught.value.column) == (3, 11)


@settings(max_examples=60, deadline=None)
@given(allmysms_feeds())
def test_xml_json_round_trip_keeps_everything(feed: Data) -> None:
    """Any valid feed survives XML → JSON → XML and JSON → XML → JSON unchanged."""
    xml = feeds.feed_to_xml(feed)
    from_xml = feeds.feed_from_xml(xml)
    assert from_xml == feed
    text = feeds.feed_to_json(from_xml)
    assert feeds.feed_from_json(text) == feed
    assert feeds.feed_to_xml(feeds.feed_from_json(text)) == xml
