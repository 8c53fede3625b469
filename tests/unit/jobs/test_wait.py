"""Waiting for a provider task: poll errors retried or ended as the outcome table says, a finished
task's state turned into its answer or its error, the generation timeout, progress for the user,
and a cancel that stops the wait and the task at the provider."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from bot.domain.errors import (
    ProviderFailed,
    ProviderModerated,
    ProviderTimeout,
    ProviderUnavailable,
)
from bot.domain.models import Job, JobStatus
from bot.jobs.steps import LeaseLost
from bot.jobs.wait import Waiter
from bot.providers.base import PollResult, PollState
from bot.providers.offline import OfflineProvider
from tests.unit.jobs.conftest import Rig

PENDING = PollResult(PollState.PENDING)
READY = PollResult(PollState.READY, outputs=("https://example.invalid/1.png",))


class Answering(OfflineProvider):
    """Answers each poll with the next of ``answers`` (an error is raised); the last repeats."""

    name = "bfl"

    def __init__(self, *answers: PollResult | Exception) -> None:
        super().__init__()
        self.answers = list(answers)
        self.polls = 0
        self.cancelled: list[Mapping[str, Any]] = []

    async def poll(self, task: Mapping[str, Any]) -> PollResult:
        self.polls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def cancel(self, task: Mapping[str, Any]) -> None:
        self.cancelled.append(task)


async def submitted(rig: Rig) -> Job:
    return await rig.claimed(
        status=JobStatus.SUBMITTED,
        provider="bfl",
        provider_task={"id": "task-1"},
        submit_started_at=rig.clock.now(),
    )


async def test_retryable_poll_errors_are_polled_through_to_the_answer(rig: Rig) -> None:
    provider = Answering(
        ProviderTimeout("read timeout"),
        ProviderUnavailable("502", status=502, retry_after=7),
        PENDING,
        READY,
    )
    steps = rig.steps(provider)
    job = await submitted(rig)
    started = rig.clock.now()
    result = await Waiter(steps).until_ready(job, provider)
    assert result is READY
    assert provider.polls == 4
    assert rig.clock.now() - started >= 7  # the Retry-After of the 502 was honoured
    assert rig.crashes == ["while_polling"]  # at the first answer, not at each


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (PollResult(PollState.MODERATED, message="Content Moderated"), ProviderModerated),
        (PollResult(PollState.FAILED, message="Task failed"), ProviderFailed),
        (ProviderFailed("bfl: poll refused (404)"), ProviderFailed),
    ],
)
async def test_a_task_that_ends_without_an_image_ends_the_wait_with_its_error(
    rig: Rig, answer: PollResult | Exception, error: type[Exception]
) -> None:
    provider = Answering(answer)
    steps = rig.steps(provider)
    with pytest.raises(error):
        await Waiter(steps).until_ready(await submitted(rig), provider)
    assert provider.polls == 1


async def test_a_task_never_ready_fails_at_the_generation_timeout(rig: Rig) -> None:
    provider = Answering(PENDING)
    steps = rig.steps(provider, generation_timeout=120.0)
    job = await submitted(rig)
    with pytest.raises(ProviderFailed, match="timed out waiting"):
        await Waiter(steps).until_ready(job, provider)
    assert 120.0 <= rig.clock.now() - job.submit_started_at < 140.0  # type: ignore[operator]
    assert provider.polls > 3


async def test_a_long_wait_tells_the_user_it_is_generating(rig: Rig) -> None:
    provider = Answering(*[PENDING] * 10, READY)
    steps = rig.steps(provider, progress_interval=5.0)
    await Waiter(steps).until_ready(await submitted(rig), provider)
    assert rig.port.progress_seen and {p.stage for p in rig.port.progress_seen} == {"generating"}


async def test_a_cancel_ends_the_wait_and_the_task_at_the_provider(rig: Rig) -> None:
    provider = Answering(PENDING)
    steps = rig.steps(provider)
    job = await submitted(rig)
    await rig.store.cancel_job(job.id, rig.clock.now())
    with pytest.raises(LeaseLost):
        await Waiter(steps).until_ready(job, provider)
    assert provider.cancelled == [{"id": "task-1"}]
    assert provider.polls == 1
