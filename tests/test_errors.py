"""smsxml.errors: the exception tree its docstring draws, and what each error carries."""

from __future__ import annotations

import re

import pytest

from smsxml import errors
from smsxml.errors import (
    BadInput,
    OutcomeUnknown,
    PermanentFailure,
    Problem,
    ProviderError,
    RateLimited,
    SmsxmlError,
    TemporaryFailure,
)


def _drawn_tree() -> dict[str, str]:
    """{class: parent} as the module docstring draws them: a class's parent is the nearest
    class above it whose name starts further left."""
    parents: dict[str, str] = {}
    above: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        drawing = re.match(r"[ │├└─]*", line)
        assert drawing is not None
        name = re.match(r"\w+", line[drawing.end() :])
        if name is None or name.group() not in errors.__all__:
            continue
        column = drawing.end()
        while above and above[-1][0] >= column:
            above.pop()
        if above:
            parents[name.group()] = above[-1][1]
        above.append((column, name.group()))
    return parents


def test_the_drawn_tree_is_the_class_tree() -> None:
    """Every exception of the module is in the docstring's tree, under its real parent."""
    drawn = _drawn_tree()
    exceptions = {
        name
        for name in errors.__all__
        if isinstance(getattr(errors, name), type)
        and issubclass(getattr(errors, name), BaseException)
    }
    assert set(drawn) | {"SmsxmlError"} == exceptions
    for name, parent in drawn.items():
        assert getattr(errors, name).__bases__ == (getattr(errors, parent),), name


def test_every_error_is_caught_as_smsxml_error() -> None:
    """One except clause catches whatever smsxml raises, and nothing else."""
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, SmsxmlError), name
    assert not issubclass(ValueError, SmsxmlError)


def test_problem_formats_as_editors_read_it() -> None:
    """Problem.format gives FILE:LINE:COLUMN: message; at() moves it, keeping its tag."""
    problem = Problem(3, 7, "bad TPOA", tag="TPOA")
    assert problem.format("feed.xml") == "feed.xml:3:7: bad TPOA"
    moved = problem.at(4, 1)
    assert (moved.line, moved.column, moved.message, moved.tag) == (4, 1, "bad TPOA", "TPOA")


def test_problems_sort_by_place_and_ignore_the_tag() -> None:
    """Problems order by line, column, message; the tag plays no part in equality."""
    found = [Problem(2, 1, "b"), Problem(1, 9, "z"), Problem(2, 1, "a")]
    assert sorted(found) == [Problem(1, 9, "z"), Problem(2, 1, "a"), Problem(2, 1, "b")]
    assert Problem(1, 1, "x", tag="SMS") == Problem(1, 1, "x")


@pytest.mark.parametrize(
    ("given", "problems", "message"),
    [
        ("just words", [Problem(0, 0, "just words")], "just words"),
        (Problem(3, 5, "bad"), [Problem(3, 5, "bad")], "line 3, column 5: bad"),
        (
            [Problem(2, 0, "first"), Problem(9, 9, "second")],
            [Problem(2, 0, "first"), Problem(9, 9, "second")],
            "line 2, column 0: first",
        ),
        ([], [], "bad input"),
    ],
)
def test_bad_input_takes_words_a_problem_or_a_list(
    given: str | Problem | list[Problem], problems: list[Problem], message: str
) -> None:
    """BadInput keeps its problems; its message and place are the first one's."""
    error = BadInput(given)
    assert error.problems == problems and str(error) == message
    first = problems[0] if problems else Problem(0, 0, "")
    assert (error.line, error.column) == (first.line, first.column)


@pytest.mark.parametrize(
    ("provider", "code", "message"),
    [
        ("net2sms", 105, "net2sms: [105] Insufficient credits"),
        ("net2sms", None, "net2sms: Insufficient credits"),
        ("", "", "Insufficient credits"),
        ("", 0, "[0] Insufficient credits"),
    ],
)
def test_provider_errors_name_the_provider_and_its_code(
    provider: str, code: int | None, message: str
) -> None:
    """ProviderError: "provider: [code] text", each part left out when unknown (0 is a code)."""
    error = PermanentFailure("Insufficient credits", provider=provider, code=code)
    assert str(error) == message
    assert (error.provider, error.code, error.text) == (provider, code, "Insufficient credits")


def test_rate_limited_carries_when_to_retry() -> None:
    """RateLimited is temporary and says after how many seconds to try again."""
    error = RateLimited("slow down", provider="isms", code=429, retry_after=1.5)
    assert isinstance(error, TemporaryFailure) and error.retry_after == 1.5
    assert RateLimited("slow down").retry_after is None


def test_an_unknown_outcome_is_temporary_but_its_own_kind() -> None:
    """OutcomeUnknown is a TemporaryFailure a caller can still tell apart (never resent)."""
    error = OutcomeUnknown("no answer", provider="isms", code="timeout")
    assert isinstance(error, TemporaryFailure) and isinstance(error, ProviderError)
    assert not isinstance(TemporaryFailure("x"), OutcomeUnknown)
