"""The outcome table, entry by entry: what each error at each step does to a job, what its user
reads, whether the job's quota comes back, and whether the provider's circuit counts it."""

from __future__ import annotations

import pytest

from bot.domain.errors import (
    DeliveryError,
    DownloadRefused,
    InvalidImage,
    ProviderError,
    ProviderFailed,
    ProviderModerated,
    ProviderTimeout,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
)
from bot.domain.models import JobStatus
from bot.jobs import outcomes
from bot.jobs.outcomes import HANDLED, OUTCOMES, Action, Step, outcome_for

FAILED, MODERATED = JobStatus.FAILED, JobStatus.MODERATED
FINISH, FAIL_OVER, RETRY = Action.FINISH, Action.FAIL_OVER, Action.RETRY
POLICY = "The image service's safety filter blocked this request. Try rewording the prompt."

# step, error met there, then: status, code, action, refunds, counts against the provider, message.
TABLE = [
    (
        Step.INPUT,
        DownloadRefused("Only https:// image links can be used."),
        (FAILED, "input_refused", FINISH, True, False),
        "Your input image was refused. Only https:// image links can be used.",
    ),
    (
        Step.INPUT,
        InvalidImage("not an image"),
        (FAILED, "input_invalid", FINISH, True, False),
        "Your input image is not usable: not an image.",
    ),
    (
        Step.RESUBMIT,
        SubmitOutcomeUnknown("bfl"),
        (FAILED, "submit_unknown", FINISH, True, False),
        "The image service may or may not have started your image; to avoid paying twice it "
        "was not sent again. Please try again.",
    ),
    (
        Step.SUBMIT,
        ProviderUnavailable("503", status=503, retry_after=4),
        (FAILED, "providers_unavailable", FAIL_OVER, True, True),
        "All image services are busy right now.",
    ),
    (
        Step.SUBMIT,
        SubmitOutcomeUnknown("connection dropped after the request was sent"),
        (FAILED, "submit_unknown", FINISH, True, True),
        "The image service did not confirm your request; to avoid paying twice it was not sent "
        "again. Please try again.",
    ),
    (
        Step.SUBMIT,
        ProviderModerated("Request Moderated"),
        (MODERATED, "moderated", FINISH, True, False),
        POLICY,
    ),
    (
        Step.SUBMIT,
        ProviderFailed("bfl: 400"),
        (FAILED, "provider_error", FINISH, True, False),
        "The image service refused the request.",
    ),
    (
        Step.POLL,
        ProviderTimeout("read timeout"),
        (FAILED, "provider_failed", RETRY, True, False),
        "The image service could not make it.",
    ),
    (
        Step.POLL,
        ProviderUnavailable("502", status=502),
        (FAILED, "provider_failed", RETRY, True, False),
        "The image service could not make it.",
    ),
    (
        Step.POLL,
        ProviderModerated("Content Moderated"),
        (MODERATED, "moderated", FINISH, True, False),
        POLICY,
    ),
    (
        Step.POLL,
        ProviderFailed("timed out waiting for the provider"),
        (FAILED, "provider_failed", FINISH, True, False),
        "The image service could not make it.",
    ),
    (
        Step.FETCH,
        ProviderModerated("has_nsfw_concepts"),
        (MODERATED, "moderated", FINISH, True, False),
        POLICY,
    ),
    (
        Step.FETCH,
        InvalidImage("truncated PNG"),
        (FAILED, "bad_result", FINISH, True, False),
        "The image service sent back an unusable image.",
    ),
    (
        Step.FETCH,
        DownloadRefused("169.254.169.254 is not a provider host"),
        (FAILED, "bad_result", FINISH, True, False),
        "The image service sent back an unusable image.",
    ),
    (
        Step.SUBMIT,
        ProviderError("unexpected answer"),
        (FAILED, "provider_error", FINISH, True, False),
        "The image service refused the request.",
    ),
    (
        Step.POLL,
        ProviderError("unexpected answer"),
        (FAILED, "provider_failed", FINISH, True, False),
        "The image service could not make it.",
    ),
    (
        Step.FETCH,
        ProviderError("unexpected answer"),
        (FAILED, "download_failed", FINISH, True, False),
        "The finished image could not be downloaded.",
    ),
    (
        Step.FETCH,
        ProviderTimeout("download took too long"),
        (FAILED, "download_failed", FINISH, True, False),
        "The finished image could not be downloaded.",
    ),
]


