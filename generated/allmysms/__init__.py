from smsxml.generated.allmysms.answer import (
    Response,
    SendAnswer,
    SmsId,
    SmsIds,
)
from smsxml.generated.allmysms.feed import (
    Data,
    Feed,
    Flag,
    Recipient,
    Sms,
)

__all__ = [
    "Response",
    "SendAnswer",
    "SmsId",
    "SmsIds",
    "Data",
    "Feed",
    "Flag",
    "Recipient",
    "Sms",
]
