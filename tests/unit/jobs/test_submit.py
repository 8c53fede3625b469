"""Submitting a queued job: failover through the router with exactly one task made, the outcome
table's answer to each refusal, never a second submit of a task that may exist, input images
refused before any provider is asked, and jobs that share another job's provider call."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.domain.errors import (
    ProviderError,
    ProviderModerated,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
)
from bot.domain.models import CACHE_PROVIDER, JobStatus
from bot.jobs.steps import JobSteps, Released
from bot.jobs.submit import Submitter
from bot.net.guard import SafeFetcher
from bot.providers.base import GenerationSpec, Submission
from bot.providers.offline import OfflineProvider
from tests.factories import make_request
from tests.unit.jobs.conftest import Rig


class Scripted(OfflineProvider):
    """The offline renderer under a catalog provider's name, raising the errors it is given."""

    def __init__(self, name: str, *errors: Exception, idempotent: bool = False) -> None:
        super().__init__()
        self.name = name
        self.submit_is_idempotent = idempotent
        self.errors = list(errors)
        self.specs: list[GenerationSpec] = []

    async def submit(self, spec: GenerationSpec) -> Submission:
        self.specs.append(spec)
        if self.errors:
            raise self.errors.pop(0)
        return await super().submit(spec)


def submitter(steps: JobSteps) -> Submitter:
    return Submitter(steps, SafeFetcher(httpx.AsyncClient()))


async def test_a_refusal_fails_over_to_the_next_provider(rig: Rig) -> None:
    busy, good = Scripted("bfl", ProviderUnavailable("503", status=503)), Scripted("fal")
    steps = rig.steps(busy, good)
    for _ in range(4):  # four earlier refusals: this one opens bfl's circuit
        steps.router.breaker.failure("bfl")
    job = await submitter(steps).submit(await rig.claimed())
    assert (job.status, job.provider, job.model_id) == (
        JobStatus.SUBMITTED,
        "fal",
        "fal-ai/flux-2-pro",
    )
    assert job.provider_task_id == f"offline-{job.id}"
    assert (len(busy.specs), len(good.specs)) == (1, 1)
    assert steps.router.breaker.state("bfl") == "open"
    assert rig.crashes == ["before_submit", "after_submit"]
    assert [p.stage for p in rig.port.progress_seen] == ["generating"]
    stored = await rig.store.get_job(job.id)
    assert stored == job


async def test_every_provider_busy_hands_the_job_back_after_their_retry_after(rig: Rig) -> None:
    steps = rig.steps(Scripted("bfl", ProviderUnavailable("429", status=429, retry_after=40)))
    job = await rig.claimed()
    with pytest.raises(Released):
        await submitter(steps).submit(job)
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobStatus.QUEUED
    assert stored.attempts == 1 and stored.not_before >= rig.clock.now() + 40
    assert stored.submit_started_at is None  # no task exists: the next try may submit


async def test_every_provider_busy_on_the_last_attempt_ends_the_job(rig: Rig) -> None:
    steps = rig.steps(Scripted("bfl", ProviderUnavailable("503")), max_attempts=2)
    job = await rig.claimed()
    ended = await submitter(steps).submit(job.evolve(attempts=1))
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "providers_unavailable")
    assert ended.error_message == f"All image services are busy right now. (job {job.id})"


@pytest.mark.parametrize(
    ("error", "status", "code", "circuit_failures"),
    [
        (SubmitOutcomeUnknown("dropped"), JobStatus.FAILED, "submit_unknown", 1),
        (ProviderModerated("Request Moderated"), JobStatus.MODERATED, "moderated", 0),
        (ProviderError("bad request"), JobStatus.FAILED, "provider_error", 0),
    ],
)
async def test_a_final_refusal_ends_the_job_without_failover(
    rig: Rig, error: Exception, status: JobStatus, code: str, circuit_failures: int
) -> None:
    first, second = Scripted("bfl", error), Scripted("fal")
    steps = rig.steps(first, second)
    for _ in range(4):
        steps.router.breaker.failure("bfl")
    ended = await submitter(steps).submit(await rig.claimed())
    assert (ended.status, ended.error_code) == (status, code)
    assert second.specs == []
    assert steps.router.breaker.state("bfl") == ("open" if circuit_failures else "closed")
    assert not steps.router.slot("bfl").locked()


async def test_a_submit_interrupted_in_an_earlier_process_is_never_sent_again(rig: Rig) -> None:
    provider = Scripted("bfl")
    steps = rig.steps(provider)
    job = await rig.claimed()
    job = await steps.save(job, job.evolve(provider="bfl", submit_started_at=rig.clock.now()))
    ended = await submitter(steps).submit(job)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "submit_unknown")
    assert ended.error_message and "may or may not have started" in ended.error_message
    assert provider.specs == []


async def test_an_idempotent_provider_is_asked_again_after_an_interruption(rig: Rig) -> None:
    provider = Scripted("offline", idempotent=True)
    steps = rig.steps(provider)
    job = await rig.claimed(variant="klein", request=make_request(variant="klein"))
    job = await steps.save(job, job.evolve(provider="offline", submit_started_at=rig.clock.now()))
    submitted = await submitter(steps).submit(job)
    assert submitted.status is JobStatus.SUBMITTED and len(provider.specs) == 1


async def test_no_provider_for_the_model_ends_the_job(rig: Rig) -> None:
    steps = rig.steps(Scripted("together"))  # Together does not offer klein
    job = await rig.claimed(variant="klein", request=make_request(variant="klein"))
    ended = await submitter(steps).submit(job)
    assert ended.error_code == "no_provider"
    assert ended.error_message == f"No image service offers FLUX.2 [klein] 4B. (job {job.id})"


async def test_a_refused_input_link_ends_the_job_before_any_submit(rig: Rig) -> None:
    provider = Scripted("bfl")
    steps = rig.steps(provider)
    request = make_request(input_images=("http://127.0.0.1:9/photo.png",))
    ended = await submitter(steps).submit(await rig.claimed(request=request))
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "input_refused")
    assert ended.error_message and ended.error_message.startswith("Your input image was refused. ")
    assert provider.specs == []


async def following(rig: Rig, steps: JobSteps, leader: Any) -> Any:
    follower = await rig.claimed(provider=CACHE_PROVIDER, provider_task={"follows": leader.id})
    return await submitter(steps).follow(follower)


async def test_a_follower_takes_its_leader_s_images(rig: Rig) -> None:
    steps = rig.steps()
    leader = await rig.claimed(images=("lead/1.png",), status=JobStatus.DELIVERED)
    job = await following(rig, steps, leader)
    assert (job.status, job.images) == (JobStatus.FETCHED, ("lead/1.png",))


async def test_a_follower_shares_its_leader_s_moderation(rig: Rig) -> None:
    steps = rig.steps()
    leader = await rig.claimed(status=JobStatus.MODERATED)
    job = await following(rig, steps, leader)
    assert (job.status, job.error_code) == (JobStatus.MODERATED, "moderated")


async def test_a_follower_of_a_failed_leader_makes_its_own_image(rig: Rig) -> None:
    steps = rig.steps()
    leader = await rig.claimed(status=JobStatus.FAILED)
    job = await following(rig, steps, leader)
    assert (job.status, job.provider, job.provider_task) == (JobStatus.QUEUED, None, None)


async def test_a_follower_of_a_running_leader_looks_again_later(rig: Rig) -> None:
    steps = rig.steps()
    leader = await rig.claimed(status=JobStatus.SUBMITTED)
    with pytest.raises(Released):
        await following(rig, steps, leader)
