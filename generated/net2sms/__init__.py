from smsxml.generated.net2sms.response import (
    MessageState,
    Response,
    Response1,
    SmsStatus,
)

__all__ = [
    "MessageState",
    "Response1",
    "SmsStatus",
    "Response",
]
