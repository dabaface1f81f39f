from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Flag(Enum):
    VALUE_0 = "0"
    VALUE_1 = "1"


@dataclass(kw_only=True)
class Recipient:
    mobilephone: str = field(
        metadata={
            "name": "MOBILEPHONE",
            "type": "Element",
            "namespace": "",
            "pattern": r"[1-9][0-9]{6,14}",
        }
    )
    param_1: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_1",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_2: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_2",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_3: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_3",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_4: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_4",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_5: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_5",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_6: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_6",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_7: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_7",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_8: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_8",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_9: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_9",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_10: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_10",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_11: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_11",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_12: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_12",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_13: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_13",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_14: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_14",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_15: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_15",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_16: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_16",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_17: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_17",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_18: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_18",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_19: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_19",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )
    param_20: None | str = field(
        default=None,
        metadata={
            "name": "PARAM_20",
            "type": "Element",
            "namespace": "",
            "max_length": 640,
        },
    )


@dataclass(kw_only=True)
class Feed:
    message: str = field(
        metadata={
            "name": "MESSAGE",
            "type": "Element",
            "namespace": "",
            "min_length": 1,
            "max_length": 640,
        }
    )
    dynamic: None | int = field(
        default=None,
        metadata={
            "name": "DYNAMIC",
            "type": "Element",
            "namespace": "",
        },
    )
    campaign_name: None | str = field(
        default=None,
        metadata={
            "name": "CAMPAIGN_NAME",
            "type": "Element",
            "namespace": "",
            "max_length": 255,
        },
    )
    date: None | str = field(
        default=None,
        metadata={
            "name": "DATE",
            "type": "Element",
            "namespace": "",
            "pattern": r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]",
        },
    )
    tpoa: None | str = field(
        default=None,
        metadata={
            "name": "TPOA",
            "type": "Element",
            "namespace": "",
            "pattern": r"[A-Za-z][A-Za-z0-9]{2,10}|[0-9]{3,16}",
        },
    )
    flash: None | Flag = field(
        default=None,
        metadata={
            "name": "FLASH",
            "type": "Element",
            "namespace": "",
        },
    )
    mail_notif: None | Flag = field(
        default=None,
        metadata={
            "name": "MAIL_NOTIF",
            "type": "Element",
            "namespace": "",
        },
    )
    climsgid: None | str = field(
        default=None,
        metadata={
            "name": "CLIMSGID",
            "type": "Element",
            "namespace": "",
            "max_length": 255,
        },
    )
    masteraccount: None | str = field(
        default=None,
        metadata={
            "name": "MASTERACCOUNT",
            "type": "Element",
            "namespace": "",
            "max_length": 255,
        },
    )
    tracking: None | Flag = field(
        default=None,
        metadata={
            "name": "TRACKING",
            "type": "Element",
            "namespace": "",
        },
    )
    sms: list[Recipient] = field(
        default_factory=list,
        metadata={
            "name": "SMS",
            "type": "Element",
            "namespace": "",
            "min_occurs": 1,
        },
    )


@dataclass(kw_only=True)
class Sms(Recipient):
    class Meta:
        name = "SMS"


@dataclass(kw_only=True)
class Data(Feed):
    class Meta:
        name = "DATA"
