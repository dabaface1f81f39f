from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(kw_only=True)
class SmsId:
    phone_number: str = field(
        metadata={
            "name": "phoneNumber",
            "type": "Element",
            "namespace": "",
        }
    )
    sms_id: str = field(
        metadata={
            "name": "smsId",
            "type": "Element",
            "namespace": "",
        }
    )


@dataclass(kw_only=True)
class SmsIds:
    sms: list[SmsId] = field(
        default_factory=list,
        metadata={
            "name": "SMS",
            "type": "Element",
            "namespace": "",
        },
    )


@dataclass(kw_only=True)
class SendAnswer:
    status: int = field(
        metadata={
            "type": "Element",
            "namespace": "",
            "min_inclusive": 100,
            "max_inclusive": 199,
        }
    )
    status_text: str = field(
        metadata={
            "name": "statusText",
            "type": "Element",
            "namespace": "",
        }
    )
    invalid_numbers: None | str = field(
        default=None,
        metadata={
            "name": "invalidNumbers",
            "type": "Element",
            "namespace": "",
        },
    )
    campaign_id: None | str = field(
        default=None,
        metadata={
            "name": "campaignId",
            "type": "Element",
            "namespace": "",
        },
    )
    credits: None | str = field(
        default=None,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )
    credits_used: None | str = field(
        default=None,
        metadata={
            "name": "creditsUsed",
            "type": "Element",
            "namespace": "",
        },
    )
    nb_credits: None | str = field(
        default=None,
        metadata={
            "name": "nbCredits",
            "type": "Element",
            "namespace": "",
        },
    )
    nb_contacts: None | str = field(
        default=None,
        metadata={
            "name": "nbContacts",
            "type": "Element",
            "namespace": "",
        },
    )
    nb_sms: None | str = field(
        default=None,
        metadata={
            "name": "nbSms",
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
    sms_ids: None | SmsIds = field(
        default=None,
        metadata={
            "name": "smsIds",
            "type": "Element",
            "namespace": "",
        },
    )


@dataclass(kw_only=True)
class Response(SendAnswer):
    class Meta:
        name = "RESPONSE"
