from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(kw_only=True)
class Result1:
    class Meta:
        name = "Result"

    entry: list[str] = field(
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
