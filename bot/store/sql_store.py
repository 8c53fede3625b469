"""``SqlStore``: the ``Store`` methods every backend runs alike, each as named queries through the
backend's ``Sql``. A backend adds how it connects, reads, writes and claims, and how it wakes
other processes (``sqlite/``, ``postgres/``)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from bot.domain.community import AuditEntry
from bot.domain.limits import LimitPlan, Usage
from bot.domain.models import CommunitySettings, Job, JobStatus, dumps
from bot.domain.preferences import Preferences
from bot.store.base import (
    Admission,
    AuditQuery,
    DayUsage,
    JobCounts,
    ProviderError,
    ProviderSpend,
    UserUsage,
)
from bot.store.rows import audit_from_row, audit_values, job_from_row, job_step_values
from bot.store.rules import admit, change_settings, read_usage, settings_from_row
from bot.store.sql import Sql


class SqlStore(ABC):
    """The shared half of a backend; the other half implements the hooks below."""

    # Hooks ---------------------------------------------------------------------------------------

    @abstractmethod
    def _reading(self) -> AbstractAsyncContextManager[Sql]:
        """Where reads run (each statement sees the latest commit)."""

    def _snapshot(self) -> AbstractAsyncContextManager[Sql]:
        """Where several reads that must agree run; by default, where any read does."""
        return self._reading()

    @abstractmethod
    def _writing(self, lock: str | None = None) -> AbstractAsyncContextManager[Sql]:
        """One write transaction: all of it is committed, or none. Transactions naming the same
        ``lock`` run one at a time across every process sharing the database."""

    async def _write_one(self, name: str, params: Mapping[str, Any]) -> int:
        """One statement in a transaction of its own; how many rows it changed."""
        async with self._writing() as sql:
            return await sql.run(name, params)

    @abstractmethod
    def _platforms(self, platforms: Iterable[str]) -> Any:
        """A set of platforms as the backend's queries take it."""

    # Jobs ---------------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job | None:
        async with self._reading() as sql:
            row = await sql.one("get_job", {"id": job_id})
        return job_from_row(row) if row else None

    async def release_job(self, job_id: str, worker_id: str, not_before: float) -> None:
        params = {"id": job_id, "worker_id": worker_id, "not_before": not_before}
        await self._write_one("release_job", params)

    async def save_job_step(self, job: Job, *, worker_id: str, expected: JobStatus) -> bool:
        # What the request decided never changes after the job is stored: not written again.
        values = job_step_values(job)
        values.update(worker_id=worker_id, expected=expected.value)
        return await self._write_one("save_job_step", values) == 1

    async def merge_job_delivery(self, job_id: str, values: Mapping[str, Any]) -> bool:
        patch = {"id": job_id, "patch": dumps(dict(values))}
        return await self._write_one("merge_job_delivery", patch) == 1

    async def lease_owners(self) -> set[str]:
        async with self._reading() as sql:
            return {str(row[0]) for row in await sql.all("lease_owners")}

    async def count_pending(self, platforms: Iterable[str]) -> int:
        async with self._reading() as sql:
            row = await sql.one("count_pending", {"platforms": self._platforms(platforms)})
        return int(row[0]) if row else 0

    async def cancel_job(self, job_id: str, now: float) -> Job | None:
        async with self._writing() as sql:
            await sql.run("cancel_job", {"id": job_id, "now": now})
            row = await sql.one("get_job", {"id": job_id})
        return job_from_row(row) if row else None

    async def queue_position(self, job: Job) -> int:
        if job.status is not JobStatus.QUEUED:
            return 0
        async with self._reading() as sql:
            row = await sql.one("queue_position", {"created_at": job.created_at})
        return int(row[0]) if row else 0

    async def job_counts(self) -> JobCounts:
        async with self._reading() as sql:
            row = await sql.one("job_counts")
        if row is None:  # pragma: no cover - an aggregate always answers one row
            return JobCounts(0, 0)
        # SQLite's SUM over no rows is NULL.
        return JobCounts(queued=int(row[0] or 0), running=int(row[1] or 0))

    # Community settings -------------------------------------------------------------------------

    async def get_settings(self, community_id: str) -> CommunitySettings | None:
        async with self._reading() as sql:
            row = await sql.one("get_settings", {"community_id": community_id})
        return settings_from_row(row)

    async def change_settings(
        self,
        community_id: str,
        change: Callable[[CommunitySettings | None], CommunitySettings],
        audit: AuditEntry,
    ) -> CommunitySettings:
        async with self._writing(lock=f"settings:{community_id}") as sql:
            return await change_settings(sql, community_id, change, audit)

    # Personal use: preferences and history -------------------------------------------------------

    async def get_preferences(self, platform: str, user_id: str) -> Preferences | None:
        params = {"platform": platform, "user_id": user_id}
        async with self._reading() as sql:
            row = await sql.one("get_preferences", params)
        return Preferences.from_json(json.loads(row[0])) if row else None

    async def save_preferences(
        self, platform: str, user_id: str, prefs: Preferences, now: float
    ) -> None:
        params: dict[str, Any] = {"platform": platform, "user_id": user_id}
        if prefs.empty:
            await self._write_one("delete_preferences", params)
            return
        params.update(prefs_json=dumps(prefs.to_json()), now=now)
        await self._write_one("save_preferences", params)

    async def list_user_jobs(self, platform: str, user_id: str, limit: int) -> list[Job]:
        params = {"platform": platform, "user_id": user_id, "limit": limit}
        async with self._reading() as sql:
            rows = await sql.all("list_user_jobs", params)
        return [job_from_row(row) for row in rows]

    # Limits, cache and audit --------------------------------------------------------------------

    async def admit_job(
        self,
        job: Job,
        plan: LimitPlan,
        cache_key: str | None = None,
        *,
        share_in_flight: bool = False,
    ) -> Admission:
        # One decision at a time per community, across every process sharing the database.
        async with self._writing(lock=f"limits:{job.community_id}") as sql:
            return await admit(sql, job, plan, cache_key=cache_key, share_in_flight=share_in_flight)

    async def read_usage(self, plan: LimitPlan, now: float) -> Usage:
        async with self._snapshot() as sql:
            return await read_usage(sql, plan, now)

    async def find_cached_job(self, community_id: str, cache_key: str) -> Job | None:
        params = {"community_id": community_id, "cache_key": cache_key}
        async with self._reading() as sql:
            row = await sql.one("find_cached_job", params)
        return job_from_row(row) if row else None

    async def add_audit(self, entry: AuditEntry) -> None:
        await self._write_one("add_audit", audit_values(entry))

    async def list_audit(self, community_id: str, limit: int) -> list[AuditEntry]:
        async with self._reading() as sql:
            rows = await sql.all("list_audit", {"community_id": community_id, "limit": limit})
        return [audit_from_row(row) for row in rows]

    async def search_audit(self, query: AuditQuery) -> list[AuditEntry]:
        params = {
            "community_id": query.community_id,
            "limit": query.limit,
            "before_id": query.before_id,
            "actor_id": query.actor_id,
            "kind": query.kind,
        }
        async with self._reading() as sql:
            rows = await sql.all("search_audit", params)
        return [audit_from_row(row) for row in rows]

    # Reports (the dashboard) --------------------------------------------------------------------

    async def usage_by_day(self, community_id: str, since: float) -> list[DayUsage]:
        params = {"community_id": community_id, "since": since}
        async with self._reading() as sql:
            rows = await sql.all("usage_by_day", params)
        return [DayUsage(int(r["day"]), int(r["images"]), float(r["spend"])) for r in rows]

    async def top_users(self, community_id: str, since: float, limit: int) -> list[UserUsage]:
        params = {"community_id": community_id, "since": since, "limit": limit}
        async with self._reading() as sql:
            rows = await sql.all("top_users", params)
        return [UserUsage(str(r["user_id"]), int(r["images"]), float(r["spend"])) for r in rows]

    async def refusals_by_reason(self, community_id: str, since: float) -> dict[str, int]:
        params = {"community_id": community_id, "since": since}
        async with self._reading() as sql:
            rows = await sql.all("refusals_by_reason", params)
        return {str(r["action"]): int(r["refusals"]) for r in rows}

    async def community_job_counts(self, community_id: str) -> JobCounts:
        async with self._reading() as sql:
            row = await sql.one("community_job_counts", {"community_id": community_id})
        if row is None:  # pragma: no cover - an aggregate always answers one row
            return JobCounts(0, 0)
        return JobCounts(queued=int(row["queued"]), running=int(row["running"]))

    async def spend_by_provider(self, since: float) -> list[ProviderSpend]:
        async with self._reading() as sql:
            rows = await sql.all("spend_by_provider", {"since": since})
        return [
            ProviderSpend(str(r["provider"]), int(r["images"]), float(r["spend"])) for r in rows
        ]

    async def last_provider_errors(self, since: float) -> list[ProviderError]:
        # Each backend's query picks the newest row per provider its own way (SQLite's bare
        # columns beside MAX, PostgreSQL's DISTINCT ON); the rows read the same.
        async with self._reading() as sql:
            rows = await sql.all("last_provider_errors", {"since": since})
        return [
            ProviderError(
                str(r["provider"]), str(r["error_code"]), r["error_message"] or "", float(r["at"])
            )
            for r in rows
        ]
