from smsxml.generated.smspartner.result import (
    Result,
    Result1,
)

__all__ = [
    "Result1",
    "Result",
]
