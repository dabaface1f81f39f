from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class MessageState(Enum):
    S = "s"
    D = "d"
    F = "f"
    VALUE_1 = "1"
    VALUE_2 = "2"
    VALUE_3 = "3"


@dataclass(kw_only=True)
class SmsStatus:
    id: str = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )
    sms_id: None | str = field(
        default=None,
        metadata={
            "name": "smsId",
            "type": "Element",
            "namespace": "",
        },
    )
    status: MessageState = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )
    cost: None | str = field(
        default=None,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )
    ttd: None | str = field(
        default=None,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )


@dataclass(kw_only=True)
class Response1:
    class Meta:
        name = "Response"

    status: str = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )
    key: None | str = field(
        default=None,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )
    id: None | str = field(
        default=None,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )
    cost: None | str = field(
        default=None,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )
    balance: None | str = field(
        default=None,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )
    mcc: None | str = field(
        default=None,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )
    mnc: None | str = field(
        default=None,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )
    total: None | int = field(
        default=None,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )
    remarks: str = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )
    error: None | str = field(
        default=None,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )
    sms: list[SmsStatus] = field(
        default_factory=list,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )


@dataclass(kw_only=True)
class Response(Response1):
    class Meta:
        name = "response"
