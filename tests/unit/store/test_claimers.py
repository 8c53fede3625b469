"""Several claim loops in one worker: never more jobs at once than job slots, every job runs once,
and a stop ends every loop at once, idle or waiting for a slot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from bot.domain.models import JobStatus
from bot.providers.base import PollResult
from bot.providers.offline import OfflineProvider
from bot.providers.router import Router
from bot.runtime.app import App
from tests.factories import make_request
from tests.scenarios.test_image_concurrency import CountingDelivery


class SlowOffline(OfflineProvider):
    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.most = 0
        self.fetched: list[str] = []

    async def fetch(self, task: Mapping[str, Any], result: PollResult) -> list[bytes]:
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            await asyncio.sleep(0.05)
            self.fetched.append(str(task["id"]))
            return await super().fetch(task, result)
        finally:
            self.active -= 1


async def test_claim_loops_share_the_job_slots_and_each_job_runs_once(app: App) -> None:
    provider = SlowOffline()
    app.router = Router([provider])
    app.add_delivery("console", CountingDelivery())
    worker = await app.start_workers(concurrency=3, claimers=8, image_concurrency=8)
    assert len(worker._claim_tasks) == 3  # never more loops than slots
    accepted = [
        await app.service.imagine(
            make_request(user_id=f"u{i % 4}", prompt=f"a red kite {i}", width=512, height=512)
        )
        for i in range(12)
    ]
    jobs = [await app.service.wait(a.job.id, timeout=60) for a in accepted]
    assert [job.status for job in jobs] == [JobStatus.DELIVERED] * 12
    assert provider.most <= 3
    assert len(provider.fetched) == len(set(provider.fetched)) == 12


async def test_stop_ends_every_claim_loop_promptly(app: App) -> None:
    app.add_delivery("console", CountingDelivery())
    worker = await app.start_workers(concurrency=8, claimers=4, idle_poll=30.0)
    await asyncio.sleep(0.05)  # every loop is now waiting for work
    started = time.monotonic()
    await asyncio.wait_for(worker.stop(grace=1.0), 5)
    assert time.monotonic() - started < 2
    # Every loop has ended: a job queued now stays queued, claimed by nobody.
    accepted = await app.service.imagine(make_request(width=512, height=512))
    app.events.work_available()
    await asyncio.sleep(0.2)
    job = await app.service.job(accepted.job.id)
    assert job.status is JobStatus.QUEUED and job.lease_owner is None


async def test_an_idle_worker_asks_the_store_once_per_new_job(app: App) -> None:
    """The extra claim loops join only while claims come back full: one new job costs one
    claim, not one per loop (with PostgreSQL, every process wakes for every job)."""
    app.add_delivery("console", CountingDelivery())
    calls: list[int] = []
    claim_jobs = app.store.claim_jobs

    async def counted(*args: Any, **kwargs: Any) -> Any:
        jobs = await claim_jobs(*args, **kwargs)
        calls.append(len(jobs))
        return jobs

    app.store.claim_jobs = counted  # type: ignore[method-assign]
    await app.start_workers(concurrency=16, claimers=4)
    await asyncio.sleep(0.1)
    before = len(calls)
    for i in range(3):
        accepted = await app.service.imagine(
            make_request(user_id=f"u{i}", prompt=f"a quiet harbour {i}", width=512, height=512)
        )
        job = await app.service.wait(accepted.job.id, timeout=30)
        assert job.status is JobStatus.DELIVERED
    claims = calls[before:]
    assert claims.count(1) == 3
    assert len(claims) <= 4  # one per job, and perhaps one idle look
