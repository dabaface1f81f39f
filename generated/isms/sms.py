from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__NAMESPACE__ = "http://smsxml.org/isms/1"


class Coding(Enum):
    GSM = "GSM"
    UTF_8 = "UTF-8"


class FaultCode(Enum):
    AUTHENTICATION_ERROR = "AuthenticationError"
    NO_RECIPIENTS = "NoRecipients"
    INVALID_SENDER = "InvalidSender"
    INSUFFICIENT_CREDITS = "InsufficientCredits"
    INVALID_SCHEDULE = "InvalidSchedule"
    INVALID_RECIPIENT = "InvalidRecipient"
    INVALID_CODING = "InvalidCoding"
    NO_MESSAGE_ID = "NoMessageId"
    NO_MOBILE = "NoMobile"
    NO_SUCH_MESSAGE = "NoSuchMessage"
    INVALID_REQUEST = "InvalidRequest"
    SERVER_ERROR = "ServerError"


@dataclass(kw_only=True)
class Recipients:
    recipients: list[str] = field(
        default_factory=list,
        metadata={
            "type": "Element",
            "namespace": "",
            "min_occurs": 1,
        },
    )


class Status(Enum):
    QUEUED = "Queued"
    PENDING = "Pending"
    DELIVERED = "Delivered"
    FAILED = "Failed"


@dataclass(kw_only=True)
class Query:
    class Meta:
        name = "query"
        namespace = "http://smsxml.org/isms/1"

    username: str = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )
    password: str = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )
    message_id: str = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )
    mobile: str = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )


@dataclass(kw_only=True)
class SendResponse:
    class Meta:
        name = "sendResponse"
        namespace = "http://smsxml.org/isms/1"

    id: str = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )


@dataclass(kw_only=True)
class SmsPortTypeQueryInput:
    class Meta:
        name = "Envelope"
        namespace = "http://schemas.xmlsoap.org/soap/envelope/"

    body: SmsPortTypeQueryInput.Body = field(
        metadata={
            "name": "Body",
            "type": "Element",
        }
    )

    @dataclass(kw_only=True)
    class Body:
        query: Query = field(
            metadata={
                "type": "Element",
                "namespace": "http://smsxml.org/isms/1",
            }
        )


@dataclass(kw_only=True)
class QueryResponse:
    class Meta:
        name = "queryResponse"
        namespace = "http://smsxml.org/isms/1"

    status: Status = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )


@dataclass(kw_only=True)
class Send:
    class Meta:
        name = "send"
        namespace = "http://smsxml.org/isms/1"

    username: str = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )
    password: str = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )
    from_value: str = field(
        metadata={
            "name": "from",
            "type": "Element",
            "namespace": "",
        }
    )
    to: Recipients = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )
    message: str = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )
    coding: Coding = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )
    flash: bool = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )
    schedule: None | str = field(
        default=None,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )
    dlr_url: None | str = field(
        default=None,
        metadata={
            "type": "Element",
            "namespace": "",
        },
    )


@dataclass(kw_only=True)
class SmsFault:
    class Meta:
        name = "smsFault"
        namespace = "http://smsxml.org/isms/1"

    code: FaultCode = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )
    message: str = field(
        metadata={
            "type": "Element",
            "namespace": "",
        }
    )


@dataclass(kw_only=True)
class SmsPortTypeQueryOutput:
    class Meta:
        name = "Envelope"
        namespace = "http://schemas.xmlsoap.org/soap/envelope/"

    body: SmsPortTypeQueryOutput.Body = field(
        metadata={
            "name": "Body",
            "type": "Element",
        }
    )

    @dataclass(kw_only=True)
    class Body:
        query_response: None | QueryResponse = field(
            default=None,
            metadata={
                "name": "queryResponse",
                "type": "Element",
                "namespace": "http://smsxml.org/isms/1",
            },
        )
        fault: None | SmsPortTypeQueryOutput.Body.Fault = field(
            default=None,
            metadata={
                "name": "Fault",
                "type": "Element",
            },
        )

        @dataclass(kw_only=True)
        class Fault:
            faultcode: str = field(
                metadata={
                    "type": "Element",
                    "namespace": "",
                }
            )
            faultstring: str = field(
                metadata={
                    "type": "Element",
                    "namespace": "",
                }
            )
            faultactor: None | str = field(
                default=None,
                metadata={
                    "type": "Element",
                    "namespace": "",
                },
            )
            detail: None | SmsPortTypeQueryOutput.Body.Fault.Detail = field(
                default=None,
                metadata={
                    "type": "Element",
                    "namespace": "",
                },
            )

            @dataclass(kw_only=True)
            class Detail:
                sms_fault: None | SmsFault = field(
                    default=None,
                    metadata={
                        "name": "smsFault",
                        "type": "Element",
                        "namespace": "http://smsxml.org/isms/1",
                    },
                )


@dataclass(kw_only=True)
class SmsPortTypeSendInput:
    class Meta:
        name = "Envelope"
        namespace = "http://schemas.xmlsoap.org/soap/envelope/"

    body: SmsPortTypeSendInput.Body = field(
        metadata={
            "name": "Body",
            "type": "Element",
        }
    )

    @dataclass(kw_only=True)
    class Body:
        send: Send = field(
            metadata={
                "type": "Element",
                "namespace": "http://smsxml.org/isms/1",
            }
        )


@dataclass(kw_only=True)
class SmsPortTypeSendOutput:
    class Meta:
        name = "Envelope"
        namespace = "http://schemas.xmlsoap.org/soap/envelope/"

    body: SmsPortTypeSendOutput.Body = field(
        metadata={
            "name": "Body",
            "type": "Element",
        }
    )

    @dataclass(kw_only=True)
    class Body:
        send_response: None | SendResponse = field(
            default=None,
            metadata={
                "name": "sendResponse",
                "type": "Element",
                "namespace": "http://smsxml.org/isms/1",
            },
        )
        fault: None | SmsPortTypeSendOutput.Body.Fault = field(
            default=None,
            metadata={
                "name": "Fault",
                "type": "Element",
            },
        )

        @dataclass(kw_only=True)
        class Fault:
            faultcode: str = field(
                metadata={
                    "type": "Element",
                    "namespace": "",
                }
            )
            faultstring: str = field(
                metadata={
                    "type": "Element",
                    "namespace": "",
                }
            )
            faultactor: None | str = field(
                default=None,
                metadata={
                    "type": "Element",
                    "namespace": "",
                },
            )
            detail: None | SmsPortTypeSendOutput.Body.Fault.Detail = field(
                default=None,
                metadata={
                    "type": "Element",
                    "namespace": "",
                },
            )

            @dataclass(kw_only=True)
            class Detail:
                sms_fault: None | SmsFault = field(
                    default=None,
                    metadata={
                        "name": "smsFault",
                        "type": "Element",
                        "namespace": "http://smsxml.org/isms/1",
                    },
                )


class SmsPortTypeQuery:
    style = "document"
    location = "http://localhost:8080/soap"
    transport = "http://schemas.xmlsoap.org/soap/http"
    soap_action = "http://smsxml.org/isms/1/query"
    input = SmsPortTypeQueryInput
    output = SmsPortTypeQueryOutput


class SmsPortTypeSend:
    style = "document"
    location = "http://localhost:8080/soap"
    transport = "http://schemas.xmlsoap.org/soap/http"
    soap_action = "http://smsxml.org/isms/1/send"
    input = SmsPortTypeSendInput
    output = SmsPortTypeSendOutput
