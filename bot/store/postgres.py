"""The PostgreSQL store: an asyncpg pool shared by several processes, claims with
``FOR UPDATE SKIP LOCKED``, and LISTEN/NOTIFY to wake idle workers of every process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg

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

log = logging.getLogger(__name__)

WORK_CHANNEL = "imagine_work"
# pg_advisory_xact_lock(MIGRATION_LOCK, hashtext(schema)): one migrating process per schema.
MIGRATION_LOCK = 0x1A61
CONNECT_TIMEOUT = 10.0
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)
# Every statement is short (no transaction spans a provider call), so a few connections serve many
# concurrent jobs; several processes share the server's max_connections.
POOL_SIZE = 3
# A server that is starting up or full may answer in a moment: tried this many times at start.
BUSY_RETRIES = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
_PARAM = re.compile(r"(?<!:):([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Query:
    """A named query with ``:name`` parameters rewritten to asyncpg's ``$n``."""

    name: str
    sql: str
    params: tuple[str, ...]

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        try:
            return [values[p] for p in self.params]
        except KeyError as exc:  # pragma: no cover - a programming error caught by the contract
            raise StoreError(f"query {self.name} needs parameter {exc.args[0]}") from None


def compile_query(name: str, text: str) -> Query:
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        param = match.group(1)
        if param not in order:
            order.append(param)
        return f"${order.index(param) + 1}"

    # Comments may contain colons ("-- note: x"); drop them before numbering parameters.
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return Query(name, _PARAM.sub(number, body), tuple(order))


Q = {name: compile_query(name, sql) for name, sql in load_queries("postgres").items()}


def redact_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def schema_of(url: str) -> str | None:
    """The first schema of ``?search_path=`` in the URL, if one is named."""
    for key, value in parse_qsl(urlsplit(url).query):
        if key == "search_path":
            first = value.split(",")[0].strip().strip('"')
            return first or None
    return None


