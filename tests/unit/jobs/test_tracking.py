"""An existing job: found or JobNotFound, waited for (with or without a timeout), noted for its
adapter, and cancelled by its requester or a moderator only."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.domain.errors import JobNotFound, PolicyRefusal
from bot.domain.models import JobStatus
from bot.jobs.tracking import Tracking
from tests.unit.jobs.conftest import Rig


@pytest.fixture
def tracking(service_parts: dict[str, Any]) -> Tracking:
    return Tracking(
        store=service_parts["store"], clock=service_parts["clock"], events=service_parts["events"]
    )


async def test_an_unknown_job_is_not_found(tracking: Tracking) -> None:
    with pytest.raises(JobNotFound, match=r"No job nope\."):
        await tracking.job("nope")


async def test_wait_returns_an_unfinished_job_at_its_timeout(rig: Rig, tracking: Tracking) -> None:
    job = await rig.claimed()

    async def time_passes() -> None:
        for _ in range(100):
            rig.clock.advance(1)
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(time_passes())
    waited = await asyncio.wait_for(tracking.wait(job.id, timeout=2), 10)
    ticking.cancel()
    assert waited.id == job.id and not waited.outcome_sent


async def test_wait_returns_once_the_outcome_is_sent(rig: Rig, tracking: Tracking) -> None:
    job = await rig.claimed()
    waiting = asyncio.create_task(tracking.wait(job.id))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    done = job.evolve(status=JobStatus.FAILED, outcome_sent=True)
    assert await rig.store.save_job_step(done, worker_id=job.lease_owner or "", expected=job.status)
    finished = await asyncio.wait_for(waiting, 5)  # found at the next look, within a second
    assert finished.outcome_sent


async def test_note_delivery_keeps_what_the_adapter_needs(rig: Rig, tracking: Tracking) -> None:
    job = await rig.claimed()
    assert await tracking.note_delivery(job.id, {"progress_message": "m1"})
    assert (await tracking.job(job.id)).delivery == {"progress_message": "m1"}
    assert not await tracking.note_delivery("nope", {"x": "y"})


async def test_only_the_requester_or_a_moderator_cancels(rig: Rig, tracking: Tracking) -> None:
    job = await rig.claimed()
    with pytest.raises(PolicyRefusal) as refused:
        await tracking.cancel(job.id, user_id="mallory")
    assert refused.value.code == "not_owner"
    cancelled = await tracking.cancel(job.id, user_id="mallory", is_admin=True)
    assert cancelled.status is JobStatus.CANCELLED
    assert (await tracking.job(job.id)).status is JobStatus.CANCELLED
