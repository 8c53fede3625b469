"""The worker pool: claims jobs with a lease, keeps the leases alive, and runs each job through its
steps (submit, wait, deliver), every step stored before the next starts, so a restarted process
resumes each job where it stood."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Mapping

from bot.domain.catalog import Catalog
from bot.domain.clock import Clock
from bot.domain.errors import ProviderError
from bot.domain.models import CACHE_PROVIDER, Job, JobStatus
from bot.domain.policy import Policy
from bot.jobs.deliver import Deliverer
from bot.jobs.events import JobEvents
from bot.jobs.outcomes import INTERNAL, QUEUE_DEADLINE, Step, outcome_for
from bot.jobs.steps import CRASH_POINTS, JobSteps, LeaseLost, Released, WorkerConfig
from bot.jobs.submit import Submitter
from bot.jobs.wait import Waiter
from bot.net.guard import SafeFetcher
from bot.ops import metrics
from bot.ops.logs import hold_job_secrets, log_job_step, release_job_secrets
from bot.ports import BlobStore, DeliveryPort
from bot.providers.router import Router
from bot.store import Store

log = logging.getLogger(__name__)

__all__ = ["CRASH_POINTS", "Worker", "WorkerConfig"]


class Worker:
    def __init__(
        self,
        *,
        store: Store,
        router: Router,
        blobs: BlobStore,
        deliveries: Mapping[str, DeliveryPort],
        events: JobEvents,
        clock: Clock,
        catalog: Catalog,
        config: WorkerConfig,
        policy: Policy | None = None,
        rng: random.Random | None = None,
        input_fetcher: SafeFetcher,
    ) -> None:
        self._store = store
        self._events = events
        self._clock = clock
        self.config = config
        self._steps = JobSteps(
            store=store,
            router=router,
            blobs=blobs,
            deliveries=deliveries,
            events=events,
            clock=clock,
            catalog=catalog,
            config=config,
            policy=policy or Policy(),
            rng=rng or random.Random(),
        )
        self._submitter = Submitter(self._steps, input_fetcher)
        self._waiter = Waiter(self._steps)
        self._deliverer = Deliverer(self._steps)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._claim_tasks: list[asyncio.Task[None]] = []
        # Set while claims come back full: the claim loops besides the lead one work then.
        self._deep_queue = asyncio.Event()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._capacity = asyncio.Semaphore(config.concurrency)

    @property
    def worker_id(self) -> str:
        return self.config.worker_id

    @property
    def busy(self) -> int:
        return len(self._running)

    async def start(self) -> None:
        await self.take_over_dead_leases()
        loops = max(1, min(self.config.claimers, self.config.concurrency))
        self._claim_tasks = [
            asyncio.create_task(self._claim_loop(lead=i == 0), name=f"worker-claim-{i}")
            for i in range(loops)
        ]
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop(), name="worker-heartbeat")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let running jobs finish within ``grace``, then hand back their leases."""
        self._stopping.set()
        self._events.work_available()
        self._deep_queue.set()
        # With every slot busy the claim loops wait for a free one: this wakes one to see the
        # stop, and each loop that stops hands the slot on to wake the next.
        self._capacity.release()
        if self._claim_tasks:
            await asyncio.gather(*self._claim_tasks)
        running = list(self._running.values())
        if running:
            _, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._heartbeat_task:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)

    async def take_over_dead_leases(self) -> None:
        """Release leases of workers on this host whose process is gone (a crash or SIGKILL)."""
        host = socket.gethostname()
        for owner in await self._store.lease_owners():
            parts = owner.split(":")
            if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
                continue
            if owner == self.worker_id or _pid_alive(int(parts[1])):
                continue
            count = await self._store.release_leases_of(owner)
            log.info("took over %d job(s) of dead worker %s", count, owner)

    # The loops ----------------------------------------------------------------------------------

    async def _claim_loop(self, *, lead: bool) -> None:
        """The lead loop claims whenever work may be there; the others join only while claims
        come back full (a deep queue), so an idle worker asks the store once per wake-up."""
        while not self._stopping.is_set():
            if not lead:
                await self._deep_queue.wait()
                if self._stopping.is_set():
                    break
            await self._capacity.acquire()
            if self._stopping.is_set():
                self._capacity.release()
                break
            # The free slots, up to a batch, are taken in one claim.
            slots = 1
            while slots < self.config.claim_batch and not self._capacity.locked():
                await self._capacity.acquire()  # free: returns at once
                slots += 1
            try:
                jobs = await self._store.claim_jobs(
                    self.worker_id,
                    self._clock.now(),
                    self.config.lease_seconds,
                    self.config.platforms,
                    slots,
                )
            except Exception:
                log.exception("claiming a job failed; trying again shortly")
                jobs = []
            self._release_capacity(slots - len(jobs))
            for job in jobs:
                if job.id in self._running:
                    # Our own lease ran out while we still work on it (a stalled heartbeat); the
                    # claim renewed it. A second task on the same job would post its outcome twice.
                    self._capacity.release()
                    continue
                task = asyncio.create_task(self._process(job), name=f"job-{job.id}")
                self._running[job.id] = task
            if len(jobs) == slots:
                self._deep_queue.set()
                continue
            # Nothing more to claim for now.
            self._deep_queue.clear()
            if self._stopping.is_set():
                break
            if lead:
                await self._events.wait_for_work(self.config.idle_poll)

    def _release_capacity(self, slots: int) -> None:
        for _ in range(slots):
            self._capacity.release()

    async def _heartbeat_loop(self) -> None:
        interval = self.config.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            ids = list(self._running)
            if not ids:
                continue
            try:
                held = await self._store.renew_leases(
                    self.worker_id, ids, self._clock.now(), self.config.lease_seconds
                )
            except Exception:
                log.exception("renewing leases failed")
                continue
            for job_id in set(ids) - held:
                task = self._running.get(job_id)
                if task is not None:
                    log.warning("job %s: lease lost, stopping work on it", job_id)
                    task.cancel()

    # One job ------------------------------------------------------------------------------------

    async def _process(self, job: Job) -> None:
        held_secrets = hold_job_secrets(job.request.reply)
        try:
            while not job.outcome_sent:
                started, before = self._clock.monotonic(), job
                job = await self._step(job)
                self._record_step(before, job, self._clock.monotonic() - started)
        except (LeaseLost, Released):
            pass
        except asyncio.CancelledError:
            await asyncio.shield(self._hand_back(job))
            raise
        except Exception:
            log.exception("job %s: unexpected error at status %s", job.id, job.status)
            await self._retry_later(job)
        finally:
            self._steps.slots.release(job.id)
            self._running.pop(job.id, None)
            self._capacity.release()
            release_job_secrets(held_secrets)

    async def _step(self, job: Job) -> Job:
        """Run the job's next step from the status it is stored at; return it as stored after."""
        if job.status.is_terminal:
            return await self._deliverer.notify(job)
        if job.status is JobStatus.QUEUED:
            if self._clock.now() - job.created_at > self.config.queue_deadline:
                return await self._steps.finish(job, QUEUE_DEADLINE)
            if job.provider == CACHE_PROVIDER:
                return await self._submitter.follow(job)
            return await self._submitter.submit(job)
        if job.status is JobStatus.SUBMITTED:
            assert job.provider
            provider = self._steps.router.get(job.provider)
            await self._steps.slots.acquire(job.id, provider.name)
            try:
                result = await self._waiter.until_ready(job, provider)
            except ProviderError as exc:
                outcome = outcome_for(Step.POLL, exc)
                log.warning("job %s: %s: %s (%s)", job.id, provider.name, exc, outcome.code)
                reason = getattr(exc, "reason", None)
                return await self._steps.finish(
                    job, outcome, said=f" It said: {reason}" if reason else ""
                )
            return await self._deliverer.fetch(job, provider, result)
        if job.status is JobStatus.FETCHED:
            return await self._deliverer.deliver(job)
        raise AssertionError(f"unhandled status {job.status}")  # pragma: no cover

    def _record_step(self, old: Job, new: Job, seconds: float) -> None:
        step = metrics.job_step(old, new, seconds)
        if step != "submit":  # logged as it happens, before anything can interrupt the job
            log_job_step(log, new, step, seconds)

    async def _hand_back(self, job: Job) -> None:
        try:
            await self._store.release_job(job.id, self.worker_id, self._clock.now())
        except Exception:
            log.exception("job %s: could not hand back its lease", job.id)

    async def _retry_later(self, job: Job) -> None:
        """After an unexpected error: the job as stored now is tried again, or ended and its user
        told once its attempts are spent (unless it is no longer this worker's)."""
        current = await self._store.get_job(job.id)
        if current is None or current.outcome_sent or current.lease_owner != self.worker_id:
            return
        try:
            ended = await self._steps.retry_or_finish(current, INTERNAL)
            # Told now: the job's lease is still this worker's, so no claim would find it soon.
            await self._deliverer.notify(ended)
        except (LeaseLost, Released):
            pass
        except Exception:
            log.exception("job %s: could not end it after an unexpected error", job.id)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
