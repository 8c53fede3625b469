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

    async def _write_one(self, name: str, params: Mapping[str, Any]) -> int:
        # One statement needs no BEGIN and COMMIT of its own: outside a transaction SQLite runs
        # it as one, taking the write lock (waiting out other processes) before it reads a row.
        # One hop to the writer's thread instead of three.
        self._check_open()
        async with self._write_lock:
            self._check_open()
            return await self._write_sql.run(name, params)

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
        jobs: list[Job] = []
        async with self._writing() as sql:
            while len(jobs) < limit:
                picks, more = await _fair_picks(sql, {**params, "limit": limit - len(jobs)})
                if picks:
                    jobs += await _lease(sql, picks, lease)
                if not more:
                    break
        return jobs

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


async def _fair_picks(sql: SqliteSql, params: dict[str, Any]) -> tuple[list[sqlite3.Row], bool]:
    """Up to ``params["limit"]`` jobs in fair order, the ones that as many claims one after the other would
    take: each time the community served longest ago, then within it the user served longest ago,
    then that user's oldest job (``never served`` counts as first); a community or user served
    goes to the back.

    Communities are taken in their order, and only the first ones with a claimable job are asked
    about their users: one query per community gives each user's oldest claimable job in the
    order the users are served. Communities never served tie (order 0), and between those the
    user order and the job's age decide, exactly as one sort of all pending jobs would. A user's
    next job is not among those: when a community's list runs out and its turn comes again, the
    picks so far are returned with ``more`` true, to be leased before the store is asked again."""
    communities = await sql.all("claim_communities")
    # (0, stored order) before this claim; (1, n) once served as the n-th pick of this claim.
    order = {str(row[0]): (0, int(row[1])) for row in communities}
    heads: dict[str, list[sqlite3.Row]] = {}
    picks: list[sqlite3.Row] = []
    while len(picks) < params["limit"]:
        best: sqlite3.Row | None = None
        best_order = (0, 0)
        for community_id in sorted(order, key=order.__getitem__):
            if best is not None and order[community_id] != best_order:
                break
            if community_id not in heads:
                query = {**params, "community_id": community_id}
                heads[community_id] = await sql.all("claim_in_community", query)
            elif not heads[community_id] and order[community_id][0] == 1:
                return picks, True
            if heads[community_id] and (
                best is None or _user_rank(heads[community_id][0]) < _user_rank(best)
            ):
                best, best_order = heads[community_id][0], order[community_id]
        if best is None:
            return picks, False
        community_id = str(best["community_id"])
        heads[community_id].pop(0)
        picks.append(best)
        order[community_id] = (1, len(picks))
    return picks, False


async def _lease(sql: SqliteSql, picks: list[sqlite3.Row], lease: dict[str, Any]) -> list[Job]:
    """Lease the picked jobs and move their communities and users to the back of the dispatch
    order, in the order they were picked; the leased jobs in that order."""
    ids = [str(pick["id"]) for pick in picks]
    leased = await sql.all("lease_jobs", {**lease, "ids": json.dumps(ids)})
    ranks: dict[str, int] = {}
    for n, pick in enumerate(picks):
        community_id, user_id = pick["community_id"], pick["user_id"]
        ranks[f"c:{community_id}"] = 2 * n + 1
        ranks[f"u:{community_id}:{user_id}"] = 2 * n + 2
    await sql.run("mark_dispatched", {"keys": json.dumps(list(ranks.items()))})
    by_id = {str(row["id"]): row for row in leased}
    return [job_from_row(by_id[job_id]) for job_id in ids]


def _user_rank(candidate: sqlite3.Row) -> tuple[int, float]:
    return int(candidate["user_order"]), float(candidate["created_at"])
