"""What every step of a job shares: the worker's settings and parts, storing a step under the job's
lease, ending or handing back a job, and the provider slots a job holds."""

from __future__ import annotations

import logging
import os
import random
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bot.domain.catalog import Catalog
from bot.domain.clock import Clock
from bot.domain.models import Job
from bot.domain.policy import Policy
from bot.jobs.events import JobEvents
from bot.jobs.outcomes import Outcome
from bot.ports import BlobStore, DeliveryPort, Progress
from bot.providers.router import Router
from bot.store import Store

log = logging.getLogger(__name__)

# The named points of a job where the worker calls its crash hook: the steps a crash test kills the
# process at (RELIABILITY 21).
CRASH_POINTS = (
    "before_submit",
    "after_submit",
    "while_polling",
    "after_download",
    "before_posting",
    "after_posting",
)

CrashHook = Callable[[str], None]


class LeaseLost(Exception):
    """Another actor changed the job (cancel, take-over): this worker stops touching it."""


class Released(Exception):
    """The job was handed back to the queue to be tried again later."""


@dataclass(frozen=True)
class WorkerConfig:
    platforms: frozenset[str]
    concurrency: int = 32
    # Claim loops run side by side while the queue is deep: a claim is a round trip to the
    # store, so one loop alone caps how fast a deep queue is picked up (SQLite commits the claims
    # of several loops together). An idle worker claims with one loop only. Never more loops
    # than job slots.
    claimers: int = 4
    # Each claim takes up to this many jobs when as many slots are free (on SQLite a claim costs
    # about the same whatever its size, so a burst is picked up in a few claims).
    claim_batch: int = 32
    lease_seconds: float = 60.0
    # A queued job not started within this many seconds tells its user instead of running late.
    queue_deadline: float = 600.0
    # How long a submitted job may wait for its provider before it fails.
    generation_timeout: float = 480.0
    max_attempts: int = 5
    idle_poll: float = 1.0
    progress_interval: float = 5.0
    max_upload_bytes: int | None = None
    # Jobs whose images are in memory at once (downloading and cleaning, or posting): bounds
    # the memory a burst of large images takes (a 4-megapixel image decodes to 12 MB or more).
    image_concurrency: int = 8
    # Called with each of CRASH_POINTS as a job passes it; only test configurations set one.
    crash_hook: CrashHook | None = None
    worker_id: str = field(default_factory=lambda: default_worker_id())


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{random.randrange(16**6):06x}"


def backoff(attempt: int, rng: random.Random, *, base: float = 2.0, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter."""
    return rng.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))


class ProviderSlots:
    """The provider concurrency slot each running job holds (at most one per job), so a job moving
    to another provider, or ending, gives its slot back exactly once."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._held: dict[str, str] = {}

    async def acquire(self, job_id: str, provider: str) -> None:
        if self._held.get(job_id) == provider:
            return
        self.release(job_id)
        await self._router.slot(provider).acquire()
        self._held[job_id] = provider

    def release(self, job_id: str) -> None:
        provider = self._held.pop(job_id, None)
        if provider is not None:
            self._router.slot(provider).release()


@dataclass
class JobSteps:
    """The worker's parts, shared by submit, wait and deliver, and the ways a step is stored."""

    store: Store
    router: Router
    blobs: BlobStore
    deliveries: Mapping[str, DeliveryPort]
    events: JobEvents
    clock: Clock
    catalog: Catalog
    config: WorkerConfig
    policy: Policy
    rng: random.Random
    slots: ProviderSlots = field(init=False)

    def __post_init__(self) -> None:
        self.slots = ProviderSlots(self.router)

    @property
    def worker_id(self) -> str:
        return self.config.worker_id

    def crash_point(self, name: str) -> None:
        """Give a test's crash hook its chance to end the process here."""
        if self.config.crash_hook is not None:
            self.config.crash_hook(name)

    async def save(self, old: Job, new: Job) -> Job:
        """Store ``new`` if this worker still holds the job at ``old``'s status; else LeaseLost."""
        new = new.evolve(updated_at=self.clock.now())
        if not await self.store.save_job_step(new, worker_id=self.worker_id, expected=old.status):
            raise LeaseLost(old.id)
        await self.events.job_changed(new)
        return new

    async def finish(self, job: Job, outcome: Outcome, **values: object) -> Job:
        """End the job with ``outcome`` (its user is told at the next step)."""
        log.info("job %s: %s (%s)", job.id, outcome.status.value, outcome.code)
        return await self.save(
            job,
            job.evolve(
                status=outcome.status,
                error_code=outcome.code,
                error_message=f"{outcome.user_message(**values)} (job {job.id})",
                finished_at=self.clock.now(),
            ),
        )

    async def requeue(self, job: Job, attempts: int, delay: float) -> None:
        """Hand the job back to the queue, to be tried again after ``delay``; raises Released."""
        await self.save(
            job,
            job.evolve(
                attempts=attempts,
                not_before=self.clock.now() + delay,
                lease_owner=None,
                lease_expires_at=None,
            ),
        )
        log.info("job %s: handed back, next try in %.1f s", job.id, delay)
        raise Released(job.id)

    async def retry_or_finish(self, job: Job, outcome: Outcome, *, at_least: float = 0.0) -> Job:
        """Another try later (after a backoff, and at least ``at_least`` seconds): raises
        Released; or, once the job's attempts are spent, its end with ``outcome``."""
        attempts = job.attempts + 1
        if attempts < self.config.max_attempts:
            await self.requeue(job, attempts, max(at_least, backoff(attempts, self.rng)))
        ended = await self.finish(job, outcome)
        self.events.work_available()
        return ended

    def delivery_port(self, job: Job) -> DeliveryPort | None:
        return self.deliveries.get(job.request.platform)

    async def progress(self, job: Job, progress: Progress) -> None:
        port = self.delivery_port(job)
        if port is None:
            return
        try:
            await port.progress(job, progress)
        except Exception as exc:  # progress is best effort; the outcome is what counts
            log.info("job %s: progress update failed: %s", job.id, type(exc).__name__)
