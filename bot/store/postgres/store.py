"""The PostgreSQL store: an asyncpg pool shared by several processes, claims with
``FOR UPDATE SKIP LOCKED``, and LISTEN/NOTIFY to wake idle workers of every process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from bot.domain.errors import StoreError
from bot.domain.models import Job
from bot.store.postgres.listen import WorkListener
from bot.store.postgres.migrations import migrate
from bot.store.postgres.pool import POOL_SIZE, create_pool, schema_of
from bot.store.postgres.queries import PgSql
from bot.store.rows import job_from_row
from bot.store.sql_store import SqlStore


class PostgresStore(SqlStore):
    def __init__(self, pool: asyncpg.Pool, url: str, schema: str) -> None:
        self._pool = pool
        self._sql = PgSql(pool)
        self._listener = WorkListener(url, schema)

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = POOL_SIZE) -> PostgresStore:
        pool = await create_pool(url, min_size=min_size, max_size=max_size)
        try:
            schema = await migrate(pool, schema_of(url))
        except BaseException:
            await pool.close()
            raise
        return cls(pool, url, schema)

    async def aclose(self) -> None:
        await self._listener.aclose()
        await self._pool.close()

    # How statements run (see SqlStore) -----------------------------------------------------------

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[PgSql]:
        yield self._sql

    @asynccontextmanager
    async def _writing(self, lock: str | None = None) -> AsyncIterator[PgSql]:
        async with self._pool.acquire() as conn, conn.transaction():
            sql = PgSql(conn)
            if lock is not None:
                await sql.run("lock_key", {"key": lock})
            yield sql

    async def _write_one(self, name: str, params: Mapping[str, Any]) -> int:
        return await self._sql.run(name, params)  # one statement is one transaction already

    def _platforms(self, platforms: Iterable[str]) -> Any:
        return sorted(platforms)  # a text[] parameter

    async def ping(self) -> None:
        try:
            await self._pool.fetchval("SELECT 1", timeout=5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise StoreError(f"PostgreSQL is not answering: {type(exc).__name__}") from exc

    async def listen_for_work(self, callback: Callable[[], None]) -> bool:
        """Call ``callback`` whenever any process queues or hands back a job in this schema."""
        await self._listener.add(callback)
        return True

    # Claims and leases --------------------------------------------------------------------------

    async def claim_jobs(
        self,
        worker_id: str,
        now: float,
        lease_seconds: float,
        platforms: Iterable[str],
        limit: int,
    ) -> list[Job]:
        # One statement per job, each its own short transaction: a lock held for the whole
        # batch would make other processes skip rows this one may not get to.
        params = {
            "worker_id": worker_id,
            "now": now,
            "expires_at": now + lease_seconds,
            "platforms": self._platforms(platforms),
        }
        jobs: list[Job] = []
        while len(jobs) < limit:
            row = await self._sql.one("claim_next_job", params)
            if row is None:
                break
            jobs.append(job_from_row(row))
        return jobs

    async def renew_leases(
        self, worker_id: str, job_ids: Iterable[str], now: float, lease_seconds: float
    ) -> set[str]:
        ids = list(job_ids)
        if not ids:
            return set()
        rows = await self._sql.all(
            "renew_leases",
            {"ids": ids, "worker_id": worker_id, "expires_at": now + lease_seconds},
        )
        return {str(row["id"]) for row in rows}

    async def release_leases_of(self, worker_id: str) -> int:
        row = await self._sql.one("release_leases_of", {"worker_id": worker_id})
        return int(row["released"]) if row else 0
