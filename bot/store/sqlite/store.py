"""The SQLite store: one file in WAL mode, opened through aiosqlite. One writer connection takes
every write as a ``BEGIN IMMEDIATE`` transaction, one after the other; a reader connection
serves reads meanwhile, so reads never wait behind a write."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import aiosqlite

from bot.community import AuditEntry
from bot.errors import StoreError
from bot.limits import Decision, LimitPlan, Usage, day_start, decide
from bot.models import CommunitySettings, Job, JobStatus, dumps
from bot.store.base import Admission, JobCounts, as_follower
from bot.store.rows import (
    audit_from_row,
    audit_values,
    job_from_row,
    job_row_values,
    job_step_values,
)
from bot.store.sqlite.connection import (
    SqliteSql,
    close_all,
    connect,
    migrate,
    path_from_url,
    sqlite_errors,
)


class SqliteStore:
    """Writes go through one writer connection (SQLite has one writer at a time anyway), one
    transaction at a time; reads through a reader connection of their own."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        self._write_sql = SqliteSql(writer)
        self._read_sql = SqliteSql(reader)
        self._write_lock = asyncio.Lock()
        # Reads that need one snapshot begin a transaction on the reader: one at a time. With a
        # single connection (":memory:") every read waits for the writes, so it sees none half-done.
        self._shared = reader is writer
        self._read_lock = self._write_lock if self._shared else asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(cls, url: str) -> SqliteStore:
        path = path_from_url(url)
        opened: list[aiosqlite.Connection] = []
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            opened.append(await connect(path))
            if path != ":memory:":
                opened.append(await connect(path))
        except (sqlite3.Error, OSError) as exc:
            await close_all(opened)
            raise StoreError(
                f"IMAGINE_DATABASE_URL: cannot open the SQLite database at {path}: {exc}"
            ) from None
        except BaseException:
            await close_all(opened)
            raise
        store = cls(opened[0], opened[-1])
        try:
            await store.migrate()
        except BaseException:
            await store.aclose()
            raise
        return store

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Writes already begun finish first; the connections then close with their threads.
        async with self._write_lock:
            await close_all([self._writer] if self._shared else [self._reader, self._writer])

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[SqliteSql]:
        """One write transaction of the writer connection: all of it is committed, or none."""
        self._check_open()
        async with self._write_lock:
            self._check_open()
            try:
                # Inside the try: a caller cancelled while BEGIN runs must still roll it back.
                with sqlite_errors():
                    await self._writer.execute("BEGIN IMMEDIATE")
                yield self._write_sql
                with sqlite_errors():
                    await self._writer.execute("COMMIT")
            except BaseException:
                # Shielded: the rollback must reach the connection's queue before the lock is
                # released, even when this task is being cancelled. rollback() does nothing when
                # SQLite has already rolled back itself (disk full, I/O error).
                with contextlib.suppress(sqlite3.Error):
                    await asyncio.shield(self._writer.rollback())
                raise

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[SqliteSql]:
        self._check_open()
        if not self._shared:
            yield self._read_sql
            return
        async with self._read_lock:
            yield self._read_sql

    async def _one(self, name: str, params: Mapping[str, Any] | None = None) -> sqlite3.Row | None:
        async with self._reading() as sql:
            return await sql.one(name, params)

    async def _all(self, name: str, params: Mapping[str, Any] | None = None) -> list[sqlite3.Row]:
        async with self._reading() as sql:
            return await sql.all(name, params)

    @contextlib.asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[SqliteSql]:
        """Several reads against one consistent state of the database."""
        self._check_open()
        async with self._read_lock:
            try:
                with sqlite_errors():
                    await self._reader.execute("BEGIN")
                yield self._read_sql
            finally:
                with sqlite_errors():
                    await asyncio.shield(self._reader.rollback())

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the SQLite store is closed")

    async def migrate(self) -> None:
        async with self._write() as sql:
            await migrate(sql)

    async def ping(self) -> None:
        async with self._reading() as sql:
            await sql.raw("SELECT 1")

    async def listen_for_work(self, callback: Callable[[], None]) -> bool:
        return False  # one process per file: the in-process events are enough

    # Jobs ---------------------------------------------------------------------------------------

    async def enqueue_job(self, job: Job) -> tuple[Job, bool]:
        async with self._write() as sql:
            if await sql.run("insert_job", job_row_values(job)) == 1:
                return job, True
            found = await sql.one("get_job_by_dedupe", {"dedupe_key": job.request.dedupe_key})
        if found is None:  # pragma: no cover - the conflict was on the dedupe key
            raise StoreError(f"job {job.id} was neither stored nor found")
        return job_from_row(found), False

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._one("get_job", {"id": job_id})
        return job_from_row(row) if row else None

    async def claim_next_job(
        self, worker_id: str, now: float, lease_seconds: float, platforms: Iterable[str]
    ) -> Job | None:
        jobs = await self.claim_jobs(worker_id, now, lease_seconds, platforms, 1)
        return jobs[0] if jobs else None

    async def claim_jobs(
        self,
        worker_id: str,
        now: float,
        lease_seconds: float,
        platforms: Iterable[str],
        limit: int,
    ) -> list[Job]:
        if limit < 1:
            return []
        params = {"now": now, "platforms": json.dumps(sorted(platforms))}
        lease = {"worker_id": worker_id, "expires_at": now + lease_seconds, "now": now}
        rows: list[sqlite3.Row] = []
        async with self._write() as sql:
            for _ in range(limit):
                candidate = await _claim_candidate(sql, params)
                if candidate is None:
                    break
                job_id = candidate["id"]
                community_id, user_id = candidate["community_id"], candidate["user_id"]
                await sql.run("lease_job", {**lease, "id": job_id})
                await sql.run("mark_dispatched", {"key": f"c:{community_id}"})
                await sql.run("mark_dispatched", {"key": f"u:{community_id}:{user_id}"})
                row = await sql.one("get_job", {"id": job_id})
                assert row is not None
                rows.append(row)
        return [job_from_row(row) for row in rows]

    async def renew_leases(
        self, worker_id: str, job_ids: Iterable[str], now: float, lease_seconds: float
    ) -> set[str]:
        ids = list(job_ids)
        if not ids:
            return set()
        held: set[str] = set()
        async with self._write() as sql:
            for job_id in ids:
                params = {"id": job_id, "worker_id": worker_id, "expires_at": now + lease_seconds}
                if await sql.run("renew_lease", params) == 1:
                    held.add(job_id)
        return held

    async def release_job(self, job_id: str, worker_id: str, not_before: float) -> None:
        async with self._write() as sql:
            await sql.run(
                "release_job", {"id": job_id, "worker_id": worker_id, "not_before": not_before}
            )

    async def save_job_step(self, job: Job, *, worker_id: str, expected: JobStatus) -> bool:
        # What the request decided never changes after the job is stored: not written again.
        values = job_step_values(job)
        values.update(worker_id=worker_id, expected=expected.value)
        async with self._write() as sql:
            return await sql.run("save_job_step", values) == 1

    async def merge_job_delivery(self, job_id: str, values: Mapping[str, Any]) -> bool:
        async with self._write() as sql:
            return (
                await sql.run("merge_job_delivery", {"id": job_id, "patch": dumps(dict(values))})
                == 1
            )

    async def lease_owners(self) -> set[str]:
        return {str(row[0]) for row in await self._all("lease_owners")}

    async def release_leases_of(self, worker_id: str) -> int:
        async with self._write() as sql:
            return await sql.run("release_leases_of", {"worker_id": worker_id})

    async def count_pending(self, platforms: Iterable[str]) -> int:
        params = {"platforms": json.dumps(sorted(platforms))}
        row = await self._one("count_pending", params)
        return int(row[0]) if row else 0

    async def cancel_job(self, job_id: str, now: float) -> Job | None:
        async with self._write() as sql:
            await sql.run("cancel_job", {"id": job_id, "now": now})
            row = await sql.one("get_job", {"id": job_id})
        return job_from_row(row) if row else None

    async def queue_position(self, job: Job) -> int:
        if job.status is not JobStatus.QUEUED:
            return 0
        row = await self._one("queue_position", {"created_at": job.created_at})
        return int(row[0]) if row else 0

    async def job_counts(self) -> JobCounts:
        row = await self._one("job_counts")
        if row is None:
            return JobCounts(0, 0)
        return JobCounts(queued=int(row[0] or 0), running=int(row[1] or 0))

    # Community settings -------------------------------------------------------------------------

    async def get_settings(self, community_id: str) -> CommunitySettings | None:
        row = await self._one("get_settings", {"community_id": community_id})
        return CommunitySettings.from_json(json.loads(row[0])) if row else None

    async def save_settings(self, settings: CommunitySettings, now: float) -> None:
        params = {
            "community_id": settings.community_id,
            "settings_json": dumps(settings.to_json()),
            "now": now,
        }
        async with self._write() as sql:
            await sql.run("save_settings", params)

    async def change_settings(
        self,
        community_id: str,
        change: Callable[[CommunitySettings | None], CommunitySettings],
        audit: AuditEntry,
    ) -> CommunitySettings:
        # ``change`` runs inside the transaction: an error it raises rolls it back.
        async with self._write() as sql:
            row = await sql.one("get_settings", {"community_id": community_id})
            current = CommunitySettings.from_json(json.loads(row[0])) if row else None
            new = change(current)
            params = {
                "community_id": community_id,
                "settings_json": dumps(new.to_json()),
                "now": audit.at,
            }
            await sql.run("save_settings", params)
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
        async with self._write() as sql:
            return await _admit(
                sql, job, plan, cache_key=cache_key, share_in_flight=share_in_flight
            )

    async def read_usage(self, plan: LimitPlan, now: float) -> Usage:
        async with self._snapshot() as sql:
            return await _usage(sql, plan=plan, now=now)

    async def find_cached_job(self, community_id: str, cache_key: str) -> Job | None:
        params = {"community_id": community_id, "cache_key": cache_key}
        row = await self._one("find_cached_job", params)
        return job_from_row(row) if row else None

    async def add_audit(self, entry: AuditEntry) -> None:
        async with self._write() as sql:
            await sql.run("add_audit", audit_values(entry))

    async def list_audit(self, community_id: str, limit: int) -> list[AuditEntry]:
        params = {"community_id": community_id, "limit": limit}
        rows = await self._all("list_audit", params)
        return [audit_from_row(row) for row in rows]


