"""LISTEN/NOTIFY: wake this process's idle workers when any process queues or hands back a job in
the same schema, on a connection of its own that comes back when it is lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from bot.store.postgres.pool import CONNECT_TIMEOUT

log = logging.getLogger(__name__)

# The queries that queue or hand back a job call pg_notify(WORK_CHANNEL, current_schema()).
WORK_CHANNEL = "imagine_work"
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)


class WorkListener:
    def __init__(self, url: str, schema: str) -> None:
        self._url = url
        self._schema = schema
        self._conn: asyncpg.Connection | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._reconnect: asyncio.Task[None] | None = None
        self._closing = False

    async def add(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on every notification of this schema (connecting on first use)."""
        self._callbacks.append(callback)
        if self._conn is None:
            await self._listen()

    async def aclose(self) -> None:
        self._closing = True
        if self._reconnect is not None:
            self._reconnect.cancel()
            await asyncio.gather(self._reconnect, return_exceptions=True)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=5)

    async def _listen(self) -> None:
        # Named so an operator can tell it apart in pg_stat_activity.
        conn = await asyncpg.connect(
            self._url,
            timeout=CONNECT_TIMEOUT,
            server_settings={"application_name": f"imagine-bot listen {self._schema}"[:63]},
        )
        await conn.add_listener(WORK_CHANNEL, self._notified)
        conn.add_termination_listener(self._lost)
        self._conn = conn

    def _notified(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if payload != self._schema:
            return  # another bot (or test run) sharing the database
        self._wake()

    def _wake(self) -> None:
        for callback in self._callbacks:
            callback()

    def _lost(self, conn: object) -> None:
        if self._closing or self._reconnect is not None:
            return
        log.warning("lost the PostgreSQL LISTEN connection; reconnecting")
        self._reconnect = asyncio.get_running_loop().create_task(self._relisten())

    async def _relisten(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                await self._listen()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                attempt += 1
                await asyncio.sleep(delay)
                continue
            self._reconnect = None
            # Work queued while nobody listened is found by this wake-up.
            self._wake()
            return
