from smsxml.generated.smspartner.result import (
    Entry,
    Result,
    Result1,
)

__all__ = [
    "Entry",
    "Result1",
    "Result",
]
