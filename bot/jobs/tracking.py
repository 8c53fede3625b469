"""An existing job: read it, wait for its outcome, note what its adapter must find again, cancel it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.domain.clock import Clock
from bot.domain.errors import JobNotFound, PolicyRefusal
from bot.domain.models import Job
from bot.jobs.events import JobEvents
from bot.store import Store


class Tracking:
    def __init__(self, *, store: Store, clock: Clock, events: JobEvents) -> None:
        self._store = store
        self._clock = clock
        self._events = events

    async def job(self, job_id: str) -> Job:
        job = await self._store.get_job(job_id)
        if job is None:
            raise JobNotFound(f"No job {job_id}.")
        return job

    async def note_delivery(self, job_id: str, values: Mapping[str, Any]) -> bool:
        """Record with the job what its adapter must find again from any process (such as the
        message that shows its progress); None removes a key. False when there is no such job."""
        return await self._store.merge_job_delivery(job_id, values)

    async def wait(self, job_id: str, *, timeout: float | None = None) -> Job:
        """Wait until the job's outcome has been sent (or its final status reached)."""
        start = self._clock.monotonic()
        while True:
            job = await self.job(job_id)
            if job.outcome_sent:
                return job
            if timeout is not None and self._clock.monotonic() - start > timeout:
                return job
            await self._events.wait_for_change(0.5)

    async def cancel(self, job_id: str, *, user_id: str, is_admin: bool = False) -> Job:
        job = await self.job(job_id)
        if job.user_id != user_id and not is_admin:
            raise PolicyRefusal("Only the requester or a moderator can do that.", code="not_owner")
        cancelled = await self._store.cancel_job(job_id, self._clock.now())
        if cancelled is None:  # pragma: no cover - the job existed a moment ago
            raise JobNotFound(f"No job {job_id}.")
        await self._events.job_changed(cancelled)
        return cancelled
