"""A worker's shared parts on a real SQLite file and a manual clock, with jobs claimed by it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.domain.catalog import load_catalog
from bot.domain.clock import ManualClock
from bot.domain.models import Job
from bot.domain.policy import Policy
from bot.jobs.events import JobEvents
from bot.jobs.steps import JobSteps, WorkerConfig
from bot.ports import OutImage, Progress
from bot.providers.base import Provider
from bot.providers.router import Router
from bot.store import Store, open_store
from tests import store_helpers
from tests.factories import make_job

WORKER = "host:1:w1"


@dataclass
class RecordingPort:
    delivered: list[tuple[Job, list[OutImage]]] = field(default_factory=list)
    failures: list[Job] = field(default_factory=list)
    progress_seen: list[Progress] = field(default_factory=list)

    async def progress(self, job: Job, progress: Progress) -> None:
        self.progress_seen.append(progress)

    async def deliver(self, job: Job, images: Sequence[OutImage]) -> Mapping[str, Any]:
        self.delivered.append((job, list(images)))
        return {"message": f"m-{job.id}"}

    async def notify_failure(self, job: Job) -> None:
        self.failures.append(job)


@dataclass
class Rig:
    store: Store
    clock: ManualClock
    port: RecordingPort
    crashes: list[str]
    blobs_dir: Path

    def steps(self, *providers: Provider, **config: Any) -> JobSteps:
        from bot.blobs.local import LocalBlobStore

        return JobSteps(
            store=self.store,
            router=Router(list(providers), clock=self.clock),
            blobs=LocalBlobStore(self.blobs_dir),
            deliveries={"console": self.port},
            events=JobEvents(),
            clock=self.clock,
            catalog=load_catalog(),
            config=WorkerConfig(
                platforms=frozenset({"console"}),
                worker_id=WORKER,
                crash_hook=self.crashes.append,
                **config,
            ),
            policy=Policy(),
            rng=random.Random(7),
        )

    async def claimed(self, **overrides: Any) -> Job:
        """A new job, stored and claimed by this rig's worker."""
        job = make_job(now=self.clock.now(), **overrides)
        await store_helpers.enqueue_job(self.store, job)
        [claimed] = await self.store.claim_jobs(
            WORKER, self.clock.now(), 60.0, frozenset({"console"}), 1
        )
        assert claimed.id == job.id
        return claimed


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with open_store(f"sqlite:///{tmp_path / 'jobs.db'}") as store:
        yield Rig(store, ManualClock(), RecordingPort(), [], tmp_path / "images")


@pytest.fixture
def service_parts(rig: Rig) -> dict[str, Any]:
    """What the use cases are built from, on the rig's store and clock."""
    return {
        "store": rig.store,
        "catalog": load_catalog(),
        "clock": rig.clock,
        "events": JobEvents(),
        "policy": Policy(),
    }
