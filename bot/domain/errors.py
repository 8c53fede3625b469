"""The project's own error hierarchy; foreign errors are translated into these at the boundary.

ImagineError
├── ConfigError              a setting is missing or wrong (names the variable)
├── RequestRejected          a user's request is refused before a job exists
│   ├── InvalidRequest       malformed command, unknown flag, bad size or model
│   └── PolicyRefusal        banned, channel not allowed, blocked term, limit reached
├── JobNotFound              no job with that id (or not visible to this caller)
├── StoreError               the store failed (database unreachable, migration failed)
├── ProviderError            a provider call failed
│   ├── ProviderUnavailable  refused before a task exists: safe to fail over (429, 5xx, 402, circuit open)
│   │   └── ProviderBalanceExhausted  the account has no money left: fail over, open the circuit
│   ├── SubmitOutcomeUnknown the request may have created a paid task: never resubmit
│   ├── ProviderTimeout      a poll or download exceeded its bound
│   ├── ProviderModerated    the provider refused the prompt or flagged the image
│   └── ProviderFailed       the task ended in error, or the answer was malformed
├── DownloadRefused          a result or input URL is not allowed (host, scheme, size)
├── InvalidImage             bytes that are not an acceptable image
└── DeliveryError            the platform refused or lost a delivery
"""

from __future__ import annotations


class ImagineError(Exception):
    """Base of every error the bot raises on purpose. ``str()`` is safe to show an operator."""


class ConfigError(ImagineError):
    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class RequestRejected(ImagineError):
    """A request refused before any job exists; ``user_message`` is shown to the requester."""

    def __init__(self, user_message: str, *, code: str = "rejected") -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.code = code


class InvalidRequest(RequestRejected):
    def __init__(self, user_message: str, *, code: str = "invalid") -> None:
        super().__init__(user_message, code=code)


class PolicyRefusal(RequestRejected):
    def __init__(self, user_message: str, *, code: str, retry_after: float | None = None) -> None:
        super().__init__(user_message, code=code)
        self.retry_after = retry_after


class JobNotFound(ImagineError):
    pass


class StoreError(ImagineError):
    pass


class ProviderError(ImagineError):
    """A provider call failed. ``retryable`` says whether the same call may be tried again."""

    retryable = False

    def __init__(self, message: str, *, provider: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status


class ProviderUnavailable(ProviderError):
    """The provider certainly created no task: the job may go to the next provider."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after = retry_after


class ProviderBalanceExhausted(ProviderUnavailable):
    """The provider's account has no balance or credits left (BFL 402, fal's 403 "User is locked.
    Reason: Exhausted balance"): not a refused key. Jobs fail over and the provider's circuit
    opens at once; only an operator topping up helps."""


class SubmitOutcomeUnknown(ProviderError):
    """The submit may have reached the provider; submitting again could pay twice."""


class ProviderTimeout(ProviderError):
    retryable = True


class ProviderModerated(ProviderError):
    """Terminal: the provider's moderation refused the prompt, the input or the result."""


class ProviderFailed(ProviderError):
    """The provider ended the task without an image; ``reason`` is what it said, made safe to show."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.reason = reason


class DownloadRefused(ImagineError):
    pass


class InvalidImage(ImagineError):
    pass


class DeliveryError(ImagineError):
    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable
