"""smsxml.jsonplaces: the line and column of a JSON feed's objects, found on demand."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from smsxml import feeds
from smsxml.jsonplaces import JsonPlaces, count_chars

from .strategies import json_feed_documents


@settings(max_examples=80, deadline=None)
@given(json_feed_documents(), st.sampled_from([1, 5, 64, 1 << 20]))
def test_json_places_match_the_in_memory_positions(text: str, chunk: int) -> None:
    """JsonPlaces finds every SMS object, and DATA's, where json.loads found it, whatever
    the chunk size, asked in order and then out of order."""
    import tempfile

    document = feeds._positioned_loads(text)  # the in-memory path's own positions
    lines = feeds._Lines(text)
    data = document["DATA"]
    expected = [lines(data.offset)] + [
        lines(sms.offset) if isinstance(sms, dict) else None for sms in data["SMS"]
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "feed.json"
        path.write_text(text, encoding="utf-8")
        places = JsonPlaces(path)
        places.CHUNK, places.EVERY = chunk, 2
        # json.loads gives no offset to a string or a number: they only count
        objects = [n for n, place in enumerate(expected) if place is not None]
        assert [places(n) for n in objects] == [expected[n] for n in objects]
        assert [places(n) for n in reversed(objects)] == [expected[n] for n in reversed(objects)]


def test_count_chars_counts_characters_not_bytes() -> None:
    """count_chars counts characters; split anywhere, the two pieces add up to the whole."""
    greek = "Γειά σου 😀".encode()
    assert count_chars(greek) == 10 and len(greek) == 20
    for cut in range(len(greek) + 1):
        assert count_chars(greek[:cut]) + count_chars(greek[cut:]) == 10, cut


def _places(tmp_path: Path, text: str, encoding: str = "utf-8") -> JsonPlaces:
    path = tmp_path / "feed.json"
    path.write_text(text, encoding=encoding)
    return JsonPlaces(path)


def test_ordinal_zero_is_data_and_the_rest_are_sms_objects(tmp_path: Path) -> None:
    """0 is DATA's object; n the nth SMS, found on its line; line() gives the line alone."""
    places = _places(
        tmp_path,
        '{"DATA": {\n  "MESSAGE": "Hi",\n  "SMS": [\n    {"MOBILEPHONE": "1"},\n'
        '    {"MOBILEPHONE": "2"}, {"MOBILEPHONE": "3"}]}}',
    )
    assert [places(n) for n in range(4)] == [(1, 10), (4, 5), (5, 5), (5, 27)]
    assert places.line(2) == 5
    places.close()


def test_a_bom_is_not_counted_and_columns_are_characters(tmp_path: Path) -> None:
    """A BOM takes no column, and each Greek letter before an object takes one."""
    places = _places(tmp_path, '{"DATA": {"MESSAGE": "Γειά", "SMS": [{"MOBILEPHONE": "1"}]}}',
                     encoding="utf-8-sig")  # fmt: skip
    assert places(0) == (1, 10) and places(1) == (1, 38)


def test_an_object_past_the_end_is_placed_at_the_start(tmp_path: Path) -> None:
    """Asking for an SMS the feed does not have answers 1:1, and later asks still work."""
    places = _places(tmp_path, '{"DATA": {"SMS": [{"MOBILEPHONE": "1"}]}}')
    assert places(5) == (1, 1)
    assert places(1) == (1, 19)
