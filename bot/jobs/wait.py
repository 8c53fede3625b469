"""Waiting for a submitted job's provider task: polls on an adaptive schedule, woken early by a
verified webhook or a cancel, each poll error retried or ended as the outcome table says."""

from __future__ import annotations

import asyncio
import logging

from bot.domain.errors import ProviderFailed, ProviderModerated
from bot.domain.models import Job, JobStatus
from bot.jobs.outcomes import HANDLED, Action, Step, outcome_for
from bot.jobs.steps import JobSteps, LeaseLost, backoff
from bot.ops import metrics
from bot.ports import Progress
from bot.providers.base import PollResult, PollState, Provider
from bot.providers.polling import Schedule

log = logging.getLogger(__name__)


class Waiter:
    def __init__(self, steps: JobSteps) -> None:
        self._steps = steps
        # A cancel in this process wakes the job's wait at once (other processes see it at the
        # next poll).
        steps.events.add_listener(self._on_job_change)

    async def until_ready(self, job: Job, provider: Provider) -> PollResult:
        """The provider's answer once the task is ready. Raises the ProviderError that ends the
        wait (the task failed or was moderated, or the generation timeout passed: ProviderFailed
        and ProviderModerated), or LeaseLost when the job's user cancelled it meanwhile."""
        assert job.provider_task is not None
        steps = self._steps
        clock = steps.clock
        task = job.provider_task
        variant = steps.catalog.variants[job.variant]
        started = job.submit_started_at or job.updated_at
        deadline = started + steps.config.generation_timeout
        schedule = Schedule(
            variant.typical_seconds,
            webhook=bool(task.get("webhook")),
            reports_progress=bool(task.get("reports_progress")),
        )
        eta = task.get("eta")
        # When the next poll is due, in the clock's time.
        due = started + schedule.first_delay(float(eta) if isinstance(eta, int | float) else None)
        last_progress = clock.monotonic()
        wakeups = steps.router.wakeups
        wakeups.watch(job.id)
        errors = 0
        polls = 0
        try:
            while True:
                delay = min(due, deadline) - clock.now()
                if delay > 0:
                    await wakeups.sleep(job.id, delay, clock)
                if clock.now() >= deadline:
                    raise ProviderFailed(
                        "timed out waiting for the provider", provider=provider.name
                    )
                sent = clock.now()
                try:
                    result = await metrics.provider_call(provider.name, "poll", provider.poll(task))
                    errors = 0
                except HANDLED[Step.POLL] as exc:
                    if outcome_for(Step.POLL, exc).action is not Action.RETRY:
                        raise
                    errors += 1
                    hint = getattr(exc, "retry_after", None)
                    log.info("job %s: poll failed (%s), try %d", job.id, exc, errors)
                    due = clock.now() + max(
                        hint or 0.0, backoff(errors, steps.rng, base=1.0, cap=15.0)
                    )
                    result = None
                if result is not None:
                    polls += 1
                    if polls == 1:
                        steps.crash_point("while_polling")
                    if result.state is not PollState.PENDING:
                        log.info("job %s: %s after %d poll(s)", job.id, result.state.value, polls)
                        return _ready(result, provider.name)
                    # The provider answered about halfway through the call: the sample's time.
                    elapsed = (sent + clock.now()) / 2 - started
                    due = (
                        started
                        + elapsed
                        + schedule.next_delay(elapsed, result.progress, result.retry_after)
                    )
                    if clock.monotonic() - last_progress >= steps.config.progress_interval:
                        last_progress = clock.monotonic()
                        await steps.progress(
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
            current = await self._steps.store.get_job(job.id)
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
            self._steps.router.wakeups.wake(job.id)


def _ready(result: PollResult, provider: str) -> PollResult:
    """The finished answer if it is ready; a moderated or failed task as the error it is."""
    if result.state is PollState.MODERATED:
        raise ProviderModerated(result.message or "moderated", provider=provider)
    if result.state is PollState.FAILED:
        raise ProviderFailed(
            result.message or "the task failed", provider=provider, reason=result.reason
        )
    return result
