"""Every exception smsxml raises, in one place.

The tree, so that a caller knows what to catch::

    SmsxmlError
    ├── BadInput                 a document or value we refuse; carries Problems
    │                            (line, column, message) — never a traceback for users
    └── ProviderError            a provider (HTTP or SOAP) refused or failed a call;
        │                        carries the provider's own code and text
        ├── PermanentFailure     retrying the same call cannot help
        │   ├── AuthenticationFailed
        │   ├── InsufficientCredit
        │   ├── InvalidSender
        │   └── InvalidRecipient
        └── TemporaryFailure     the same call may succeed later (outage, 5xx)
            ├── RateLimited
            └── OutcomeUnknown   the request left but no answer came back: a send
                                 may have gone out, so it must not be blindly retried

Credentials never appear in these messages: providers build them from the answer,
never from the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AuthenticationFailed",
    "BadInput",
    "InsufficientCredit",
    "InvalidRecipient",
    "InvalidSender",
    "OutcomeUnknown",
    "PermanentFailure",
    "Problem",
    "ProviderError",
    "RateLimited",
    "SmsxmlError",
    "TemporaryFailure",
]


class SmsxmlError(Exception):
    """The root of every smsxml exception."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input, where it is (1-based; 0 when unknown).

    ``tag`` names the XML element concerned, when known, so that a column can be found
    for errors libxml2 reports without one (schema violations).
    """

    line: int
    column: int
    message: str
    tag: str = field(default="", compare=False)

    def format(self, source: str) -> str:
        """``FILE:LINE:COLUMN: message``, the shape editors and CI annotators understand."""
        return f"{source}:{self.line}:{self.column}: {self.message}"

    def at(self, line: int, column: int) -> Problem:
        """The same problem at another place."""
        return Problem(line, column, self.message, self.tag)


class BadInput(SmsxmlError):
    """Input we refuse: malformed or hostile XML, a schema violation, a bad value."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(0, 0, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        first = self.problems[0] if self.problems else Problem(0, 0, "bad input")
        super().__init__(
            f"line {first.line}, column {first.column}: {first.message}"
            if first.line
            else first.message
        )

    @property
    def line(self) -> int:
        return self.problems[0].line if self.problems else 0

    @property
    def column(self) -> int:
        return self.problems[0].column if self.problems else 0


class ProviderError(SmsxmlError):
    """A provider refused or failed a call.

    ``code`` and ``text`` are the provider's own (e.g. net2sms error ``105``, iSMS
    ``Error: Insufficient credits.``); ``provider`` names the provider.
    """

    def __init__(self, text: str, *, provider: str = "", code: str | int | None = None) -> None:
        self.provider = provider
        self.code = code
        self.text = text
        where = f"{provider}: " if provider else ""
        what = f"[{code}] " if code not in (None, "") else ""
        super().__init__(f"{where}{what}{text}")


class PermanentFailure(ProviderError):
    """Retrying the same call cannot succeed."""


class TemporaryFailure(ProviderError):
    """The same call may succeed later: outage, HTTP 5xx, timeout, dropped connection."""


class AuthenticationFailed(PermanentFailure):
    """Wrong credentials or API key."""


class InsufficientCredit(PermanentFailure):
    """The account cannot pay for the message."""


class InvalidSender(PermanentFailure):
    """The sender identity is refused (alphanumeric ≤ 11 or digits ≤ 16)."""


class InvalidRecipient(PermanentFailure):
    """A recipient number is refused."""


class RateLimited(TemporaryFailure):
    """Too many calls; retry later, after ``retry_after`` seconds when known."""

    def __init__(
        self,
        text: str,
        *,
        provider: str = "",
        code: str | int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(text, provider=provider, code=code)
        self.retry_after = retry_after


class OutcomeUnknown(TemporaryFailure):
    """The request was sent but no answer arrived (read timeout, dropped connection).

    For a send this means the SMS may already be on its way: smsxml never retries it on
    its own, and the bridge's dispatcher decides (see its retry policy).
    """
