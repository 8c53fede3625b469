"""The SQLite store: one file in WAL mode, opened through aiosqlite. One writer connection takes
every write as a ``BEGIN IMMEDIATE`` transaction, one after the other; a reader connection
serves reads meanwhile, so reads never wait behind a write."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import aiosqlite

from bot.domain.errors import StoreError
from bot.domain.models import Job
from bot.store.rows import job_from_row
from bot.store.sql_store import SqlStore
from bot.store.sqlite.connection import (
    SqliteSql,
    close_all,
    connect,
    migrate,
    path_from_url,
    sqlite_errors,
)


class SqliteStore(SqlStore):
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
            async with store._writing() as sql:
                await migrate(sql)
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

    # How statements run (see SqlStore) -----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _writing(self, lock: str | None = None) -> AsyncIterator[SqliteSql]:
        # ``lock`` needs nothing more: this one writer is the only one of the file's process.
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

    @contextlib.asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[SqliteSql]:
        self._check_open()
        async with self._read_lock:
            try:
                with sqlite_errors():
                    await self._reader.execute("BEGIN")
                yield self._read_sql
            finally:
                with sqlite_errors():
                    await asyncio.shield(self._reader.rollback())

    def _platforms(self, platforms: Iterable[str]) -> Any:
        return json.dumps(sorted(platforms))  # read with json_each()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the SQLite store is closed")

    async def ping(self) -> None:
        async with self._reading() as sql:
            await sql.raw("SELECT 1")

    async def listen_for_work(self, callback: Callable[[], None]) -> bool:
        return False  # one process per file: the in-process events are enough

    # Claims and leases --------------------------------------------------------------------------

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
        params = {"now": now, "platforms": self._platforms(platforms)}
        lease = {"worker_id": worker_id, "expires_at": now + lease_seconds, "now": now}
        rows: list[sqlite3.Row] = []
        async with self._writing() as sql:
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
        async with self._writing() as sql:
            for job_id in ids:
                params = {"id": job_id, "worker_id": worker_id, "expires_at": now + lease_seconds}
                if await sql.run("renew_lease", params) == 1:
                    held.add(job_id)
        return held

    async def release_leases_of(self, worker_id: str) -> int:
        return await self._write_one("release_leases_of", {"worker_id": worker_id})


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
