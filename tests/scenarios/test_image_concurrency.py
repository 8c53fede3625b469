"""A burst of finished jobs downloads and posts its images a few at a time (memory stays bounded),
and every job is still delivered."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from bot.domain.models import Job, JobStatus
from bot.ports import OutImage, Progress
from bot.providers.base import PollResult
from bot.providers.offline import OfflineProvider
from bot.providers.router import Router
from bot.runtime.app import App
from tests.factories import make_request


class CountingOffline(OfflineProvider):
    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.most = 0
        self.gate = asyncio.Event()

    async def fetch(self, task: Mapping[str, Any], result: PollResult) -> list[bytes]:
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            await self.gate.wait()  # downloads hang until the test lets them finish
            return await super().fetch(task, result)
        finally:
            self.active -= 1


class CountingDelivery:
    def __init__(self) -> None:
        self.active = 0
        self.most = 0
        self.delivered: list[str] = []

    async def progress(self, job: Job, progress: Progress) -> None:
        return None

    async def deliver(self, job: Job, images: Sequence[OutImage]) -> Mapping[str, Any]:
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            await asyncio.sleep(0.01)  # an upload takes a moment
            self.delivered.append(job.id)
            return {"message_id": job.id}
        finally:
            self.active -= 1

    async def notify_failure(self, job: Job) -> None:
        return None


async def test_downloads_and_posts_are_bounded_and_every_job_is_delivered(app: App) -> None:
    provider = CountingOffline()
    app.router = Router([provider])
    delivery = CountingDelivery()
    app.add_delivery("console", delivery)
    await app.start_workers(concurrency=16, image_concurrency=2)
    accepted = [
        await app.service.imagine(
            make_request(user_id=f"u{i}", prompt=f"a small boat {i}", width=512, height=512)
        )
        for i in range(8)
    ]
    for _ in range(500):  # all 8 are ready to download; two start
        if provider.active == 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # room for a third to start, which must not happen
    assert provider.active == 2
    provider.gate.set()
    jobs = [await app.service.wait(a.job.id, timeout=60) for a in accepted]
    assert [job.status for job in jobs] == [JobStatus.DELIVERED] * 8
    assert sorted(delivery.delivered) == sorted(job.id for job in jobs)
    assert provider.most == 2 and delivery.most <= 2
