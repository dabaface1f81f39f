"""Routes: which providers a recipient's message goes to, best first."""

from __future__ import annotations

import pytest

from smsxml.server.routing import Routes


def test_routes_pick_the_longest_prefix() -> None:
    """A 3069 route beats a 30 route, which beats the catch-all; countries are allowed."""
    routes = Routes(
        {"30": ["a"], "3069": ["b", "a"], "FR": ["c"], "*": ["d"]}, ["a", "b", "c", "d"]
    )
    assert routes.providers_for("306912345678") == ("b", "a")
    assert routes.providers_for("302101234567") == ("a",)
    assert routes.providers_for("33612345678") == ("c",)
    assert routes.providers_for("4915112345678") == ("d",)


def test_routes_refuse_unknown_providers_and_countries() -> None:
    """A route naming a provider that is not configured, or no country, is an error."""
    with pytest.raises(ValueError, match="unknown provider"):
        Routes({"30": ["nope"]}, ["isms"])
    with pytest.raises(ValueError, match="not a number prefix"):
        Routes({"Greece": ["isms"]}, ["isms"])


def test_a_written_prefix_is_read_as_digits_and_no_route_means_no_provider() -> None:
    """ "+30" is the prefix 30 (as a number is written); without a catch-all, a number no
    route matches has no provider (the dispatcher fails it rather than guess)."""
    routes = Routes({"+30": ["a"], " 44 ": ["b"]}, ["a", "b"])
    assert routes.providers_for("306912345678") == ("a",)
    assert routes.providers_for("447700900123") == ("b",)
    assert routes.providers_for("33612345678") == ()