_ADMITTED = Decision(True)


async def _admit(
    sql: SqliteSql,
    job: Job,
    plan: LimitPlan,
    *,
    cache_key: str | None,
    share_in_flight: bool,
) -> Admission:
    """The body of ``SqliteStore.admit_job``, run inside its write transaction."""
    now = job.created_at
    if job.request.dedupe_key is not None:
        row = await sql.one("get_job_by_dedupe", {"dedupe_key": job.request.dedupe_key})
        if row is not None:
            return Admission(job_from_row(row), False, _ADMITTED)
    usage = await _usage(sql, plan=plan, now=now)
    decision = decide(plan, usage, now=now, images=job.request.count, cost_usd=job.cost_usd)
    if decision.new_tat is not None:
        await sql.run("set_rate_tat", {"key": plan.rate_key, "tat": decision.new_tat})
    if not decision.admitted:
        return Admission(job, False, decision)
    if share_in_flight and cache_key is not None:
        params = {"community_id": job.community_id, "cache_key": cache_key}
        leader = await sql.one("find_leader_job", params)
        if leader is not None:
            job = as_follower(job, str(leader[0]))
    await sql.run("insert_job", job_row_values(job))
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


async def _claim_candidate(sql: SqliteSql, params: dict[str, Any]) -> sqlite3.Row | None:
    """The next job in fair order: the community served longest ago, then within it the user
    served longest ago, then that user's oldest job (``never served`` counts as first).

    Communities are taken in their order and only the first one with a claimable job is asked
    about its users; communities never served tie (order 0), and between those the user order
    and the job's age decide, exactly as one sort of all pending jobs would."""
    best: sqlite3.Row | None = None
    best_order = 0
    for community_id, community_order in await sql.all("claim_communities"):
        if best is not None and community_order != best_order:
            break
        candidate = await sql.one("claim_in_community", {**params, "community_id": community_id})
        if candidate is None:
            continue
        if best is None or _user_rank(candidate) < _user_rank(best):
            best, best_order = candidate, community_order
    return best


def _user_rank(candidate: sqlite3.Row) -> tuple[int, float]:
    return int(candidate["user_order"]), float(candidate["created_at"])


async def _usage(sql: SqliteSql, *, plan: LimitPlan, now: float) -> Usage:
    params = {
        "community_id": plan.community_id,
        "user_id": plan.user_id,
        "day_start": day_start(now),
        "key": plan.rate_key,
    }
    tat_row = await sql.one("get_rate_tat", params)
    user_row = await sql.one("user_usage", params)
    community_row = await sql.one("community_usage", params)
    assert user_row is not None and community_row is not None  # aggregates answer one row
    return Usage(
        rate_tat=float(tat_row[0]) if tat_row else None,
        user_images_today=int(user_row[0]),
        user_in_flight=int(user_row[1]),
        community_images_today=int(community_row[0]),
        community_spent_usd=float(community_row[1]),
    )
