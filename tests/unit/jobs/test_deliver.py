"""From a finished task to the user: the images downloaded, cleaned and stored at once, each
download problem ended as the outcome table says, the safety re-check before posting, delivery
through the platform's port (or a retry when it fails), and the user told of a failed job."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from PIL import Image

from bot.domain.errors import DeliveryError, ProviderModerated, ProviderTimeout
from bot.domain.models import Job, JobStatus
from bot.jobs.deliver import Deliverer
from bot.jobs.steps import JobSteps, Released
from bot.ports import OutImage
from bot.providers.base import PollResult, PollState
from bot.providers.offline import OfflineProvider
from tests.factories import make_request, photo_with_gps
from tests.unit.jobs.conftest import Rig

READY = PollResult(PollState.READY, cost_usd=0.05)


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


class Fetching(OfflineProvider):
    name = "bfl"

    def __init__(self, answer: list[bytes] | Exception) -> None:
        super().__init__()
        self.answer = answer

    async def fetch(self, task: Mapping[str, Any], result: PollResult) -> list[bytes]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def submitted(rig: Rig, steps: JobSteps) -> Job:
    job = await rig.claimed(
        status=JobStatus.SUBMITTED,
        provider="bfl",
        provider_task={"id": "task-1"},
        submit_started_at=rig.clock.now(),
    )
    await steps.slots.acquire(job.id, "bfl")
    return job


async def test_the_images_are_cleaned_and_stored_at_once(rig: Rig) -> None:
    provider = Fetching([photo_with_gps(), png()])
    steps = rig.steps(provider)
    job = await submitted(rig, steps)
    fetched = await Deliverer(steps).fetch(job, provider, READY)
    assert fetched.status is JobStatus.FETCHED
    assert fetched.images == (f"{job.id}/1.jpg", f"{job.id}/2.png")
    assert fetched.cost_usd == 0.05  # the provider's own figure
    with Image.open(io.BytesIO(await steps.blobs.get(fetched.images[0]))) as photo:
        assert not photo.getexif()  # the GPS position is gone
    assert not steps.router.slot("bfl").locked()  # the provider's slot is free again
    assert rig.crashes == ["after_download"]


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (ProviderModerated("has_nsfw_concepts"), JobStatus.MODERATED, "moderated"),
        ([b"<html>not an image</html>"], JobStatus.FAILED, "bad_result"),
        (ProviderTimeout("download took too long"), JobStatus.FAILED, "download_failed"),
        ([], JobStatus.FAILED, "no_image"),
    ],
)
async def test_a_result_that_cannot_be_used_ends_the_job(
    rig: Rig, answer: list[bytes] | Exception, status: JobStatus, code: str
) -> None:
    provider = Fetching(answer)
    steps = rig.steps(provider)
    ended = await Deliverer(steps).fetch(await submitted(rig, steps), provider, READY)
    assert (ended.status, ended.error_code, ended.images) == (status, code, ())
    assert await rig.store.get_job(ended.id) == ended
    assert rig.crashes == []


async def fetched(rig: Rig, steps: JobSteps, **overrides: Any) -> Job:
    await steps.blobs.put("j/1.png", png(), "image/png")
    return await rig.claimed(status=JobStatus.FETCHED, images=("j/1.png",), **overrides)


async def test_a_fetched_job_is_posted_once_and_marked_delivered(rig: Rig) -> None:
    steps = rig.steps()
    job = await fetched(rig, steps)
    done = await Deliverer(steps).deliver(job)
    assert (done.status, done.outcome_sent, done.delivery) == (
        JobStatus.DELIVERED,
        True,
        {"message": f"m-{job.id}"},
    )
    assert done.lease_owner is None
    [(_, images)] = rig.port.delivered
    assert [(i.filename, i.content_type, i.width, i.height) for i in images] == [
        (f"imagine-{job.id}-1.png", "image/png", 64, 48)
    ]
    assert rig.crashes == ["before_posting", "after_posting"]


async def test_an_image_the_channel_no_longer_allows_is_not_posted(rig: Rig) -> None:
    steps = rig.steps()
    job = await fetched(rig, steps, request=make_request(safety_tolerance=6))
    ended = await Deliverer(steps).deliver(job)
    assert (ended.status, ended.error_code) == (JobStatus.FAILED, "safety_recheck")
    assert rig.port.delivered == []


class Refusing:
    def __init__(self, retryable: bool) -> None:
        self.retryable = retryable
        self.calls = 0

    async def progress(self, job: Job, progress: object) -> None:
        pass

    async def deliver(self, job: Job, images: Sequence[OutImage]) -> Mapping[str, Any]:
        self.calls += 1
        raise DeliveryError("platform said no", retryable=self.retryable)

    async def notify_failure(self, job: Job) -> None:
        self.calls += 1
        raise DeliveryError("platform said no", retryable=self.retryable)


async def test_a_refused_post_is_tried_again_later(rig: Rig) -> None:
    steps = rig.steps()
    steps.deliveries = {"console": Refusing(retryable=True)}
    job = await fetched(rig, steps)
    with pytest.raises(Released):
        await Deliverer(steps).deliver(job)
    stored = await rig.store.get_job(job.id)
    assert stored is not None and (stored.status, stored.attempts) == (JobStatus.FETCHED, 1)


async def test_a_post_refused_for_good_fails_the_job_without_telling_through_the_platform(
    rig: Rig,
) -> None:
    steps = rig.steps()
    port = Refusing(retryable=False)
    steps.deliveries = {"console": port}
    job = await fetched(rig, steps)
    ended = await Deliverer(steps).deliver(job)
    assert (ended.status, ended.error_code, ended.outcome_sent) == (
        JobStatus.FAILED,
        "delivery_failed",
        True,
    )
    assert ended.error_message == f"The image could not be posted. (job {job.id})"
    assert port.calls == 1


async def test_a_failed_job_s_user_is_told_once(rig: Rig) -> None:
    steps = rig.steps()
    job = await rig.claimed(status=JobStatus.FAILED, error_message="nope (job x)")
    told = await Deliverer(steps).notify(job)
    assert told.outcome_sent and told.lease_owner is None
    assert [j.id for j in rig.port.failures] == [job.id]


async def test_a_job_of_a_platform_this_process_does_not_serve_is_handed_back(rig: Rig) -> None:
    steps = rig.steps()
    steps.deliveries = {}
    job = await fetched(rig, steps)
    with pytest.raises(Released):
        await Deliverer(steps).deliver(job)
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.not_before == rig.clock.now() + 30.0
