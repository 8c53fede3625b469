"""Starting a queued job: its input images made ready, then a submit to the first provider that
takes it (failover through the router), the provider's task stored before anything else happens
with it; or, for a job sharing an identical job's provider call, that job's images."""

from __future__ import annotations

import asyncio
import base64
import logging

from bot.domain.errors import SubmitOutcomeUnknown
from bot.domain.models import Job, JobStatus
from bot.jobs.outcomes import (
    HANDLED,
    MODERATED,
    NO_PROVIDER,
    PROVIDERS_BUSY,
    Action,
    Step,
    outcome_for,
)
from bot.jobs.steps import JobSteps
from bot.media import images
from bot.net.guard import SafeFetcher
from bot.ops import metrics
from bot.ops.logs import step_fields
from bot.ports import Progress
from bot.providers.base import GenerationSpec

log = logging.getLogger(__name__)

# How often a job sharing another job's provider call looks whether that one has finished.
FOLLOW_INTERVAL = 1.0


class Submitter:
    def __init__(self, steps: JobSteps, input_fetcher: SafeFetcher) -> None:
        self._steps = steps
        self._input_fetcher = input_fetcher

    async def submit(self, job: Job) -> Job:
        """Submit to the candidates in the router's order until one takes the job; returns the job
        submitted, or ended. Raises Released when every candidate was busy (tried again later)."""
        steps = self._steps
        variant = steps.catalog.variants[job.variant]
        # An earlier process started this submit and never stored its answer.
        earlier = job.provider if job.submit_started_at is not None else None
        if earlier and not steps.router.get(earlier).submit_is_idempotent:
            return await steps.finish(
                job, outcome_for(Step.RESUBMIT, SubmitOutcomeUnknown(earlier, provider=earlier))
            )
        candidates = steps.router.candidates(
            variant, needs_input_images=bool(job.request.input_images)
        )
        if job.request.enhance:
            # Upsampling was promised at acceptance: only providers that offer it make the job,
            # so the same request behaves the same whichever provider takes it.
            candidates = [(p, m) for p, m in candidates if m.extra.get("enhance_field")]
        if not candidates:
            return await steps.finish(job, NO_PROVIDER, variant=variant.label)
        steps.crash_point("before_submit")
        try:
            inputs = await self._input_images(job)
        except HANDLED[Step.INPUT] as exc:
            log.info("job %s: input image not usable: %s", job.id, exc)
            return await steps.finish(job, outcome_for(Step.INPUT, exc), error=exc)
        tolerance = job.request.safety_tolerance
        if tolerance is None:  # a job stored before tolerances were fixed at acceptance
            settings = await steps.store.get_settings(job.community_id)
            tolerance = steps.policy.safety_tolerance(job.request, settings, variant)
        retry_after = 0.0
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
                # Older rows hold no format: their images were PNG.
                output_format=job.request.output_format or "png",
                enhance=bool(job.request.enhance),
                steps=job.request.steps,
                guidance=job.request.guidance,
            )
            await steps.slots.acquire(job.id, provider.name)
            job = await steps.save(
                job,
                job.evolve(
                    provider=provider.name,
                    model_id=spec.model_id,
                    submit_started_at=steps.clock.now(),
                ),
            )
            started = steps.clock.monotonic()
            try:
                submission = await metrics.provider_call(
                    provider.name, "submit", provider.submit(spec)
                )
            except HANDLED[Step.SUBMIT] as exc:
                steps.slots.release(job.id)
                outcome = outcome_for(Step.SUBMIT, exc)
                if outcome.counts_against_provider:
                    steps.router.breaker.failure(provider.name, exc)
                log.warning("job %s: %s: %s (%s)", job.id, provider.name, exc, outcome.code)
                if outcome.action is Action.FAIL_OVER:
                    retry_after = max(retry_after, getattr(exc, "retry_after", None) or 0.0)
                    job = await steps.save(job, job.evolve(submit_started_at=None))
                    continue
                return await steps.finish(job, outcome)
            steps.router.breaker.success(provider.name)
            cost = submission.cost_usd
            if cost is None:
                cost = model.price(
                    job.width, job.height, job.request.count, len(job.request.input_images)
                )
            job = await steps.save(
                job,
                job.evolve(
                    status=JobStatus.SUBMITTED,
                    provider_task=dict(submission.task),
                    cost_usd=cost,
                ),
            )
            took = steps.clock.monotonic() - started
            log.info(
                "job %s: submitted to %s as %s in %.0f ms",
                job.id,
                provider.name,
                job.provider_task_id,
                took * 1000,
                extra=step_fields(job, "submit", took),
            )
            steps.crash_point("after_submit")
            await steps.progress(job, Progress("generating", elapsed=0.0))
            return job
        return await steps.retry_or_finish(job, PROVIDERS_BUSY, at_least=retry_after)

    async def follow(self, job: Job) -> Job:
        """A job sharing an identical unfinished job's provider call: take its images once it has
        them, share its moderation, or make the image itself if the other job failed."""
        steps = self._steps
        leader_id = str((job.provider_task or {}).get("follows", ""))
        leader = await steps.store.get_job(leader_id) if leader_id else None
        if leader is not None and leader.images:
            return await steps.save(
                job,
                job.evolve(
                    status=JobStatus.FETCHED, images=leader.images, model_id=leader.model_id
                ),
            )
        if leader is not None and leader.status is JobStatus.MODERATED:
            return await steps.finish(job, MODERATED)
        if leader is None or leader.status.is_terminal:
            # Failed, expired or cancelled without an image: this job makes its own.
            return await steps.save(job, job.evolve(provider=None, provider_task=None))
        await steps.requeue(job, job.attempts, FOLLOW_INTERVAL)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _input_images(self, job: Job) -> tuple[str, ...]:
        """Stored inputs and user links as data URLs; a link is fetched under the SSRF guard,
        then verified and re-encoded like any image. Raises DownloadRefused or InvalidImage."""
        out: list[str] = []
        for ref in job.request.input_images:
            if ref.startswith("blob:"):
                data = await self._steps.blobs.get(ref.removeprefix("blob:"))
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
