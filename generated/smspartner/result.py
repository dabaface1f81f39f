from __future__ import annotations

from dataclasses import dataclass, field
from typing import ForwardRef


@dataclass(kw_only=True)
class Entry:
    content: list[object] = field(
        default_factory=list,
        metadata={
            "type": "Wildcard",
            "namespace": "##any",
            "mixed": True,
            "choices": (
                {
                    "name": "entry",
                    "type": ForwardRef("Entry"),
                    "namespace": "",
                },
            ),
        },
    )


@dataclass(kw_only=True)
class Result1:
    class Meta:
        name = "Result"

    entry: list[Entry] = field(
        default_factory=list,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )


@dataclass(kw_only=True)
class Result(Result1):
    class Meta:
        name = "result"
