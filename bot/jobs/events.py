"""In-process notifications: a job changed (for waiters) and a job was queued (to wake workers)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from bot.domain.models import Job


class JobEvents:
    def __init__(self) -> None:
        self._changed = asyncio.Condition()
        self._work = asyncio.Event()
        self._listeners: list[Callable[[Job], None]] = []

    def add_listener(self, listener: Callable[[Job], None]) -> None:
        self._listeners.append(listener)

    async def job_changed(self, job: Job) -> None:
        for listener in self._listeners:
            listener(job)
        async with self._changed:
            self._changed.notify_all()

    def work_available(self) -> None:
        self._work.set()

    async def wait_for_work(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._work.wait(), timeout)
        self._work.clear()

    async def wait_for_change(self, timeout: float) -> None:
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
