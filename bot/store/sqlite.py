"""The SQLite store: one file, WAL, one writer connection taking ``BEGIN IMMEDIATE`` per step."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.community import AuditEntry
from bot.errors import StoreError
from bot.limits import Decision, LimitPlan, Usage, day_start, decide
from bot.models import CommunitySettings, Job, JobStatus, dumps
from bot.store.base import (
    Admission,
    JobCounts,
    as_follower,
    job_from_row,
    job_row_values,
    load_migrations,
    load_queries,
)

Q = load_queries("sqlite")
BUSY_TIMEOUT_MS = 30_000


def path_from_url(url: str) -> str:
    """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or ``sqlite:///:memory:``."""
    if not url.startswith("sqlite:///"):
        raise StoreError("IMAGINE_DATABASE_URL: a SQLite URL looks like sqlite:///data/imagine.db")
    return url.removeprefix("sqlite:///")


class SqliteStore:
    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        # One connection is shared by every coroutine: a transaction must not interleave with another.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, url: str) -> SqliteStore:
        path = path_from_url(url)
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            writer = await cls._connect(path)
            reader = await cls._connect(path) if path != ":memory:" else writer
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"IMAGINE_DATABASE_URL: cannot open the SQLite database at {path}: {exc}"
            ) from None
        store = cls(writer, reader)
        await store.migrate()
        return store

    @staticmethod
    async def _connect(path: str) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA foreign_keys=ON")
        return conn

    async def aclose(self) -> None:
        if self._reader is not self._writer:
            await self._reader.close()
        await self._writer.close()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            else:
                await self._writer.execute("COMMIT")

    async def _fetchone(self, sql: str, params: dict[str, Any]) -> aiosqlite.Row | None:
        async with self._reader.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def migrate(self) -> None:
        async with self._write() as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            async with db.execute("SELECT version FROM schema_migrations") as cursor:
                applied = {int(row[0]) for row in await cursor.fetchall()}
            for version, sql in load_migrations("sqlite"):
                if version in applied:
                    continue
                for statement in _split_statements(sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, time.time()),
                )

    async def ping(self) -> None:
        try:
            await self._fetchone("SELECT 1", {})
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite is not answering: {exc}") from exc

    async def listen_for_work(self, callback: Callable[[], None]) -> bool:
        return False  # one process per file: the in-process events are enough

    # Jobs ---------------------------------------------------------------------------------------

    async def enqueue_job(self, job: Job) -> tuple[Job, bool]:
        async with self._write() as db:
            cursor = await db.execute(Q["insert_job"], dict(job_row_values(job)))
            if cursor.rowcount == 1:
                return job, True
            async with db.execute(
                Q["get_job_by_dedupe"], {"dedupe_key": job.request.dedupe_key}
            ) as found:
                row = await found.fetchone()
        if row is None:  # pragma: no cover - the conflict was on the dedupe key
            raise StoreError(f"job {job.id} was neither stored nor found")
        return job_from_row(dict(row)), False

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._fetchone(Q["get_job"], {"id": job_id})
        return job_from_row(dict(row)) if row else None

    async def claim_next_job(
        self, worker_id: str, now: float, lease_seconds: float, platforms: Iterable[str]
    ) -> Job | None:
        params = {"now": now, "platforms": json.dumps(sorted(platforms))}
        async with self._write() as db:
            async with db.execute(Q["claim_candidate"], params) as cursor:
                candidate = await cursor.fetchone()
            if candidate is None:
                return None
            job_id, community_id, user_id = candidate[0], candidate[1], candidate[2]
            await db.execute(
                Q["lease_job"],
                {
                    "id": job_id,
                    "worker_id": worker_id,
                    "expires_at": now + lease_seconds,
                    "now": now,
                },
            )
            await db.execute(Q["mark_dispatched"], {"key": f"c:{community_id}"})
            await db.execute(Q["mark_dispatched"], {"key": f"u:{community_id}:{user_id}"})
            async with db.execute(Q["get_job"], {"id": job_id}) as cursor:
                row = await cursor.fetchone()
        return job_from_row(dict(row)) if row else None

    async def renew_leases(
        self, worker_id: str, job_ids: Iterable[str], now: float, lease_seconds: float
    ) -> set[str]:
        held: set[str] = set()
        ids = list(job_ids)
        if not ids:
            return held
        async with self._write() as db:
            for job_id in ids:
                cursor = await db.execute(
                    Q["renew_lease"],
                    {"id": job_id, "worker_id": worker_id, "expires_at": now + lease_seconds},
                )
                if cursor.rowcount == 1:
                    held.add(job_id)
        return held

    async def release_job(self, job_id: str, worker_id: str, not_before: float) -> None:
        async with self._write() as db:
            await db.execute(
                Q["release_job"],
                {"id": job_id, "worker_id": worker_id, "not_before": not_before},
            )

    async def save_job_step(self, job: Job, *, worker_id: str, expected: JobStatus) -> bool:
        values = dict(job_row_values(job))
        values.update(worker_id=worker_id, expected=expected.value)
        for unused in ("community_id", "user_id", "platform", "dedupe_key", "request_json"):
            values.pop(unused)
        values.pop("variant")
        values.pop("created_at")
        async with self._write() as db:
            cursor = await db.execute(Q["save_job_step"], values)
            return cursor.rowcount == 1

    async def lease_owners(self) -> set[str]:
        async with self._reader.execute(Q["lease_owners"], {}) as cursor:
            return {str(row[0]) for row in await cursor.fetchall()}

    async def release_leases_of(self, worker_id: str) -> int:
        async with self._write() as db:
            cursor = await db.execute(Q["release_leases_of"], {"worker_id": worker_id})
            return cursor.rowcount

    async def count_pending(self, platforms: Iterable[str]) -> int:
        row = await self._fetchone(Q["count_pending"], {"platforms": json.dumps(sorted(platforms))})
        return int(row[0]) if row else 0

    async def cancel_job(self, job_id: str, now: float) -> Job | None:
        async with self._write() as db:
            await db.execute(Q["cancel_job"], {"id": job_id, "now": now})
            async with db.execute(Q["get_job"], {"id": job_id}) as cursor:
                row = await cursor.fetchone()
        return job_from_row(dict(row)) if row else None

    async def queue_position(self, job: Job) -> int:
        if job.status is not JobStatus.QUEUED:
            return 0
        row = await self._fetchone(Q["queue_position"], {"created_at": job.created_at})
        return int(row[0]) if row else 0

    async def job_counts(self) -> JobCounts:
        row = await self._fetchone(Q["job_counts"], {})
        if row is None:
            return JobCounts(0, 0)
        return JobCounts(queued=int(row[0] or 0), running=int(row[1] or 0))

    # Community settings -------------------------------------------------------------------------

    async def get_settings(self, community_id: str) -> CommunitySettings | None:
        row = await self._fetchone(Q["get_settings"], {"community_id": community_id})
        return CommunitySettings.from_json(json.loads(row[0])) if row else None

    async def save_settings(self, settings: CommunitySettings, now: float) -> None:
        async with self._write() as db:
            await db.execute(
                Q["save_settings"],
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
        async with self._write() as db:
            async with db.execute(Q["get_settings"], {"community_id": community_id}) as cursor:
                row = await cursor.fetchone()
            current = CommunitySettings.from_json(json.loads(row[0])) if row else None
            new = change(current)
            await db.execute(
                Q["save_settings"],
                {
                    "community_id": community_id,
                    "settings_json": dumps(new.to_json()),
                    "now": audit.at,
                },
            )
            await db.execute(Q["add_audit"], _audit_values(audit))
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
        async with self._write() as db:
            if job.request.dedupe_key is not None:
                async with db.execute(
                    Q["get_job_by_dedupe"], {"dedupe_key": job.request.dedupe_key}
                ) as cursor:
                    row = await cursor.fetchone()
                if row is not None:
                    return Admission(job_from_row(dict(row)), False, _ADMITTED)
            usage = await self._usage(db, plan, now)
            decision = decide(plan, usage, now=now, images=job.request.count, cost_usd=job.cost_usd)
            if decision.new_tat is not None:
                await db.execute(Q["set_rate_tat"], {"key": plan.rate_key, "tat": decision.new_tat})
            if not decision.admitted:
                return Admission(job, False, decision)
            if share_in_flight and cache_key is not None:
                params = {"community_id": job.community_id, "cache_key": cache_key}
                async with db.execute(Q["find_leader_job"], params) as cursor:
                    leader = await cursor.fetchone()
                if leader is not None:
                    job = as_follower(job, str(leader[0]))
            await db.execute(Q["insert_job"], dict(job_row_values(job)))
            if cache_key is not None:
                await db.execute(
                    Q["add_cache_key"],
                    {
                        "job_id": job.id,
                        "community_id": job.community_id,
                        "cache_key": cache_key,
                        "created_at": now,
                    },
                )
        return Admission(job, True, decision)

    async def read_usage(self, plan: LimitPlan, now: float) -> Usage:
        return await self._usage(self._reader, plan, now)

    async def _usage(self, db: aiosqlite.Connection, plan: LimitPlan, now: float) -> Usage:
        params = {
            "community_id": plan.community_id,
            "user_id": plan.user_id,
            "day_start": day_start(now),
            "key": plan.rate_key,
        }
        async with db.execute(Q["get_rate_tat"], params) as cursor:
            tat_row = await cursor.fetchone()
        async with db.execute(Q["user_usage"], params) as cursor:
            user_row = await cursor.fetchone()
        async with db.execute(Q["community_usage"], params) as cursor:
            community_row = await cursor.fetchone()
        assert user_row is not None and community_row is not None
        return Usage(
            rate_tat=float(tat_row[0]) if tat_row else None,
            user_images_today=int(user_row[0]),
            user_in_flight=int(user_row[1]),
            community_images_today=int(community_row[0]),
            community_spent_usd=float(community_row[1]),
        )

    async def find_cached_job(self, community_id: str, cache_key: str) -> Job | None:
        row = await self._fetchone(
            Q["find_cached_job"], {"community_id": community_id, "cache_key": cache_key}
        )
        return job_from_row(dict(row)) if row else None

    async def add_audit(self, entry: AuditEntry) -> None:
        async with self._write() as db:
            await db.execute(Q["add_audit"], _audit_values(entry))

    async def list_audit(self, community_id: str, limit: int) -> list[AuditEntry]:
        params = {"community_id": community_id, "limit": limit}
        async with self._reader.execute(Q["list_audit"], params) as cursor:
            rows = await cursor.fetchall()
        return [
            AuditEntry(
                id=int(row[0]),
                community_id=row[1],
                at=float(row[2]),
                actor_id=row[3],
                kind=row[4],
                action=row[5],
                detail=row[6],
                channel_id=row[7],
            )
            for row in rows
        ]


_ADMITTED = Decision(True)


def _audit_values(entry: AuditEntry) -> dict[str, Any]:
    return {
        "community_id": entry.community_id,
        "at": entry.at,
        "actor_id": entry.actor_id,
        "kind": entry.kind,
        "action": entry.action,
        "detail": entry.detail,
        "channel_id": entry.channel_id,
    }


def _split_statements(sql: str) -> list[str]:
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
