"""The pool: jobs claimed and run from their stored status to one outcome, an unexpected error
retried and then ended, the queue deadline, leases of dead workers on this host taken over, and a
stop that hands back what it cannot finish."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import httpx

from bot.domain.models import Job, JobStatus
from bot.jobs.pool import Worker
from bot.net.guard import SafeFetcher
from bot.providers.base import GenerationSpec, PollResult, PollState, Submission
from bot.providers.offline import OfflineProvider
from tests import store_helpers
from tests.factories import make_job, make_request
from tests.unit.jobs.conftest import WORKER, Rig


def worker_for(rig: Rig, *providers: Any, **config: Any) -> Worker:
    steps = rig.steps(*providers, **config)
    return Worker(
        store=steps.store,
        router=steps.router,
        blobs=steps.blobs,
        deliveries=steps.deliveries,
        events=steps.events,
        clock=steps.clock,
        catalog=steps.catalog,
        config=steps.config,
        policy=steps.policy,
        rng=steps.rng,
        # No job here has an input image: a fetcher that is never asked needs no open client.
        input_fetcher=SafeFetcher(httpx.AsyncClient()),
    )


async def outcome_of(rig: Rig, job_id: str) -> Job:
    async with asyncio.timeout(20):
        while True:
            job = await rig.store.get_job(job_id)
            assert job is not None
            if job.outcome_sent:
                return job
            await asyncio.sleep(0.01)


async def queued(rig: Rig, **overrides: Any) -> Job:
    request = make_request(variant="klein", **overrides)
    now = rig.clock.now()
    job = make_job(request=request, variant="klein", width=256, height=256, created_at=now)
    stored, _ = await store_helpers.enqueue_job(rig.store, job)
    return stored


async def test_a_queued_job_runs_through_every_step_to_one_delivery(rig: Rig) -> None:
    worker = worker_for(rig, OfflineProvider(clock=rig.clock))
    job = await queued(rig)
    await worker.start()
    try:
        done = await outcome_of(rig, job.id)
    finally:
        await worker.stop(grace=1)
    assert done.status is JobStatus.DELIVERED and done.provider == "offline"
    assert [j.id for j, _ in rig.port.delivered] == [job.id]
    assert worker.busy == 0


class Failing(OfflineProvider):
    """A task that ends in failure at the provider."""

    async def poll(self, task: Mapping[str, Any]) -> PollResult:
        return PollResult(PollState.FAILED, message="Task failed")


async def test_a_task_failed_at_the_provider_tells_the_user_why(rig: Rig) -> None:
    worker = worker_for(rig, Failing(clock=rig.clock))
    job = await queued(rig)
    await worker.start()
    try:
        done = await outcome_of(rig, job.id)
    finally:
        await worker.stop(grace=1)
    assert (done.status, done.error_code) == (JobStatus.FAILED, "provider_failed")
    [told] = rig.port.failures
    assert told.error_message == f"The image service could not make it. (job {job.id})"


class Broken(OfflineProvider):
    async def submit(self, spec: GenerationSpec) -> Submission:
        raise RuntimeError("a bug in a provider")


async def test_an_unexpected_error_is_retried_then_ends_the_job(rig: Rig) -> None:
    worker = worker_for(rig, Broken(clock=rig.clock), max_attempts=1)
    job = await queued(rig)
    await worker.start()
    try:
        done = await outcome_of(rig, job.id)
    finally:
        await worker.stop(grace=1)
    assert (done.status, done.error_code) == (JobStatus.FAILED, "internal")
    assert [j.id for j in rig.port.failures] == [job.id]


async def test_a_job_queued_past_its_deadline_expires_without_a_provider(rig: Rig) -> None:
    provider = Broken(clock=rig.clock)  # would fail loudly if asked
    worker = worker_for(rig, provider, queue_deadline=600.0)
    job = await queued(rig)
    rig.clock.advance(601)
    await worker.start()
    try:
        done = await outcome_of(rig, job.id)
    finally:
        await worker.stop(grace=1)
    assert (done.status, done.error_code, done.provider) == (
        JobStatus.EXPIRED,
        "queue_deadline",
        None,
    )


async def test_leases_of_a_dead_worker_on_this_host_are_taken_over(rig: Rig) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead = f"{socket.gethostname()}:{gone.stdout.strip()}:abcdef"
    alive = f"{socket.gethostname()}:{os.getpid()}:123456"
    for owner in (dead, alive):
        job = await queued(rig, user_id=owner)
        [claimed] = await rig.store.claim_jobs(
            owner, rig.clock.now(), 600, frozenset({"console"}), 1
        )
        assert claimed.id == job.id
    worker = worker_for(rig, OfflineProvider(clock=rig.clock))
    await worker.take_over_dead_leases()  # as at start, without starting to claim
    assert await rig.store.lease_owners() == {alive}
    assert worker.worker_id == WORKER


class Endless(OfflineProvider):
    """A poll that never answers."""

    async def poll(self, task: Mapping[str, Any]) -> PollResult:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_stop_hands_back_a_job_it_cannot_finish_within_the_grace(rig: Rig) -> None:
    worker = worker_for(rig, Endless(clock=rig.clock))
    job = await queued(rig)
    await worker.start()
    async with asyncio.timeout(20):
        while (stored := await rig.store.get_job(job.id)) and stored.status is JobStatus.QUEUED:
            await asyncio.sleep(0.01)
    await worker.stop(grace=0.1)
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.status is JobStatus.SUBMITTED
    assert stored.lease_owner is None and stored.provider_task_id
    assert worker.busy == 0