class PostgresStore:
    def __init__(self, pool: asyncpg.Pool, url: str, schema: str) -> None:
        self._pool = pool
        self._url = url
        self._schema = schema
        self._listener: asyncpg.Connection | None = None
        self._on_work: list[Callable[[], None]] = []
        self._reconnect: asyncio.Task[None] | None = None
        self._closing = False

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = POOL_SIZE) -> PostgresStore:
        pool = await _create_pool(url, min_size=min_size, max_size=max_size)
        try:
            schema = await migrate(pool, schema_of(url))
        except BaseException:
            await pool.close()
            raise
        return cls(pool, url, schema)

    async def aclose(self) -> None:
        self._closing = True
        if self._reconnect is not None:
            self._reconnect.cancel()
            await asyncio.gather(self._reconnect, return_exceptions=True)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=5)
        await self._pool.close()

    async def ping(self) -> None:
        try:
            await self._pool.fetchval("SELECT 1", timeout=5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise StoreError(f"PostgreSQL is not answering: {type(exc).__name__}") from exc

    async def _fetch(self, name: str, values: Mapping[str, Any]) -> list[asyncpg.Record]:
        query = Q[name]
        return await self._pool.fetch(query.sql, *query.args(values))

    async def _fetchrow(self, name: str, values: Mapping[str, Any]) -> asyncpg.Record | None:
        query = Q[name]
        return await self._pool.fetchrow(query.sql, *query.args(values))

    async def _execute(self, name: str, values: Mapping[str, Any]) -> int:
        """Run a statement; return how many rows it changed."""
        query = Q[name]
        status = await self._pool.execute(query.sql, *query.args(values))
        return _rowcount(status)

    # Waking workers ------------------------------------------------------------------------------

    async def listen_for_work(self, callback: Callable[[], None]) -> bool:
        """Call ``callback`` whenever any process queues or hands back a job in this schema."""
        self._on_work.append(callback)
        if self._listener is None:
            await self._listen()
        return True

    async def _listen(self) -> None:
        # Named so an operator can tell it apart in pg_stat_activity.
        conn = await asyncpg.connect(
            self._url,
            timeout=CONNECT_TIMEOUT,
            server_settings={"application_name": f"imagine-bot listen {self._schema}"[:63]},
        )
        await conn.add_listener(WORK_CHANNEL, self._notified)
        conn.add_termination_listener(self._listener_lost)
        self._listener = conn

    def _notified(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if payload != self._schema:
            return  # another bot (or test run) sharing the database
        for callback in self._on_work:
            callback()

    def _listener_lost(self, conn: object) -> None:
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
            for callback in self._on_work:
                callback()
            return

    # Jobs ---------------------------------------------------------------------------------------

    async def enqueue_job(self, job: Job) -> tuple[Job, bool]:
        values = _job_values(job)
        try:
            inserted = await self._fetchrow("insert_job", values)
            if inserted is not None:
                return job, True
            row = await self._fetchrow("get_job_by_dedupe", {"dedupe_key": job.request.dedupe_key})
        except asyncpg.UniqueViolationError as exc:
            raise StoreError(f"job {job.id} already exists") from exc
        if row is None:  # pragma: no cover - the conflict was on the dedupe key
            raise StoreError(f"job {job.id} was neither stored nor found")
        return job_from_row(dict(row)), False

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._fetchrow("get_job", {"id": job_id})
        return job_from_row(dict(row)) if row else None

    async def claim_next_job(
        self, worker_id: str, now: float, lease_seconds: float, platforms: Iterable[str]
    ) -> Job | None:
        row = await self._fetchrow(
            "claim_next_job",
            {
                "worker_id": worker_id,
                "now": now,
                "expires_at": now + lease_seconds,
                "platforms": sorted(platforms),
            },
        )
        return job_from_row(dict(row)) if row else None

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
        rows = await self._fetch(
            "renew_leases",
            {"ids": ids, "worker_id": worker_id, "expires_at": now + lease_seconds},
        )
        return {str(row["id"]) for row in rows}

    async def release_job(self, job_id: str, worker_id: str, not_before: float) -> None:
        await self._fetch(
            "release_job", {"id": job_id, "worker_id": worker_id, "not_before": not_before}
        )

    async def save_job_step(self, job: Job, *, worker_id: str, expected: JobStatus) -> bool:
        values = _for_postgres(job_step_values(job))
        values.update(worker_id=worker_id, expected=expected.value)
        return await self._execute("save_job_step", values) == 1

    async def merge_job_delivery(self, job_id: str, values: Mapping[str, Any]) -> bool:
        patch = {"id": job_id, "patch": dumps(dict(values))}
        return await self._execute("merge_job_delivery", patch) == 1

    async def lease_owners(self) -> set[str]:
        rows = await self._fetch("lease_owners", {})
        return {str(row[0]) for row in rows}

    async def release_leases_of(self, worker_id: str) -> int:
        row = await self._fetchrow("release_leases_of", {"worker_id": worker_id})
        return int(row["released"]) if row else 0

    async def count_pending(self, platforms: Iterable[str]) -> int:
        row = await self._fetchrow("count_pending", {"platforms": sorted(platforms)})
        return int(row[0]) if row else 0

    async def cancel_job(self, job_id: str, now: float) -> Job | None:
        async with self._pool.acquire() as conn, conn.transaction():
            cancel, get = Q["cancel_job"], Q["get_job"]
            await conn.execute(cancel.sql, *cancel.args({"id": job_id, "now": now}))
            row = await conn.fetchrow(get.sql, *get.args({"id": job_id}))
        return job_from_row(dict(row)) if row else None

    async def queue_position(self, job: Job) -> int:
        if job.status is not JobStatus.QUEUED:
            return 0
        row = await self._fetchrow("queue_position", {"created_at": job.created_at})
        return int(row[0]) if row else 0

    async def job_counts(self) -> JobCounts:
        row = await self._fetchrow("job_counts", {})
        if row is None:  # pragma: no cover - an aggregate always answers one row
            return JobCounts(0, 0)
        return JobCounts(queued=int(row["queued"]), running=int(row["running"]))

    # Community settings -------------------------------------------------------------------------

    async def get_settings(self, community_id: str) -> CommunitySettings | None:
        row = await self._fetchrow("get_settings", {"community_id": community_id})
        return CommunitySettings.from_json(json.loads(row[0])) if row else None

    async def save_settings(self, settings: CommunitySettings, now: float) -> None:
        await self._execute(
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
            await _run(conn, "lock_key", {"key": f"settings:{community_id}"})
            row = await _row(conn, "get_settings", {"community_id": community_id})
            current = CommunitySettings.from_json(json.loads(row[0])) if row else None
            new = change(current)
            await _run(
                conn,
                "save_settings",
                {
                    "community_id": community_id,
                    "settings_json": dumps(new.to_json()),
                    "now": audit.at,
                },
            )
            await _run(conn, "add_audit", _audit_values(audit))
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
            # One decision at a time per community, across every process sharing the database.
            await _run(conn, "lock_key", {"key": f"limits:{job.community_id}"})
            if job.request.dedupe_key is not None:
                row = await _row(conn, "get_job_by_dedupe", {"dedupe_key": job.request.dedupe_key})
                if row is not None:
                    return Admission(job_from_row(dict(row)), False, Decision(True))
            usage = await _usage(conn, plan, now)
            decision = decide(plan, usage, now=now, images=job.request.count, cost_usd=job.cost_usd)
            if decision.new_tat is not None:
                await _run(conn, "set_rate_tat", {"key": plan.rate_key, "tat": decision.new_tat})
            if not decision.admitted:
                return Admission(job, False, decision)
            if share_in_flight and cache_key is not None:
                leader = await _row(
                    conn,
                    "find_leader_job",
                    {"community_id": job.community_id, "cache_key": cache_key},
                )
                if leader is not None:
                    job = as_follower(job, str(leader[0]))
            inserted = await _row(conn, "insert_job", _job_values(job))
            if inserted is None:  # pragma: no cover - the dedupe key was checked under the lock
                raise StoreError(f"job {job.id} was not stored")
            if cache_key is not None:
                await _run(
                    conn,
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
            return await _usage(conn, plan, now)

    async def find_cached_job(self, community_id: str, cache_key: str) -> Job | None:
        row = await self._fetchrow(
            "find_cached_job", {"community_id": community_id, "cache_key": cache_key}
        )
        return job_from_row(dict(row)) if row else None

    async def add_audit(self, entry: AuditEntry) -> None:
        await self._execute("add_audit", _audit_values(entry))

    async def list_audit(self, community_id: str, limit: int) -> list[AuditEntry]:
        rows = await self._fetch("list_audit", {"community_id": community_id, "limit": limit})
        return [_audit_entry(row) for row in rows]

    async def search_audit(self, query: AuditQuery) -> list[AuditEntry]:
        params = {
            "community_id": query.community_id,
            "limit": query.limit,
            "before_id": query.before_id,
            "actor_id": query.actor_id,
            "kind": query.kind,
        }
        return [_audit_entry(row) for row in await self._fetch("search_audit", params)]

    # Reports ------------------------------------------------------------------------------------

    async def usage_by_day(self, community_id: str, since: float) -> list[DayUsage]:
        rows = await self._fetch("usage_by_day", {"community_id": community_id, "since": since})
        return [DayUsage(int(r["day"]), int(r["images"]), float(r["spend"])) for r in rows]

    async def top_users(self, community_id: str, since: float, limit: int) -> list[UserUsage]:
        params = {"community_id": community_id, "since": since, "limit": limit}
        rows = await self._fetch("top_users", params)
        return [UserUsage(r["user_id"], int(r["images"]), float(r["spend"])) for r in rows]

    async def refusals_by_reason(self, community_id: str, since: float) -> dict[str, int]:
        params = {"community_id": community_id, "since": since}
        rows = await self._fetch("refusals_by_reason", params)
        return {r["action"]: int(r["refusals"]) for r in rows}

    async def community_job_counts(self, community_id: str) -> JobCounts:
        row = await self._fetchrow("community_job_counts", {"community_id": community_id})
        if row is None:  # pragma: no cover - an aggregate always answers one row
            return JobCounts(0, 0)
        return JobCounts(queued=int(row["queued"]), running=int(row["running"]))

    async def spend_by_provider(self, since: float) -> list[ProviderSpend]:
        rows = await self._fetch("spend_by_provider", {"since": since})
        return [ProviderSpend(r["provider"], int(r["images"]), float(r["spend"])) for r in rows]

    async def last_provider_errors(self, since: float) -> list[ProviderError]:
        rows = await self._fetch("last_provider_errors", {"since": since})
        return [
            ProviderError(r["provider"], r["error_code"], r["error_message"] or "", float(r["at"]))
            for r in rows
        ]


if TYPE_CHECKING:
    _Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]


async def _row(conn: _Conn, name: str, values: Mapping[str, Any]) -> asyncpg.Record | None:
    query = Q[name]
    return await conn.fetchrow(query.sql, *query.args(values))


async def _run(conn: _Conn, name: str, values: Mapping[str, Any]) -> None:
    query = Q[name]
    await conn.execute(query.sql, *query.args(values))


async def _usage(conn: _Conn, plan: LimitPlan, now: float) -> Usage:
    params = {
        "community_id": plan.community_id,
        "user_id": plan.user_id,
        "day_start": day_start(now),
        "key": plan.rate_key,
    }
    tat = await _row(conn, "get_rate_tat", params)
    user = await _row(conn, "user_usage", params)
    community = await _row(conn, "community_usage", params)
    assert user is not None and community is not None
    return Usage(
        rate_tat=float(tat[0]) if tat else None,
        user_images_today=int(user[0]),
        user_in_flight=int(user[1]),
        community_images_today=int(community[0]),
        community_spent_usd=float(community[1]),
    )


def _audit_entry(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(
        id=int(row["id"]),
        community_id=row["community_id"],
        at=float(row["at"]),
        actor_id=row["actor_id"],
        kind=row["kind"],
        action=row["action"],
        detail=row["detail"],
        channel_id=row["channel_id"],
        origin=row["origin"],
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


async def _create_pool(url: str, *, min_size: int, max_size: int) -> asyncpg.Pool:
    for delay in (*BUSY_RETRIES, None):
        try:
            return await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, timeout=CONNECT_TIMEOUT
            )
        except (asyncpg.TooManyConnectionsError, asyncpg.CannotConnectNowError) as exc:
            if delay is None:
                raise StoreError(
                    f"PostgreSQL at {redact_url(url)} refuses connections: {exc}"
                ) from None
            log.warning("PostgreSQL is busy (%s); trying again in %.1f s", exc, delay)
            await asyncio.sleep(delay)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise StoreError(
                f"cannot connect to PostgreSQL at {redact_url(url)}: {type(exc).__name__}: {exc}"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


async def migrate(pool: asyncpg.Pool, schema: str | None) -> str:
    """Apply the versioned migrations not yet applied; return the schema they live in.

    Several processes may start at once: an advisory lock held for the transaction lets one
    migrate while the others wait, then find nothing left to do."""
    async with pool.acquire() as conn, conn.transaction():
        if schema is not None:
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))", MIGRATION_LOCK, schema
            )
            exists = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
            if not exists:
                await conn.execute(f"CREATE SCHEMA {_identifier(schema)}")
        current = await conn.fetchval("SELECT current_schema()")
        if current is None:
            raise StoreError(
                "PostgreSQL has no schema to create tables in: name one with ?search_path= "
                "in IMAGINE_DATABASE_URL"
            )
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", MIGRATION_LOCK, current
        )
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        applied = {int(r[0]) for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, sql in load_migrations("postgres"):
            if version in applied:
                continue
            log.info("applying PostgreSQL migration %04d in schema %s", version, current)
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                version,
                time.time(),
            )
    return str(current)


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise StoreError(
            f"IMAGINE_DATABASE_URL: search_path {name!r} is not a plain schema name "
            "(letters, digits and underscores)"
        )
    return f'"{name}"'


def _job_values(job: Job) -> dict[str, Any]:
    return _for_postgres(dict(job_row_values(job)))


def _for_postgres(values: dict[str, Any]) -> dict[str, Any]:
    """A job's column values as PostgreSQL takes them (``outcome_sent`` is a boolean there)."""
    values["outcome_sent"] = bool(values["outcome_sent"])
    return values


def _rowcount(status: str) -> int:
    """asyncpg answers a command tag such as ``UPDATE 1`` or ``INSERT 0 1``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0
