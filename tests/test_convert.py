"""smsxml.convert: feeds converted between XML and JSON one SMS at a time, written exactly
as the in-memory writers write them, and inspected."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings

from smsxml import feeds
from smsxml.convert import FeedRefused, convert_feed, inspect_feed
from smsxml.errors import BadInput, Problem
from smsxml.generated.allmysms import Data, Recipient

from .strategies import allmysms_feeds

INVALID = (
    "<DATA>\n<MESSAGE>Hi</MESSAGE>\n<SMS><MOBILEPHONE>301234567890</MOBILEPHONE></SMS>\n"
    "<SMS><MOBILEPHONE>301234567891</MOBILEPHONE></SMS>\n</DATA>\n"
)


def _converted(path: Path, target: str) -> str:
    out = io.StringIO()
    convert_feed(path, target, out)
    return out.getvalue()


@settings(max_examples=40, deadline=None)
@given(allmysms_feeds())
def test_streamed_conversion_writes_what_the_in_memory_writers_write(feed: Data) -> None:
    """XML → JSON gives feed_to_json's document and JSON → XML feed_to_xml's, byte for byte."""
    with tempfile.TemporaryDirectory() as folder:
        as_xml, as_json = Path(folder) / "feed.xml", Path(folder) / "feed.json"
        as_xml.write_bytes(feeds.feed_to_xml(feed))
        as_json.write_text(feeds.feed_to_json(feed), encoding="utf-8")
        assert _converted(as_xml, "json") == feeds.feed_to_json(feed) + "\n"
        assert _converted(as_json, "xml").encode() == feeds.feed_to_xml(feed)


def test_carriage_returns_and_markup_survive_the_round_trip(tmp_path: Path) -> None:
    """A carriage return (escaped: XML reads it as a line feed), & and < survive the round trip."""
    feed = Data(
        message="Hi #param_1# &\r<x>",
        dynamic=1,
        sms=[Recipient(mobilephone="33612345678", param_1="Ann\r\nB")],
    )
    as_xml, as_json = tmp_path / "feed.xml", tmp_path / "feed.json"
    as_xml.write_bytes(feeds.feed_to_xml(feed))
    as_json.write_text(_converted(as_xml, "json"), encoding="utf-8")
    back = _converted(as_json, "xml").encode()
    assert "&#13;" in back.decode() and feeds.feed_from_xml(back) == feed


@pytest.mark.parametrize("syntax", ["xml", "json"])
def test_an_invalid_feed_is_refused_and_nothing_written(tmp_path: Path, syntax: str) -> None:
    """An invalid feed raises FeedRefused with its report; not a byte is written."""
    path = tmp_path / f"bad.{syntax}"
    if syntax == "xml":
        path.write_text(INVALID, encoding="utf-8")
    else:
        path.write_text(feeds.feed_to_json(feeds.feed_from_xml(INVALID.encode(), check=False)))
    out = io.StringIO()
    with pytest.raises(FeedRefused) as caught:
        convert_feed(path, "json" if syntax == "xml" else "xml", out)
    assert out.getvalue() == ""
    assert caught.value.report.count == 2 and len(caught.value.problems) == 2
    assert "301234567890 is not a valid phone number" in str(caught.value)


def test_streamed_problems_leave_through_emit(tmp_path: Path) -> None:
    """With emit, problems stream out up to the limit; FeedRefused (BadInput) still counts all."""
    path = tmp_path / "bad.xml"
    path.write_text(INVALID, encoding="utf-8")
    shown: list[Problem] = []
    with pytest.raises(BadInput) as caught:
        convert_feed(path, "json", io.StringIO(), emit=shown.append, limit=1)
    assert isinstance(caught.value, FeedRefused)
    assert [p.line for p in shown] == [3]
    assert (caught.value.report.count, caught.value.report.problems) == (2, [])
    assert str(caught.value) == "2 problem(s)"


def test_only_feeds_convert_and_inspect(tmp_path: Path) -> None:
    """An answer document is not a feed: convert and inspect both refuse it, naming it."""
    path = tmp_path / "answer.xml"
    path.write_text("<response><status>1</status><remarks/></response>", encoding="utf-8")
    for call in (lambda: convert_feed(path, "json", io.StringIO()), lambda: inspect_feed(path)):
        with pytest.raises(BadInput, match="only allmysms feeds convert; this is a net2sms"):
            call()


def test_inspect_says_the_same_of_xml_and_json(tmp_path: Path) -> None:
    """inspect counts recipients, encodings and parts alike for a feed and its JSON twin."""
    feed = Data(
        message="Hello #param_1#",
        dynamic=1,
        sms=[
            Recipient(mobilephone="33612345678", param_1="Ann"),
            Recipient(mobilephone="306912345678", param_1="Νίκος"),
            Recipient(mobilephone="33612345679", param_1="x" * 160),
        ],
    )
    as_xml, as_json = tmp_path / "feed.xml", tmp_path / "feed.json"
    as_xml.write_bytes(feeds.feed_to_xml(feed))
    as_json.write_text(feeds.feed_to_json(feed), encoding="utf-8")
    rows: list[tuple[str, str, int]] = []
    summary = inspect_feed(as_json, each=lambda *row: rows.append(row))
    assert rows == [
        ("33612345678", "GSM", 1),
        ("306912345678", "UCS-2", 1),
        ("33612345679", "GSM", 2),
    ]
    assert (summary.recipients, summary.total_parts) == (3, 4)
    assert summary.encodings == {"GSM": 2, "UCS-2": 1}
    assert inspect_feed(as_xml) == summary
