"""The work behind acknowledged Slack requests: tracked background tasks that shutdown can drain."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class BackgroundWork:
    """Listeners ack at once and hand their work here; a failure is logged, never lost silently."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=f"slack-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("Slack: %s failed: %s", task.get_name(), type(exc).__name__, exc_info=exc)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the running work; after ``timeout`` seconds cancel what is left."""
        while self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            if pending:
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
                return
