"""The SQLite store: one file in WAL mode. Each store call is one hop to the thread that owns a
plain ``sqlite3`` connection, where it runs whole (writes as one ``BEGIN IMMEDIATE`` transaction,
possibly sharing its commit with the writes queued beside it: see ``sqlite_thread``)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bot.domain.community import AuditEntry
from bot.domain.errors import StoreError
from bot.domain.limits import Decision, LimitPlan, Usage, day_start, decide
from bot.domain.models import CommunitySettings, Job, JobStatus, dumps
from bot.store.base import (
    Admission,
    AuditQuery,
    DayUsage,
    JobCounts,
    ProviderError,
    ProviderSpend,
    UserUsage,
    as_follower,
    job_from_row,
    job_row_values,
    job_step_values,
    load_migrations,
    load_queries,
)
from bot.store.sqlite_thread import DatabaseThread, in_snapshot

Q = load_queries("sqlite")
T = TypeVar("T")


def path_from_url(url: str) -> str:
    """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or ``sqlite:///:memory:``."""
    if not url.startswith("sqlite:///"):
        raise StoreError("IMAGINE_DATABASE_URL: a SQLite URL looks like sqlite:///data/imagine.db")
    return url.removeprefix("sqlite:///")


class SqliteStore:
    """Writes go through one writer connection (SQLite has one writer at a time anyway), reads
    through a reader connection on its own thread, so reads never wait behind a write."""

    def __init__(self, writer: DatabaseThread, reader: DatabaseThread) -> None:
        self._writer = writer
        self._reader = reader

    @classmethod
    async def open(cls, url: str) -> SqliteStore:
        path = path_from_url(url)
        writer = DatabaseThread("sqlite-writer")
        reader = DatabaseThread("sqlite-reader") if path != ":memory:" else writer
        store = cls(writer, reader)
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            await writer.open(path)
            if reader is not writer:
                await reader.open(path)
        except (StoreError, OSError) as exc:
            await store.aclose()
            cause = exc.__cause__ if isinstance(exc, StoreError) and exc.__cause__ else exc
            raise StoreError(
                f"IMAGINE_DATABASE_URL: cannot open the SQLite database at {path}: {cause}"
            ) from None
        except BaseException:
            await store.aclose()
            raise
        try:
            await store.migrate()
        except BaseException:
            await store.aclose()
            raise
        return store

    async def aclose(self) -> None:
        try:
            if self._reader is not self._writer:
                await self._reader.close()
        finally:
            await self._writer.close()

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` as one transaction of the writer connection: one hop to its thread."""
        return await self._writer.transact(work)

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._reader.run(work)

    async def _fetchone(self, sql: str, params: dict[str, Any]) -> sqlite3.Row | None:
        row: sqlite3.Row | None = await self._read(lambda db: db.execute(sql, params).fetchone())
        return row

    async def migrate(self) -> None:
        await self._write(_migrate)

    async def ping(self) -> None:
        await self._fetchone("SELECT 1", {})

    async def listen_for_work(self, callback: Callable[[], None]) -> bool:
        return False  # one process per file: the in-process events are enough

    # Jobs ---------------------------------------------------------------------------------------

    async def enqueue_job(self, job: Job) -> tuple[Job, bool]:
        values = dict(job_row_values(job))

        def enqueue(db: sqlite3.Connection) -> sqlite3.Row | None:
            if db.execute(Q["insert_job"], values).rowcount == 1:
                return None
            found: sqlite3.Row | None = db.execute(
                Q["get_job_by_dedupe"], {"dedupe_key": job.request.dedupe_key}
            ).fetchone()
            if found is None:  # pragma: no cover - the conflict was on the dedupe key
                raise StoreError(f"job {job.id} was neither stored nor found")
            return found

        earlier = await self._write(enqueue)
        return (job, True) if earlier is None else (job_from_row(dict(earlier)), False)

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._fetchone(Q["get_job"], {"id": job_id})
        return job_from_row(dict(row)) if row else None

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

        def claim(db: sqlite3.Connection) -> list[sqlite3.Row]:
            rows: list[sqlite3.Row] = []
            for _ in range(limit):
                candidate = _claim_candidate(db, params)
                if candidate is None:
                    break
                job_id, community_id, user_id = candidate[0], candidate[1], candidate[2]
                db.execute(Q["lease_job"], {**lease, "id": job_id})
                db.execute(Q["mark_dispatched"], {"key": f"c:{community_id}"})
                db.execute(Q["mark_dispatched"], {"key": f"u:{community_id}:{user_id}"})
                rows.append(db.execute(Q["get_job"], {"id": job_id}).fetchone())
            return rows

        return [job_from_row(dict(row)) for row in await self._write(claim)]

    async def renew_leases(
        self, worker_id: str, job_ids: Iterable[str], now: float, lease_seconds: float
    ) -> set[str]:
        ids = list(job_ids)
        if not ids:
            return set()

        def renew(db: sqlite3.Connection) -> set[str]:
            held: set[str] = set()
            for job_id in ids:
                params = {"id": job_id, "worker_id": worker_id, "expires_at": now + lease_seconds}
                if db.execute(Q["renew_lease"], params).rowcount == 1:
                    held.add(job_id)
            return held

        return await self._write(renew)

    async def release_job(self, job_id: str, worker_id: str, not_before: float) -> None:
        params = {"id": job_id, "worker_id": worker_id, "not_before": not_before}
        await self._write(lambda db: db.execute(Q["release_job"], params))

    async def save_job_step(self, job: Job, *, worker_id: str, expected: JobStatus) -> bool:
        # What the request decided never changes after the job is stored: not written again.
        values = job_step_values(job)
        values.update(worker_id=worker_id, expected=expected.value)
        return await self._write(lambda db: db.execute(Q["save_job_step"], values).rowcount == 1)

    async def merge_job_delivery(self, job_id: str, values: Mapping[str, Any]) -> bool:
        params = {"id": job_id, "patch": dumps(dict(values))}
        return await self._write(
            lambda db: db.execute(Q["merge_job_delivery"], params).rowcount == 1
        )

    async def lease_owners(self) -> set[str]:
        return await self._read(
            lambda db: {str(row[0]) for row in db.execute(Q["lease_owners"]).fetchall()}
        )

    async def release_leases_of(self, worker_id: str) -> int:
        params = {"worker_id": worker_id}
        return await self._write(lambda db: db.execute(Q["release_leases_of"], params).rowcount)

    async def count_pending(self, platforms: Iterable[str]) -> int:
        row = await self._fetchone(Q["count_pending"], {"platforms": json.dumps(sorted(platforms))})
        return int(row[0]) if row else 0

    async def cancel_job(self, job_id: str, now: float) -> Job | None:
        def cancel(db: sqlite3.Connection) -> sqlite3.Row | None:
            db.execute(Q["cancel_job"], {"id": job_id, "now": now})
            row: sqlite3.Row | None = db.execute(Q["get_job"], {"id": job_id}).fetchone()
            return row

        row = await self._write(cancel)
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
        params = {
            "community_id": settings.community_id,
            "settings_json": dumps(settings.to_json()),
            "now": now,
        }
        await self._write(lambda db: db.execute(Q["save_settings"], params))

    async def change_settings(
        self,
        community_id: str,
        change: Callable[[CommunitySettings | None], CommunitySettings],
        audit: AuditEntry,
    ) -> CommunitySettings:
        # ``change`` runs on the writer's thread, inside the transaction: it is a pure function
        # of the stored settings, and an error it raises rolls the transaction back.
        def read_modify_write(db: sqlite3.Connection) -> CommunitySettings:
            row = db.execute(Q["get_settings"], {"community_id": community_id}).fetchone()
            current = CommunitySettings.from_json(json.loads(row[0])) if row else None
            new = change(current)
            params = {
                "community_id": community_id,
                "settings_json": dumps(new.to_json()),
                "now": audit.at,
            }
            db.execute(Q["save_settings"], params)
            db.execute(Q["add_audit"], _audit_values(audit))
            return new

        return await self._write(read_modify_write)

    # Limits, cache and audit --------------------------------------------------------------------

    async def admit_job(
        self,
        job: Job,
        plan: LimitPlan,
        cache_key: str | None = None,
        *,
        share_in_flight: bool = False,
    ) -> Admission:
        return await self._write(
            partial(_admit, job, plan, cache_key=cache_key, share_in_flight=share_in_flight)
        )

    async def read_usage(self, plan: LimitPlan, now: float) -> Usage:
        return await self._read(partial(in_snapshot, partial(_usage, plan=plan, now=now)))

    async def find_cached_job(self, community_id: str, cache_key: str) -> Job | None:
        row = await self._fetchone(
            Q["find_cached_job"], {"community_id": community_id, "cache_key": cache_key}
        )
        return job_from_row(dict(row)) if row else None

    async def add_audit(self, entry: AuditEntry) -> None:
        params = _audit_values(entry)
        await self._write(lambda db: db.execute(Q["add_audit"], params))

    async def list_audit(self, community_id: str, limit: int) -> list[AuditEntry]:
        params = {"community_id": community_id, "limit": limit}
        return [_audit_entry(row) for row in await self._rows("list_audit", params)]

    async def search_audit(self, query: AuditQuery) -> list[AuditEntry]:
        params = {
            "community_id": query.community_id,
            "limit": query.limit,
            "before_id": query.before_id,
            "actor_id": query.actor_id,
            "kind": query.kind,
        }
        return [_audit_entry(row) for row in await self._rows("search_audit", params)]

    # Reports ------------------------------------------------------------------------------------

    async def _rows(self, name: str, params: dict[str, Any]) -> list[sqlite3.Row]:
        sql = Q[name]
        rows: list[sqlite3.Row] = await self._read(lambda db: db.execute(sql, params).fetchall())
        return rows

    async def usage_by_day(self, community_id: str, since: float) -> list[DayUsage]:
        rows = await self._rows("usage_by_day", {"community_id": community_id, "since": since})
        return [DayUsage(int(r[0]), int(r[1]), float(r[2])) for r in rows]

    async def top_users(self, community_id: str, since: float, limit: int) -> list[UserUsage]:
        params = {"community_id": community_id, "since": since, "limit": limit}
        rows = await self._rows("top_users", params)
        return [UserUsage(str(r[0]), int(r[1]), float(r[2])) for r in rows]

    async def refusals_by_reason(self, community_id: str, since: float) -> dict[str, int]:
        params = {"community_id": community_id, "since": since}
        return {str(r[0]): int(r[1]) for r in await self._rows("refusals_by_reason", params)}

    async def community_job_counts(self, community_id: str) -> JobCounts:
        rows = await self._rows("community_job_counts", {"community_id": community_id})
        return JobCounts(queued=int(rows[0][0]), running=int(rows[0][1]))

    async def spend_by_provider(self, since: float) -> list[ProviderSpend]:
        rows = await self._rows("spend_by_provider", {"since": since})
        return [ProviderSpend(str(r[0]), int(r[1]), float(r[2])) for r in rows]

    async def last_provider_errors(self, since: float) -> list[ProviderError]:
        rows = await self._rows("last_provider_errors", {"since": since})
        return [ProviderError(r[0], r[1], r[2] or "", float(r[3])) for r in rows]


_ADMITTED = Decision(True)


def _admit(
    job: Job,
    plan: LimitPlan,
    db: sqlite3.Connection,
    *,
    cache_key: str | None,
    share_in_flight: bool,
) -> Admission:
    """The body of ``SqliteStore.admit_job``, run inside its write transaction."""
    now = job.created_at
    if job.request.dedupe_key is not None:
        row = db.execute(Q["get_job_by_dedupe"], {"dedupe_key": job.request.dedupe_key}).fetchone()
        if row is not None:
            return Admission(job_from_row(dict(row)), False, _ADMITTED)
    usage = _usage(db, plan=plan, now=now)
    decision = decide(plan, usage, now=now, images=job.request.count, cost_usd=job.cost_usd)
    if decision.new_tat is not None:
        db.execute(Q["set_rate_tat"], {"key": plan.rate_key, "tat": decision.new_tat})
    if not decision.admitted:
        return Admission(job, False, decision)
    if share_in_flight and cache_key is not None:
        params = {"community_id": job.community_id, "cache_key": cache_key}
        leader = db.execute(Q["find_leader_job"], params).fetchone()
        if leader is not None:
            job = as_follower(job, str(leader[0]))
    db.execute(Q["insert_job"], dict(job_row_values(job)))
    if cache_key is not None:
        db.execute(
            Q["add_cache_key"],
            {
                "job_id": job.id,
                "community_id": job.community_id,
                "cache_key": cache_key,
                "created_at": now,
            },
        )
    return Admission(job, True, decision)


def _claim_candidate(db: sqlite3.Connection, params: dict[str, Any]) -> sqlite3.Row | None:
    """The next job in fair order: the community served longest ago, then within it the user
    served longest ago, then that user's oldest job (``never served`` counts as first).

    Communities are taken in their order and only the first one with a claimable job is asked
    about its users; communities never served tie (order 0), and between those the user order
    and the job's age decide, exactly as one sort of all pending jobs would."""
    best: sqlite3.Row | None = None
    best_order = 0
    for community_id, community_order in db.execute(Q["claim_communities"]).fetchall():
        if best is not None and community_order != best_order:
            break
        found = db.execute(Q["claim_in_community"], {**params, "community_id": community_id})
        candidate: sqlite3.Row | None = found.fetchone()
        if candidate is None:
            continue
        if best is None or _user_rank(candidate) < _user_rank(best):
            best, best_order = candidate, community_order
    return best


def _user_rank(candidate: sqlite3.Row) -> tuple[int, float]:
    return int(candidate["user_order"]), float(candidate["created_at"])


def _usage(db: sqlite3.Connection, *, plan: LimitPlan, now: float) -> Usage:
    params = {
        "community_id": plan.community_id,
        "user_id": plan.user_id,
        "day_start": day_start(now),
        "key": plan.rate_key,
    }
    tat_row = db.execute(Q["get_rate_tat"], params).fetchone()
    user_row = db.execute(Q["user_usage"], params).fetchone()
    community_row = db.execute(Q["community_usage"], params).fetchone()
    return Usage(
        rate_tat=float(tat_row[0]) if tat_row else None,
        user_images_today=int(user_row[0]),
        user_in_flight=int(user_row[1]),
        community_images_today=int(community_row[0]),
        community_spent_usd=float(community_row[1]),
    )


def _migrate(db: sqlite3.Connection) -> None:
    """Apply the migrations not applied yet (run inside the writer's transaction)."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    applied = {int(row[0]) for row in db.execute("SELECT version FROM schema_migrations")}
    for version, sql in load_migrations("sqlite"):
        if version in applied:
            continue
        for statement in _split_statements(sql):
            db.execute(statement)
        db.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
            (version, time.time()),
        )


def _audit_entry(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        id=int(row[0]),
        community_id=row[1],
        at=float(row[2]),
        actor_id=row[3],
        kind=row[4],
        action=row[5],
        detail=row[6],
        channel_id=row[7],
        origin=row[8],
    )


def _audit_values(entry: AuditEntry) -> dict[str, Any]:
    return {
        "community_id": entry.community_id,
        "at": entry.at,
        "actor_id": entry.actor_id,
        "kind": entry.kind,
        "action": entry.action,
        "detail": entry.detail,
        "channel_id": entry.channel_id,
        "origin": entry.origin,
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
