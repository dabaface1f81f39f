"""Which providers a recipient's message goes to, in order of preference.

Routes map a number prefix (``"30"``, ``"3069"``), a country (``"GR"``) or ``"*"`` to an
ordered list of provider names; the longest matching prefix wins, and the dispatcher
fails over along the list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import phonenumbers

__all__ = ["Routes"]


class Routes:
    """A routing table, checked when built (unknown providers or countries are errors)."""

    def __init__(self, table: Mapping[str, Sequence[str]], providers: Sequence[str]) -> None:
        self._by_prefix: dict[str, tuple[str, ...]] = {}
        known = set(providers)
        for key, names in table.items():
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(f"route {key!r} names unknown provider(s): {', '.join(unknown)}")
            self._by_prefix[self._prefix(key)] = tuple(names)
        self._lengths = sorted({len(p) for p in self._by_prefix if p != "*"}, reverse=True)

    @staticmethod
    def _prefix(key: str) -> str:
        key = key.strip().lstrip("+")
        if key == "*" or key.isdigit():
            return key
        code = phonenumbers.country_code_for_region(key.upper())
        if not code:
            raise ValueError(f"route {key!r}: not a number prefix, a country code or '*'")
        return str(code)

    def providers_for(self, msisdn: str) -> tuple[str, ...]:
        """The providers for ``msisdn``, best first; empty when no route matches."""
        for length in self._lengths:
            names = self._by_prefix.get(msisdn[:length])
            if names is not None:
                return names
        return self._by_prefix.get("*", ())
