"""How a job ends, or is tried again, and the one table that turns an error met at a step of a job
(a provider's refusal, a timeout, a rejected image) into that outcome."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from bot.domain.errors import (
    DownloadRefused,
    InvalidImage,
    ProviderError,
    ProviderModerated,
    ProviderTimeout,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
)
from bot.domain.limits import CHARGED_STATUSES
from bot.domain.models import JobStatus


class Step(enum.Enum):
    """Where in a job's life the error was met: the same error means different things at each."""

    INPUT = "input"  # fetching and checking the user's input images, before any submit
    RESUBMIT = "resubmit"  # a submit that started in an earlier process, its answer never stored
    SUBMIT = "submit"
    POLL = "poll"  # waiting for the task: one status poll, or the task's final state
    FETCH = "fetch"  # downloading, checking and storing the finished images


class Action(enum.Enum):
    FINISH = "finish"
    """The job ends now with the outcome's status and message."""
    FAIL_OVER = "fail over"
    """No task was made: the next provider is tried; with none left the job is retried later,
    and it ends with the outcome's status once its attempts are spent."""
    RETRY = "retry"
    """The same call again after a backoff (longer when the provider asked for that); the job
    ends with the outcome's status if it never succeeds."""


@dataclass(frozen=True)
class Outcome:
    status: JobStatus
    code: str
    # Shown to the user (with the job id appended); ``{error}`` and the like are filled in by
    # ``user_message``.
    message: str
    action: Action = Action.FINISH
    # Counted as a failure by the provider's circuit breaker.
    counts_against_provider: bool = False

    @property
    def refunds(self) -> bool:
        """Whether a job ending like this gives its images and cost back to its quotas and
        budget (usage is counted from the job's status: ``bot.domain.limits``)."""
        return self.status.value not in CHARGED_STATUSES

    def user_message(self, **values: object) -> str:
        return self.message.format_map(_Blanks(values))


class _Blanks(dict[str, object]):
    """Values for a message; a value not given reads as nothing."""

    def __missing__(self, key: str) -> str:
        return ""


# Outcomes of what a provider did -----------------------------------------------------------------

MODERATED = Outcome(
    JobStatus.MODERATED,
    "moderated",
    "The image service's safety filter blocked this request. Try rewording the prompt.",
)
PROVIDERS_BUSY = Outcome(
    JobStatus.FAILED,
    "providers_unavailable",
    "All image services are busy right now.",
    action=Action.FAIL_OVER,
    counts_against_provider=True,
)
SUBMIT_UNCONFIRMED = Outcome(
    JobStatus.FAILED,
    "submit_unknown",
    "The image service did not confirm your request; to avoid paying twice it was not sent "
    "again. Please try again.",
    counts_against_provider=True,
)
SUBMIT_INTERRUPTED = Outcome(
    JobStatus.FAILED,
    "submit_unknown",
    "The image service may or may not have started your image; to avoid paying twice it was not "
    "sent again. Please try again.",
)
SUBMIT_REFUSED = Outcome(
    JobStatus.FAILED, "provider_error", "The image service refused the request."
)
# ``said``: what the provider gave as the reason, when it gave one (" It said: ...").
TASK_FAILED = Outcome(
    JobStatus.FAILED, "provider_failed", "The image service could not make it.{said}"
)
POLL_AGAIN = Outcome(
    JobStatus.FAILED,
    "provider_failed",
    "The image service could not make it.",
    action=Action.RETRY,
)
BAD_RESULT = Outcome(
    JobStatus.FAILED, "bad_result", "The image service sent back an unusable image."
)
DOWNLOAD_FAILED = Outcome(
    JobStatus.FAILED, "download_failed", "The finished image could not be downloaded."
)
NO_IMAGE = Outcome(JobStatus.FAILED, "no_image", "The image service returned no image.")
INPUT_REFUSED = Outcome(JobStatus.FAILED, "input_refused", "Your input image was refused. {error}")
INPUT_INVALID = Outcome(
    JobStatus.FAILED, "input_invalid", "Your input image is not usable: {error}."
)

# Outcomes the bot decides itself --------------------------------------------------------------

QUEUE_DEADLINE = Outcome(
    JobStatus.EXPIRED,
    "queue_deadline",
    "The bot was too busy to start your image in time. Please try again.",
)
NO_PROVIDER = Outcome(JobStatus.FAILED, "no_provider", "No image service offers {variant}.")
SAFETY_RECHECK = Outcome(
    JobStatus.FAILED,
    "safety_recheck",
    "This channel's safety settings changed while your image was made, so it was not posted.",
)
DELIVERY_FAILED = Outcome(
    JobStatus.FAILED, "delivery_failed", "The image could not be posted.", action=Action.RETRY
)
INTERNAL = Outcome(JobStatus.FAILED, "internal", "Something went wrong.", action=Action.RETRY)


# The table: the most specific class of the error decides (``outcome_for`` walks its MRO).
OUTCOMES: Mapping[tuple[Step, type[Exception]], Outcome] = {
    (Step.INPUT, DownloadRefused): INPUT_REFUSED,
    (Step.INPUT, InvalidImage): INPUT_INVALID,
    (Step.RESUBMIT, SubmitOutcomeUnknown): SUBMIT_INTERRUPTED,
    (Step.SUBMIT, ProviderUnavailable): PROVIDERS_BUSY,
    (Step.SUBMIT, SubmitOutcomeUnknown): SUBMIT_UNCONFIRMED,
    (Step.SUBMIT, ProviderModerated): MODERATED,
    (Step.SUBMIT, ProviderError): SUBMIT_REFUSED,
    (Step.POLL, ProviderTimeout): POLL_AGAIN,
    (Step.POLL, ProviderUnavailable): POLL_AGAIN,
    (Step.POLL, ProviderModerated): MODERATED,
    (Step.POLL, ProviderError): TASK_FAILED,
    (Step.FETCH, ProviderModerated): MODERATED,
    (Step.FETCH, InvalidImage): BAD_RESULT,
    (Step.FETCH, DownloadRefused): BAD_RESULT,
    (Step.FETCH, ProviderError): DOWNLOAD_FAILED,
}

# What each step catches: every error the table knows of at that step.
HANDLED: Mapping[Step, tuple[type[Exception], ...]] = {
    step: tuple(error for (at, error) in OUTCOMES if at is step) for step in Step
}


def outcome_for(step: Step, error: BaseException) -> Outcome:
    """The outcome of ``error`` met at ``step``. Raises the error itself when the table has no
    entry for it (an error nobody planned for is a bug, handled as one by the worker)."""
    for cls in type(error).__mro__:
        outcome = OUTCOMES.get((step, cls))
        if outcome is not None:
            return outcome
    raise error
