"""smsxml.feedrules: the rules of an allmysms feed that XSD cannot say, and the duplicate
finder that works in bounded memory."""

from __future__ import annotations

from array import array

import pytest

from smsxml.errors import Problem
from smsxml.feedrules import MAX_MESSAGE_LENGTH, DuplicateFinder, FeedRules, render


def test_render_substitutes_each_placeholder() -> None:
    """render() replaces every #param_n# with PARAM_n, repeats included."""
    assert render("#param_1#-#param_2#-#param_1#", ["a", "b"]) == "a-b-a"


def test_duplicate_finder_spills_to_disk_and_stays_exact() -> None:
    """Past its in-memory chunk the finder still finds every duplicate, and no false one."""
    finder = DuplicateFinder(bits=1 << 12)  # tiny bitmap: many false candidates to sift
    numbers = [33612000000 + i for i in range(200_000)]
    for line, number in enumerate(numbers, 1):
        finder.add(number, line)
    finder.add(33612000007, 200_001)
    finder.add(33612199999, 200_002)
    found = finder.problems()
    assert [(p.line, p.message.split()[2]) for p in found] == [
        (200_001, "33612000007"),
        (200_002, "33612199999"),
    ]


def test_duplicates_name_the_first_listing_through_line_of() -> None:
    """A JSON feed stores ordinals: line_of turns the first listing's into its line."""
    finder = DuplicateFinder(bits=1 << 10)
    for ordinal, number in enumerate([33612345678, 33612345679, 33612345678], 1):
        finder.add(number, ordinal)
    (problem,) = finder.iter_problems(line_of=lambda ordinal: ordinal * 10)
    assert problem.line == 3 and problem.message.endswith("(first listed on line 10)")


def test_render_leaves_unknown_placeholders_and_blanks_missing_values() -> None:
    """A placeholder past the PARAMs given stays as written; a missing PARAM is empty."""
    assert render("#param_1#|#param_2#|#param_3#", ["a", None]) == "a||#param_3#"


def test_header_problems_are_placed_where_the_caller_says() -> None:
    """DYNAMIC against the placeholders, and DATE, are reported at the places given."""
    where = {"MESSAGE": (2, 3), "DYNAMIC": (3, 3), "DATE": (4, 3)}
    rules = FeedRules("Hi #param_1#", 2, "2026-02-30 10:00:00", where=where)
    assert [(p.line, p.column, p.tag) for p in rules.problems] == [
        (3, 3, "DYNAMIC"),
        (4, 3, "DATE"),
    ]


def test_a_sink_gets_problems_as_they_are_found() -> None:
    """With a sink nothing is kept: each problem goes out when it is found."""
    sent: list[Problem] = []
    rules = FeedRules("Hi #param_1#", None, sink=sent.append)
    assert [p.message for p in sent] == ["MESSAGE has 1 placeholder(s) #param_n# but no DYNAMIC"]
    rules.check((5, 1), "301234567890", ["PARAM_1"], ["x"])
    assert len(sent) == 3 and rules.problems == []


@pytest.mark.parametrize(("extra", "reported"), [(0, False), (1, True)])
def test_the_substituted_length_limit_is_inclusive(extra: int, reported: bool) -> None:
    """A message of exactly 640 characters after substitution passes; 641 is reported."""
    rules = FeedRules("#param_1##param_1#", 1)
    value = "x" * (MAX_MESSAGE_LENGTH // 2)
    rules.check((3, 1), "33612345678", ["PARAM_1"], [value + "y" * extra])
    expected = f"is {MAX_MESSAGE_LENGTH + 2 * extra} characters after substitution"
    assert any(expected in p.message for p in rules.problems) is reported


def test_a_bad_number_is_placed_at_its_own_element() -> None:
    """An impossible MOBILEPHONE is placed at mobile_where; malformed ones are the schema's."""
    rules = FeedRules("Hi", None)
    rules.check((7, 3), "301234567890", [], [], mobile_where=(7, 8))
    for malformed in ("0612345678", "33x612345678", "", None):
        rules.check((8, 3), malformed, [], [])
    assert [(p.line, p.column, p.tag) for p in rules.problems] == [(7, 8, "MOBILEPHONE")]


def test_add_batch_finds_what_add_finds() -> None:
    """add_batch (places packed column << 32 | line) finds what add() finds, at the same places."""
    numbers = [33612000000 + i % 700 for i in range(1000)]
    places = [(i + 1, i % 5) for i in range(1000)]
    one_by_one, batched = DuplicateFinder(bits=1 << 10), DuplicateFinder(bits=1 << 10)
    for number, (line, column) in zip(numbers, places, strict=True):
        one_by_one.add(number, line, column)
    batched.add_batch(array("q", numbers), array("q", [c << 32 | line for line, c in places]))
    expected = one_by_one.problems()
    assert len(expected) == 300 and expected[0].column == 700 % 5
    assert batched.problems() == expected


def test_no_duplicate_means_no_problem() -> None:
    """Distinct numbers, even sharing bitmap slots, give no problem."""
    finder = DuplicateFinder(bits=8)
    for line, number in enumerate(range(33612000000, 33612000100), 1):
        finder.add(number, line)
    assert finder.problems() == []