@pytest.mark.parametrize(
    ("step", "error", "expected", "message"),
    TABLE,
    ids=[f"{step.value}-{type(error).__name__}" for step, error, _, _ in TABLE],
)
def test_each_error_at_each_step_has_its_outcome(
    step: Step,
    error: Exception,
    expected: tuple[JobStatus, str, Action, bool, bool],
    message: str,
) -> None:
    outcome = outcome_for(step, error)
    assert (
        outcome.status,
        outcome.code,
        outcome.action,
        outcome.refunds,
        outcome.counts_against_provider,
    ) == expected
    assert outcome.user_message(error=error) == message
    assert isinstance(error, HANDLED[step])


def test_every_row_of_the_table_is_checked_above() -> None:
    assert set(OUTCOMES) == {(step, type(error)) for step, error, _, _ in TABLE} - {
        (Step.SUBMIT, ProviderFailed),
        (Step.POLL, ProviderFailed),
        (Step.FETCH, ProviderTimeout),
    }


def test_the_most_specific_row_wins() -> None:
    # ProviderModerated is a ProviderError: the moderation row, not the generic one, decides.
    assert outcome_for(Step.SUBMIT, ProviderModerated("x")).code == "moderated"
    assert outcome_for(Step.SUBMIT, ProviderError("x")).code == "provider_error"
    assert outcome_for(Step.FETCH, ProviderError("x")).code == "download_failed"


def test_an_error_the_table_does_not_know_is_raised_again() -> None:
    with pytest.raises(KeyError):
        outcome_for(Step.FETCH, KeyError("a bug"))
    with pytest.raises(ProviderUnavailable):
        outcome_for(Step.INPUT, ProviderUnavailable("not an input error"))
    assert not issubclass(DeliveryError, HANDLED[Step.FETCH])


@pytest.mark.parametrize(
    ("outcome", "status", "code", "message", "refunds"),
    [
        (
            outcomes.QUEUE_DEADLINE,
            JobStatus.EXPIRED,
            "queue_deadline",
            "The bot was too busy to start your image in time. Please try again.",
            True,
        ),
        (
            outcomes.NO_PROVIDER,
            FAILED,
            "no_provider",
            "No image service offers FLUX.2 [pro].",
            True,
        ),
        (
            outcomes.SAFETY_RECHECK,
            FAILED,
            "safety_recheck",
            "This channel's safety settings changed while your image was made, so it was not "
            "posted.",
            True,
        ),
        (outcomes.NO_IMAGE, FAILED, "no_image", "The image service returned no image.", True),
        (
            outcomes.DELIVERY_FAILED,
            FAILED,
            "delivery_failed",
            "The image could not be posted.",
            True,
        ),
        (outcomes.INTERNAL, FAILED, "internal", "Something went wrong.", True),
    ],
)
def test_the_outcomes_the_bot_decides_itself(
    outcome: outcomes.Outcome, status: JobStatus, code: str, message: str, refunds: bool
) -> None:
    assert (outcome.status, outcome.code, outcome.refunds) == (status, code, refunds)
    assert outcome.user_message(variant="FLUX.2 [pro]") == message


def test_only_an_unfinished_status_would_keep_the_quota_charged() -> None:
    kept = outcomes.Outcome(JobStatus.DELIVERED, "delivered", "")
    assert not kept.refunds
