"""The PostgreSQL store: an asyncpg pool shared by several processes, claims with
``FOR UPDATE SKIP LOCKED``, and LISTEN/NOTIFY to wake idle workers of every process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping

import asyncpg

from bot.community import AuditEntry
from bot.errors import StoreError
from bot.limits import Decision, LimitPlan, Usage, day_start, decide
from bot.models import CommunitySettings, Job, JobStatus, dumps
from bot.store.base import Admission, JobCounts, as_follower
from bot.store.postgres.listen import WorkListener
from bot.store.postgres.migrations import migrate
from bot.store.postgres.pool import POOL_SIZE, create_pool, schema_of
from bot.store.postgres.queries import PgSql
from bot.store.rows import (
    audit_from_row,
    audit_values,
    job_from_row,
    job_row_values,
    job_step_values,
)


class PostgresStore:
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

    async def ping(self) -> None:
        try:
            await self._pool.fetchval("SELECT 1", timeout=5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise StoreError(f"PostgreSQL is not answering: {type(exc).__name__}") from exc

    async def listen_for_work(self, callback: Callable[[], None]) -> bool:
        """Call ``callback`` whenever any process queues or hands back a job in this schema."""
        await self._listener.add(callback)
        return True

    # Jobs ---------------------------------------------------------------------------------------

    async def enqueue_job(self, job: Job) -> tuple[Job, bool]:
        try:
            if await self._sql.run("insert_job", job_row_values(job)) == 1:
                return job, True
            row = await self._sql.one("get_job_by_dedupe", {"dedupe_key": job.request.dedupe_key})
        except asyncpg.UniqueViolationError as exc:
            raise StoreError(f"job {job.id} already exists") from exc
        if row is None:  # pragma: no cover - the conflict was on the dedupe key
            raise StoreError(f"job {job.id} was neither stored nor found")
        return job_from_row(row), False

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._sql.one("get_job", {"id": job_id})
        return job_from_row(row) if row else None

    async def claim_next_job(
        self, worker_id: str, now: float, lease_seconds: float, platforms: Iterable[str]
    ) -> Job | None:
        row = await self._sql.one(
            "claim_next_job",
            {
                "worker_id": worker_id,
                "now": now,
                "expires_at": now + lease_seconds,
                "platforms": sorted(platforms),
            },
        )
        return job_from_row(row) if row else None

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
        wanted = sorted(platforms)
        jobs: list[Job] = []
        while len(jobs) < limit:
            job = await self.claim_next_job(worker_id, now, lease_seconds, wanted)
            if job is None:
                break
            jobs.append(job)
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

    async def release_job(self, job_id: str, worker_id: str, not_before: float) -> None:
        await self._sql.all(
            "release_job", {"id": job_id, "worker_id": worker_id, "not_before": not_before}
        )

    async def save_job_step(self, job: Job, *, worker_id: str, expected: JobStatus) -> bool:
        values = job_step_values(job)
        values.update(worker_id=worker_id, expected=expected.value)
        return await self._sql.run("save_job_step", values) == 1

    async def merge_job_delivery(self, job_id: str, values: Mapping[str, object]) -> bool:
        patch = {"id": job_id, "patch": dumps(dict(values))}
        return await self._sql.run("merge_job_delivery", patch) == 1

    async def lease_owners(self) -> set[str]:
        return {str(row[0]) for row in await self._sql.all("lease_owners")}

    async def release_leases_of(self, worker_id: str) -> int:
        row = await self._sql.one("release_leases_of", {"worker_id": worker_id})
        return int(row["released"]) if row else 0

    async def count_pending(self, platforms: Iterable[str]) -> int:
        row = await self._sql.one("count_pending", {"platforms": sorted(platforms)})
        return int(row[0]) if row else 0

    async def cancel_job(self, job_id: str, now: float) -> Job | None:
        async with self._pool.acquire() as conn, conn.transaction():
            sql = PgSql(conn)
            await sql.run("cancel_job", {"id": job_id, "now": now})
            row = await sql.one("get_job", {"id": job_id})
        return job_from_row(row) if row else None

    async def queue_position(self, job: Job) -> int:
        if job.status is not JobStatus.QUEUED:
            return 0
        row = await self._sql.one("queue_position", {"created_at": job.created_at})
        return int(row[0]) if row else 0

    async def job_counts(self) -> JobCounts:
        row = await self._sql.one("job_counts")
        if row is None:  # pragma: no cover - an aggregate always answers one row
            return JobCounts(0, 0)
        return JobCounts(queued=int(row["queued"]), running=int(row["running"]))

    # Community settings -------------------------------------------------------------------------

    async def get_settings(self, community_id: str) -> CommunitySettings | None:
        row = await self._sql.one("get_settings", {"community_id": community_id})
        return CommunitySettings.from_json(json.loads(row[0])) if row else None

    async def save_settings(self, settings: CommunitySettings, now: float) -> None:
        await self._sql.run(
            "save_settings",
            {
                "community_id": settings.community_id,
                "settings_json": dumps(settings.to_json()),
                "now": now,
            },
        )

    async def change_settings(
        self,
        community_id: str,
        change: Callable[[CommunitySettings | None], CommunitySettings],
        audit: AuditEntry,
    ) -> CommunitySettings:
        async with self._pool.acquire() as conn, conn.transaction():
            sql = PgSql(conn)
            await sql.run("lock_key", {"key": f"settings:{community_id}"})
            row = await sql.one("get_settings", {"community_id": community_id})
            current = CommunitySettings.from_json(json.loads(row[0])) if row else None
            new = change(current)
            await sql.run(
                "save_settings",
                {
                    "community_id": community_id,
                    "settings_json": dumps(new.to_json()),
                    "now": audit.at,
                },
            )
            await sql.run("add_audit", audit_values(audit))
        return new

    # Limits, cache and audit --------------------------------------------------------------------

    async def admit_job(
        self,
        job: Job,
        plan: LimitPlan,
        cache_key: str | None = None,
        *,
        share_in_flight: bool = False,
    ) -> Admission:
        now = job.created_at
        async with self._pool.acquire() as conn, conn.transaction():
            sql = PgSql(conn)
            # One decision at a time per community, across every process sharing the database.
            await sql.run("lock_key", {"key": f"limits:{job.community_id}"})
            if job.request.dedupe_key is not None:
                row = await sql.one("get_job_by_dedupe", {"dedupe_key": job.request.dedupe_key})
                if row is not None:
                    return Admission(job_from_row(row), False, Decision(True))
            usage = await _usage(sql, plan, now)
            decision = decide(plan, usage, now=now, images=job.request.count, cost_usd=job.cost_usd)
            if decision.new_tat is not None:
                await sql.run("set_rate_tat", {"key": plan.rate_key, "tat": decision.new_tat})
            if not decision.admitted:
                return Admission(job, False, decision)
            if share_in_flight and cache_key is not None:
                leader = await sql.one(
                    "find_leader_job", {"community_id": job.community_id, "cache_key": cache_key}
                )
                if leader is not None:
                    job = as_follower(job, str(leader[0]))
            if await sql.run("insert_job", job_row_values(job)) != 1:  # pragma: no cover
                raise StoreError(f"job {job.id} was not stored")  # the key was checked above
            if cache_key is not None:
                await sql.run(
                    "add_cache_key",
                    {
                        "job_id": job.id,
                        "community_id": job.community_id,
                        "cache_key": cache_key,
                        "created_at": now,
                    },
                )
        return Admission(job, True, decision)

    async def read_usage(self, plan: LimitPlan, now: float) -> Usage:
        async with self._pool.acquire() as conn:
            return await _usage(PgSql(conn), plan, now)

    async def find_cached_job(self, community_id: str, cache_key: str) -> Job | None:
        row = await self._sql.one(
            "find_cached_job", {"community_id": community_id, "cache_key": cache_key}
        )
        return job_from_row(row) if row else None

    async def add_audit(self, entry: AuditEntry) -> None:
        await self._sql.run("add_audit", audit_values(entry))

    async def list_audit(self, community_id: str, limit: int) -> list[AuditEntry]:
        rows = await self._sql.all("list_audit", {"community_id": community_id, "limit": limit})
        return [audit_from_row(row) for row in rows]


async def _usage(sql: PgSql, plan: LimitPlan, now: float) -> Usage:
    params = {
        "community_id": plan.community_id,
        "user_id": plan.user_id,
        "day_start": day_start(now),
        "key": plan.rate_key,
    }
    tat = await sql.one("get_rate_tat", params)
    user = await sql.one("user_usage", params)
    community = await sql.one("community_usage", params)
    assert user is not None and community is not None
    return Usage(
        rate_tat=float(tat[0]) if tat else None,
        user_images_today=int(user[0]),
        user_in_flight=int(user[1]),
        community_images_today=int(community[0]),
        community_spent_usd=float(community[1]),
    )
