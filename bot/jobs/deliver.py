"""From a finished provider task to the user: download the images at once (their URLs expire),
validate and clean them, store them in the blob store, re-check the channel's safety settings and
deliver through the platform's DeliveryPort; or tell the user why the job ended without an image."""

from __future__ import annotations

import asyncio
import logging

from bot.domain.errors import DeliveryError
from bot.domain.models import Job, JobStatus
from bot.jobs.outcomes import DELIVERY_FAILED, HANDLED, NO_IMAGE, SAFETY_RECHECK, Step, outcome_for
from bot.jobs.steps import JobSteps, backoff
from bot.media import images
from bot.media.encode import FORMATS
from bot.ops import metrics
from bot.ports import ChannelCheck, DeliveryPort, OutImage
from bot.providers.base import PollResult, Provider

log = logging.getLogger(__name__)

# With no delivery port for a job's platform in this process, the job is handed back this long.
NO_PORT_DELAY = 30.0


class Deliverer:
    def __init__(self, steps: JobSteps) -> None:
        self._steps = steps
        # Jobs whose images are in memory at once, downloading and cleaning or posting.
        self._downloads = asyncio.Semaphore(steps.config.image_concurrency)
        self._uploads = asyncio.Semaphore(steps.config.image_concurrency)

    async def fetch(self, job: Job, provider: Provider, result: PollResult) -> Job:
        """Download the finished images, check and clean each, and store them: the job becomes
        FETCHED, or ends as the outcome table says for what went wrong."""
        assert job.provider_task is not None
        steps = self._steps
        async with self._downloads:
            try:
                raw = await metrics.provider_call(
                    provider.name, "fetch", provider.fetch(job.provider_task, result)
                )
                keys: list[str] = []
                for index, data in enumerate(raw, start=1):
                    # The format the job was accepted with (older rows: as the provider gave it).
                    clean = await asyncio.to_thread(
                        images.clean, data, output_format=job.request.output_format
                    )
                    key = f"{job.id}/{index}.{clean.extension}"
                    await steps.blobs.put(key, clean.data, clean.content_type)
                    keys.append(key)
            except HANDLED[Step.FETCH] as exc:
                outcome = outcome_for(Step.FETCH, exc)
                log.warning("job %s: result not usable (%s): %s", job.id, outcome.code, exc)
                return await steps.finish(job, outcome)
        if not keys:
            return await steps.finish(job, NO_IMAGE)
        cost = result.cost_usd if result.cost_usd is not None else job.cost_usd
        job = await steps.save(
            job, job.evolve(status=JobStatus.FETCHED, images=tuple(keys), cost_usd=cost)
        )
        steps.slots.release(job.id)
        steps.crash_point("after_download")
        return job

    async def deliver(self, job: Job) -> Job:
        """Post the stored images; the job becomes DELIVERED with what identifies the post."""
        async with self._uploads:
            return await self._deliver(job)

    async def _deliver(self, job: Job) -> Job:
        steps = self._steps
        port = await self._port(job)
        out: list[OutImage] = []
        for index, key in enumerate(job.images, start=1):
            data = await steps.blobs.get(key)
            fmt, width, height = images.inspect(data)
            _, content_type, extension = FORMATS[fmt.lower()]
            out.append(
                OutImage(
                    key=key,
                    data=data,
                    filename=f"imagine-{job.id}-{index}.{extension}",
                    content_type=content_type,
                    width=width,
                    height=height,
                    path=steps.blobs.local_path(key),
                )
            )
        if not await self._may_post(job, port):
            return await steps.finish(job, SAFETY_RECHECK)
        steps.crash_point("before_posting")
        try:
            receipt = await port.deliver(job, out)
        except DeliveryError as exc:
            log.warning("job %s: delivery failed: %s", job.id, exc)
            metrics.delivery_failed(job.request.platform, exc.retryable)
            await self._retry_if_worth_it(job, exc)
            # The platform refused the post: telling the user through it would fail the same way.
            return await steps.save(
                job,
                job.evolve(
                    status=DELIVERY_FAILED.status,
                    error_code=DELIVERY_FAILED.code,
                    error_message=f"{DELIVERY_FAILED.user_message()} (job {job.id})",
                    outcome_sent=True,
                    finished_at=steps.clock.now(),
                ),
            )
        steps.crash_point("after_posting")
        return await steps.save(
            job,
            job.evolve(
                status=JobStatus.DELIVERED,
                outcome_sent=True,
                delivery=dict(receipt),
                finished_at=steps.clock.now(),
                lease_owner=None,
                lease_expires_at=None,
            ),
        )

    async def notify(self, job: Job) -> Job:
        """Tell the user why the job ended without an image (``job.error_message``)."""
        port = await self._port(job)
        try:
            await port.notify_failure(job)
        except DeliveryError as exc:
            log.warning("job %s: could not tell the user: %s", job.id, exc)
            metrics.delivery_failed(job.request.platform, exc.retryable)
            await self._retry_if_worth_it(job, exc)
        return await self._steps.save(
            job, job.evolve(outcome_sent=True, lease_owner=None, lease_expires_at=None)
        )

    async def _port(self, job: Job) -> DeliveryPort:
        """The job's delivery port; without one in this process the job is handed back
        (Released) for a process that has it."""
        port = self._steps.delivery_port(job)
        if port is None:
            await self._steps.requeue(job, job.attempts, NO_PORT_DELAY)
        assert port is not None
        return port

    async def _retry_if_worth_it(self, job: Job, exc: DeliveryError) -> None:
        """Hand the job back (Released) when the platform may take it later and tries are left."""
        attempts = job.attempts + 1
        if exc.retryable and attempts < self._steps.config.max_attempts:
            await self._steps.requeue(job, attempts, backoff(attempts, self._steps.rng))

    async def _may_post(self, job: Job, port: DeliveryPort) -> bool:
        """The safety check again, just before posting (the channel or the settings may have
        changed since the job was accepted)."""
        steps = self._steps
        age_restricted: bool | None = None
        if isinstance(port, ChannelCheck):
            try:
                age_restricted = await port.channel_age_restricted(job)
            except DeliveryError as exc:
                log.info("job %s: channel check failed (%s); using the stored flag", job.id, exc)
        settings = await steps.store.get_settings(job.community_id)
        variant = steps.catalog.variants.get(job.variant)
        return steps.policy.may_post(
            job, settings, channel_age_restricted=age_restricted, variant=variant
        )
