"""The worker pool: claims jobs with a lease and moves each through the state machine, storing
every step before the next starts, so a restarted process resumes each job where it stood."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import signal
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot import images, metrics
from bot.blobs import BlobStore
from bot.catalog import Catalog
from bot.clock import Clock
from bot.delivery import ChannelCheck, DeliveryPort, OutImage, Progress
from bot.errors import (
    DeliveryError,
    DownloadRefused,
    InvalidImage,
    ProviderError,
    ProviderModerated,
    ProviderTimeout,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
)
from bot.events import JobEvents
from bot.logs import hold_job_secrets, log_job_step, release_job_secrets, step_fields
from bot.models import CACHE_PROVIDER, Job, JobStatus
from bot.netguard import SafeFetcher
from bot.policy import Policy
from bot.providers.base import GenerationSpec, PollResult, PollState, Provider
from bot.providers.polling import Schedule, next_poll_delay
from bot.providers.router import Router
from bot.store import Store

log = logging.getLogger(__name__)

# Named points where a test may have the process kill itself (IMAGINE_TEST_CRASH_AT).
__all__ = ["CRASH_POINTS", "LeaseLost", "Released", "Worker", "WorkerConfig", "next_poll_delay"]

CRASH_POINTS = (
    "before_submit",
    "after_submit",
    "while_polling",
    "after_download",
    "before_posting",
    "after_posting",
)


def crashpoint(name: str, configured: str | None) -> None:
    if configured == name:
        log.warning("test crash point %s reached: killing the process", name)
        os.kill(os.getpid(), signal.SIGKILL)


# How often a job sharing another job's provider call looks whether that one has finished.
FOLLOW_INTERVAL = 1.0


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
    # Each claim takes up to this many jobs when as many slots are free.
    claim_batch: int = 8
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
    crash_at: str | None = None
    worker_id: str = field(default_factory=lambda: default_worker_id())


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{random.randrange(16**6):06x}"


def backoff(attempt: int, rng: random.Random, *, base: float = 2.0, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter."""
    return rng.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))


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
        input_fetcher: SafeFetcher | None = None,
    ) -> None:
        self._store = store
        self._router = router
        self._blobs = blobs
        self._deliveries = deliveries
        self._events = events
        self._clock = clock
        self._catalog = catalog
        self.config = config
        self._policy = policy or Policy()
        self._rng = rng or random.Random()
        self._input_fetcher = input_fetcher or SafeFetcher()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._slots_held: dict[str, str] = {}
        self._stopping = asyncio.Event()
        self._claim_tasks: list[asyncio.Task[None]] = []
        # Set while claims come back full: the claim loops besides the lead one work then.
        self._deep_queue = asyncio.Event()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._capacity = asyncio.Semaphore(config.concurrency)
        # A cancel in this process wakes the job's wait at once (other processes see it at the
        # next poll).
        events.add_listener(self._on_job_change)
        self._downloads = asyncio.Semaphore(config.image_concurrency)
        self._uploads = asyncio.Semaphore(config.image_concurrency)

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
            await asyncio.shield(self._hand_back(job, delay=0.0))
            raise
        except Exception:
            log.exception("job %s: unexpected error at status %s", job.id, job.status)
            await self._retry_later(job, code="internal", message="Something went wrong.")
        finally:
            self._release_slot(job.id)
            self._running.pop(job.id, None)
            self._capacity.release()
            release_job_secrets(held_secrets)

    def _record_step(self, old: Job, new: Job, seconds: float) -> None:
        step = metrics.job_step(old, new, seconds)
        if step != "submit":  # logged as it happens, before anything can interrupt the job
            log_job_step(log, new, step, seconds)

    async def _hand_back(self, job: Job, delay: float) -> None:
        try:
            await self._store.release_job(job.id, self.worker_id, self._clock.now() + delay)
        except Exception:
            log.exception("job %s: could not hand back its lease", job.id)

    async def _retry_later(self, job: Job, *, code: str, message: str) -> None:
        current = await self._store.get_job(job.id)
        if current is None or current.outcome_sent or current.lease_owner != self.worker_id:
            return
        attempts = current.attempts + 1
        try:
            if attempts >= self.config.max_attempts:
                await self._finish(current, JobStatus.FAILED, code, message)
                self._events.work_available()
            else:
                await self._requeue(current, attempts, backoff(attempts, self._rng))
        except (LeaseLost, Released):
            pass

    # One step of the state machine ---------------------------------------------------------------

    async def _step(self, job: Job) -> Job:
        if job.status.is_terminal:
            return await self._notify(job)
        if job.status is JobStatus.QUEUED:
            if self._clock.now() - job.created_at > self.config.queue_deadline:
                return await self._finish(
                    job,
                    JobStatus.EXPIRED,
                    "queue_deadline",
                    "The bot was too busy to start your image in time. Please try again.",
                )
            if job.provider == CACHE_PROVIDER:
                return await self._follow(job)
            return await self._submit(job)
        if job.status is JobStatus.SUBMITTED:
            return await self._wait_and_fetch(job)
        if job.status is JobStatus.FETCHED:
            async with self._uploads:
                return await self._deliver(job)
        raise AssertionError(f"unhandled status {job.status}")  # pragma: no cover

    async def _save(self, old: Job, new: Job) -> Job:
        new = new.evolve(updated_at=self._clock.now())
        if not await self._store.save_job_step(new, worker_id=self.worker_id, expected=old.status):
            raise LeaseLost(old.id)
        await self._events.job_changed(new)
        return new

    async def _finish(self, job: Job, status: JobStatus, code: str, message: str) -> Job:
        log.info("job %s: %s (%s)", job.id, status.value, code)
        return await self._save(
            job,
            job.evolve(
                status=status,
                error_code=code,
                error_message=f"{message} (job {job.id})",
                finished_at=self._clock.now(),
            ),
        )

    async def _requeue(self, job: Job, attempts: int, delay: float) -> None:
        await self._save(
            job,
            job.evolve(
                attempts=attempts,
                not_before=self._clock.now() + delay,
                lease_owner=None,
                lease_expires_at=None,
            ),
        )
        log.info("job %s: handed back, next try in %.1f s", job.id, delay)
        raise Released(job.id)

    async def _submit(self, job: Job) -> Job:
        variant = self._catalog.variants[job.variant]
        if job.submit_started_at is not None and job.provider:
            provider = self._router.get(job.provider)
            if not provider.submit_is_idempotent:
                return await self._finish(
                    job,
                    JobStatus.FAILED,
                    "submit_unknown",
                    "The image service may or may not have started your image; to avoid "
                    "paying twice it was not sent again. Please try again.",
                )
        candidates = self._router.candidates(
            variant, needs_input_images=bool(job.request.input_images)
        )
        if not candidates:
            return await self._finish(
                job, JobStatus.FAILED, "no_provider", f"No image service offers {variant.label}."
            )
        crashpoint("before_submit", self.config.crash_at)
        try:
            inputs = await self._input_images(job)
        except DownloadRefused as exc:
            log.info("job %s: input image refused: %s", job.id, exc)
            return await self._finish(
                job, JobStatus.FAILED, "input_refused", f"Your input image was refused. {exc}"
            )
        except InvalidImage as exc:
            log.info("job %s: input image invalid: %s", job.id, exc)
            return await self._finish(
                job, JobStatus.FAILED, "input_invalid", f"Your input image is not usable: {exc}."
            )
        tolerance = job.request.safety_tolerance
        if tolerance is None:  # a job stored before tolerances were fixed at acceptance
            settings = await self._store.get_settings(job.community_id)
            tolerance = self._policy.safety_tolerance(job.request, settings, variant)
        retry_after: float | None = None
        last_error = "All image services are busy right now."
        for provider, model in candidates:
            spec = GenerationSpec(
                job_id=job.id,
                prompt=job.request.prompt,
                variant=variant,
                model=model,
                width=job.width,
                height=job.height,
                seed=job.seed,
                count=job.request.count,
                aspect_ratio=job.request.aspect_ratio,
                input_images=inputs,
                safety_tolerance=max(variant.safety_min, min(variant.safety_max, tolerance)),
            )
            await self._acquire_slot(job.id, provider.name)
            job = await self._save(
                job,
                job.evolve(
                    provider=provider.name,
                    model_id=spec.model_id,
                    submit_started_at=self._clock.now(),
                ),
            )
            started = self._clock.monotonic()
            try:
                submission = await metrics.provider_call(
                    provider.name, "submit", provider.submit(spec)
                )
            except ProviderUnavailable as exc:
                self._release_slot(job.id)
                self._router.breaker.failure(provider.name, exc)
                log.warning(
                    "job %s: %s refused before creating a task: %s", job.id, provider.name, exc
                )
                retry_after = max(retry_after or 0.0, exc.retry_after or 0.0)
                last_error = "All image services are busy right now."
                job = await self._save(job, job.evolve(submit_started_at=None))
                continue
            except SubmitOutcomeUnknown as exc:
                self._release_slot(job.id)
                self._router.breaker.failure(provider.name)
                log.warning("job %s: %s: %s", job.id, provider.name, exc)
                return await self._finish(
                    job,
                    JobStatus.FAILED,
                    "submit_unknown",
                    "The image service did not confirm your request; to avoid paying twice it "
                    "was not sent again. Please try again.",
                )
            except ProviderModerated as exc:
                self._release_slot(job.id)
                return await self._finish(job, JobStatus.MODERATED, "moderated", _moderated(exc))
            except ProviderError as exc:
                self._release_slot(job.id)
                log.warning("job %s: %s failed the submit: %s", job.id, provider.name, exc)
                return await self._finish(
                    job,
                    JobStatus.FAILED,
                    "provider_error",
                    "The image service refused the request.",
                )
            self._router.breaker.success(provider.name)
            cost = submission.cost_usd
            if cost is None:
                cost = model.price(
                    job.width, job.height, job.request.count, len(job.request.input_images)
                )
            job = await self._save(
                job,
                job.evolve(
                    status=JobStatus.SUBMITTED,
                    provider_task=dict(submission.task),
                    cost_usd=cost,
                ),
            )
            took = self._clock.monotonic() - started
            log.info(
                "job %s: submitted to %s as %s in %.0f ms",
                job.id,
                provider.name,
                job.provider_task_id,
                took * 1000,
                extra=step_fields(job, "submit", took),
            )
            crashpoint("after_submit", self.config.crash_at)
            await self._progress(job, Progress("generating", elapsed=0.0))
            return job
        attempts = job.attempts + 1
        if attempts >= self.config.max_attempts:
            return await self._finish(job, JobStatus.FAILED, "providers_unavailable", last_error)
        await self._requeue(job, attempts, max(retry_after or 0.0, backoff(attempts, self._rng)))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _follow(self, job: Job) -> Job:
        """A job sharing an identical unfinished job's provider call: take its images once it has
        them, share its moderation, or make the image itself if the other job failed."""
        leader_id = str((job.provider_task or {}).get("follows", ""))
        leader = await self._store.get_job(leader_id) if leader_id else None
        if leader is not None and leader.images:
            return await self._save(
                job,
                job.evolve(
                    status=JobStatus.FETCHED, images=leader.images, model_id=leader.model_id
                ),
            )
        if leader is not None and leader.status is JobStatus.MODERATED:
            return await self._finish(job, JobStatus.MODERATED, "moderated", _moderated(leader))
        if leader is None or leader.status.is_terminal:
            # Failed, expired or cancelled without an image: this job makes its own.
            return await self._save(job, job.evolve(provider=None, provider_task=None))
        await self._requeue(job, job.attempts, FOLLOW_INTERVAL)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _input_images(self, job: Job) -> tuple[str, ...]:
        """Stored inputs and user links as data URLs; a link is fetched under the SSRF guard,
        then verified and re-encoded like any image. Raises DownloadRefused or InvalidImage."""
        out: list[str] = []
        for ref in job.request.input_images:
            if ref.startswith("blob:"):
                data = await self._blobs.get(ref.removeprefix("blob:"))
                kind = "jpeg" if images.inspect(data)[0] == "JPEG" else "png"
                out.append(f"data:image/{kind};base64," + base64.b64encode(data).decode())
            elif ref.startswith(("http://", "https://")):
                data = await self._input_fetcher.fetch(ref)
                clean = await asyncio.to_thread(images.clean, data)
                out.append(
                    f"data:{clean.content_type};base64," + base64.b64encode(clean.data).decode()
                )
            else:
                out.append(ref)
        return tuple(out)

    async def _acquire_slot(self, job_id: str, provider: str) -> None:
        if self._slots_held.get(job_id) == provider:
            return
        self._release_slot(job_id)
        await self._router.slot(provider).acquire()
        self._slots_held[job_id] = provider

    def _release_slot(self, job_id: str) -> None:
        provider = self._slots_held.pop(job_id, None)
        if provider is not None:
            self._router.slot(provider).release()

    async def _wait_and_fetch(self, job: Job) -> Job:
        assert job.provider and job.provider_task
        provider = self._router.get(job.provider)
        await self._acquire_slot(job.id, provider.name)
        result = await self._wait(job, provider)
        if result.state is PollState.MODERATED:
            return await self._finish(job, JobStatus.MODERATED, "moderated", _moderated(result))
        if result.state is PollState.FAILED:
            log.warning("job %s: provider reported failure: %s", job.id, result.message)
            said = f" It said: {result.reason}" if result.reason else ""
            return await self._finish(
                job,
                JobStatus.FAILED,
                "provider_failed",
                f"The image service could not make it.{said}",
            )
        await self._downloads.acquire()
        try:
            raw = await metrics.provider_call(
                provider.name, "fetch", provider.fetch(job.provider_task, result)
            )
            keys: list[str] = []
            for index, data in enumerate(raw, start=1):
                clean = await asyncio.to_thread(images.clean, data)
                key = f"{job.id}/{index}.{clean.extension}"
                await self._blobs.put(key, clean.data, clean.content_type)
                keys.append(key)
        except ProviderModerated as exc:
            return await self._finish(job, JobStatus.MODERATED, "moderated", _moderated(exc))
        except (InvalidImage, DownloadRefused) as exc:
            log.warning("job %s: result rejected: %s", job.id, exc)
            return await self._finish(
                job,
                JobStatus.FAILED,
                "bad_result",
                "The image service sent back an unusable image.",
            )
        except ProviderError as exc:
            log.warning("job %s: download failed: %s", job.id, exc)
            return await self._finish(
                job,
                JobStatus.FAILED,
                "download_failed",
                "The finished image could not be downloaded.",
            )
        finally:
            self._downloads.release()
        if not keys:
            return await self._finish(
                job, JobStatus.FAILED, "no_image", "The image service returned no image."
            )
        cost = result.cost_usd if result.cost_usd is not None else job.cost_usd
        job = await self._save(
            job, job.evolve(status=JobStatus.FETCHED, images=tuple(keys), cost_usd=cost)
        )
        self._release_slot(job.id)
        crashpoint("after_download", self.config.crash_at)
        return job

    async def _wait(self, job: Job, provider: Provider) -> PollResult:
        assert job.provider_task is not None
        task = job.provider_task
        variant = self._catalog.variants[job.variant]
        started = job.submit_started_at or job.updated_at
        deadline = started + self.config.generation_timeout
        schedule = Schedule(
            variant.typical_seconds,
            webhook=bool(task.get("webhook")),
            reports_progress=bool(task.get("reports_progress")),
        )
        eta = task.get("eta")
        # When the next poll is due, in the clock's time.
        due = started + schedule.first_delay(float(eta) if isinstance(eta, int | float) else None)
        last_progress = self._clock.monotonic()
        wakeups = self._router.wakeups
        wakeups.watch(job.id)
        errors = 0
        polls = 0
        try:
            while True:
                delay = min(due, deadline) - self._clock.now()
                if delay > 0:
                    await wakeups.sleep(job.id, delay, self._clock)
                if self._clock.now() > deadline:
                    return PollResult(
                        PollState.FAILED, message="timed out waiting for the provider"
                    )
                sent = self._clock.now()
                try:
                    result = await metrics.provider_call(provider.name, "poll", provider.poll(task))
                    errors = 0
                except (ProviderTimeout, ProviderUnavailable) as exc:
                    errors += 1
                    hint = getattr(exc, "retry_after", None)
                    log.info("job %s: poll failed (%s), try %d", job.id, exc, errors)
                    due = self._clock.now() + max(
                        hint or 0.0, backoff(errors, self._rng, base=1.0, cap=15.0)
                    )
                    result = None
                except ProviderError as exc:
                    return PollResult(PollState.FAILED, message=str(exc))
                if result is not None:
                    polls += 1
                    if polls == 1:
                        crashpoint("while_polling", self.config.crash_at)
                    if result.state is not PollState.PENDING:
                        log.info("job %s: %s after %d poll(s)", job.id, result.state.value, polls)
                        return result
                    # The provider answered about halfway through the call: the sample's time.
                    elapsed = (sent + self._clock.now()) / 2 - started
                    due = (
                        started
                        + elapsed
                        + schedule.next_delay(elapsed, result.progress, result.retry_after)
                    )
                    if self._clock.monotonic() - last_progress >= self.config.progress_interval:
                        last_progress = self._clock.monotonic()
                        await self._progress(
                            job,
                            Progress(
                                "generating",
                                queue_position=result.queue_position,
                                elapsed=elapsed,
                            ),
                        )
                # Still waiting: a cancel made in any process ends the wait, and the task at the
                # provider. Asked after the poll, so that the poll that finds the image waits
                # for no store read (a finished task's job that was cancelled meanwhile stops at
                # its next stored step, which expects the job still submitted).
                if await self._cancelled_at_provider(job, provider):
                    raise LeaseLost(job.id)
        except asyncio.CancelledError:
            # The lease was lost: a user's cancel is the usual reason; tell the provider too.
            await asyncio.shield(self._cancelled_at_provider(job, provider))
            raise
        finally:
            wakeups.forget(job.id)

    async def _cancelled_at_provider(self, job: Job, provider: Provider) -> bool:
        """True when the job's user cancelled it while it waits; then it is cancelled at the
        provider too (fal's queue drops it unbilled)."""
        try:
            current = await self._store.get_job(job.id)
        except Exception:
            return False
        if current is None or current.status is not JobStatus.CANCELLED:
            return False
        if job.provider_task:
            try:
                await provider.cancel(job.provider_task)
            except Exception as exc:  # best effort: the job is cancelled for the user anyway
                log.info("job %s: provider cancel failed: %s", job.id, type(exc).__name__)
        log.info("job %s: cancelled while waiting on %s", job.id, provider.name)
        return True

    def _on_job_change(self, job: Job) -> None:
        if job.status is JobStatus.CANCELLED:
            self._router.wakeups.wake(job.id)

    async def _deliver(self, job: Job) -> Job:
        port = self._deliveries.get(job.request.platform)
        if port is None:
            await self._requeue(job, job.attempts, 30.0)
        assert port is not None
        out: list[OutImage] = []
        for index, key in enumerate(job.images, start=1):
            data = await self._blobs.get(key)
            fmt, width, height = images.inspect(data)
            extension = "png" if fmt == "PNG" else "jpg"
            out.append(
                OutImage(
                    key=key,
                    data=data,
                    filename=f"imagine-{job.id}-{index}.{extension}",
                    content_type=f"image/{'png' if fmt == 'PNG' else 'jpeg'}",
                    width=width,
                    height=height,
                    path=self._blobs.local_path(key),
                )
            )
        if not await self._may_post(job, port):
            return await self._finish(
                job,
                JobStatus.FAILED,
                "safety_recheck",
                "This channel's safety settings changed while your image was made, so it was "
                "not posted.",
            )
        crashpoint("before_posting", self.config.crash_at)
        try:
            receipt = await port.deliver(job, out)
        except DeliveryError as exc:
            log.warning("job %s: delivery failed: %s", job.id, exc)
            metrics.delivery_failed(job.request.platform, exc.retryable)
            if exc.retryable and job.attempts + 1 < self.config.max_attempts:
                await self._requeue(job, job.attempts + 1, backoff(job.attempts + 1, self._rng))
            return await self._save(
                job,
                job.evolve(
                    status=JobStatus.FAILED,
                    error_code="delivery_failed",
                    error_message=f"The image could not be posted. (job {job.id})",
                    outcome_sent=True,
                    finished_at=self._clock.now(),
                ),
            )
        crashpoint("after_posting", self.config.crash_at)
        job = await self._save(
            job,
            job.evolve(
                status=JobStatus.DELIVERED,
                outcome_sent=True,
                delivery=dict(receipt),
                finished_at=self._clock.now(),
                lease_owner=None,
                lease_expires_at=None,
            ),
        )
        return job

    async def _may_post(self, job: Job, port: DeliveryPort) -> bool:
        """The safety check again, just before posting (the channel or the settings may have
        changed since the job was accepted)."""
        age_restricted: bool | None = None
        if isinstance(port, ChannelCheck):
            try:
                age_restricted = await port.channel_age_restricted(job)
            except DeliveryError as exc:
                log.info("job %s: channel check failed (%s); using the stored flag", job.id, exc)
        settings = await self._store.get_settings(job.community_id)
        variant = self._catalog.variants.get(job.variant)
        return self._policy.may_post(
            job, settings, channel_age_restricted=age_restricted, variant=variant
        )

    async def _notify(self, job: Job) -> Job:
        port = self._deliveries.get(job.request.platform)
        if port is None:
            await self._requeue(job, job.attempts, 30.0)
        assert port is not None
        try:
            await port.notify_failure(job)
        except DeliveryError as exc:
            log.warning("job %s: could not tell the user: %s", job.id, exc)
            metrics.delivery_failed(job.request.platform, exc.retryable)
            if exc.retryable and job.attempts + 1 < self.config.max_attempts:
                await self._requeue(job, job.attempts + 1, backoff(job.attempts + 1, self._rng))
        return await self._save(
            job, job.evolve(outcome_sent=True, lease_owner=None, lease_expires_at=None)
        )

    async def _progress(self, job: Job, progress: Progress) -> None:
        port = self._deliveries.get(job.request.platform)
        if port is None:
            return
        try:
            await port.progress(job, progress)
        except Exception as exc:  # progress is best effort; the outcome is what counts
            log.info("job %s: progress update failed: %s", job.id, type(exc).__name__)


def _moderated(source: object) -> str:
    return "The image service's safety filter blocked this request. Try rewording the prompt."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
