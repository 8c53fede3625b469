"""aiosqlite connections of the SQLite store: how each is opened (WAL), how its errors read, the
named queries run on it, and the migrations applied through it."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import aiosqlite

from bot.domain.errors import StoreError
from bot.store.sql import load_migrations, load_queries

Q = load_queries("sqlite")
# How long a connection waits for another process's write lock before it gives up.
BUSY_TIMEOUT = 30.0


def path_from_url(url: str) -> str:
    """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or ``sqlite:///:memory:``."""
    if not url.startswith("sqlite:///"):
        raise StoreError("IMAGINE_DATABASE_URL: a SQLite URL looks like sqlite:///data/imagine.db")
    return url.removeprefix("sqlite:///")


@contextlib.contextmanager
def sqlite_errors() -> Iterator[None]:
    """sqlite3's errors, raised on aiosqlite's thread, become StoreError for the caller."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite: {type(exc).__name__}: {exc}") from exc


async def connect(path: str) -> aiosqlite.Connection:
    """A connection set up as every connection of the store is: WAL, and commits that survive a
    killed process (``synchronous=NORMAL`` loses at most the last commits on power loss).
    Transactions are begun explicitly (``isolation_level=None``)."""
    db = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
    try:
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        await db.close()
        raise
    return db


class SqliteSql:
    """The named queries of ``bot/store/sqlite/queries.sql`` on one connection, one thread hop
    each (aiosqlite runs every call on the connection's own thread)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def one(self, name: str, params: Mapping[str, Any] | None = None) -> sqlite3.Row | None:
        rows = await self.all(name, params)
        return rows[0] if rows else None

    async def all(self, name: str, params: Mapping[str, Any] | None = None) -> list[sqlite3.Row]:
        with sqlite_errors():
            return list(await self._db.execute_fetchall(Q[name], params or {}))

    async def run(self, name: str, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement; return how many rows it changed."""
        with sqlite_errors():
            cursor = await self._db.execute(Q[name], params or {})
        return int(cursor.rowcount)

    async def raw(self, statement: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Run SQL that is not a named query (migrations, checks); return its rows."""
        with sqlite_errors():
            return list(await self._db.execute_fetchall(statement, params))


async def migrate(sql: SqliteSql) -> None:
    """Apply the migrations not applied yet (run inside the writer's transaction)."""
    await sql.raw(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    applied = {int(row[0]) for row in await sql.raw("SELECT version FROM schema_migrations")}
    for version, text in load_migrations("sqlite"):
        if version in applied:
            continue
        for statement in split_statements(text):
            await sql.raw(statement)
        await sql.raw(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
            (version, time.time()),
        )


async def close_all(connections: list[aiosqlite.Connection]) -> None:
    for db in connections:
        with contextlib.suppress(sqlite3.Error):
            await db.close()


def split_statements(sql: str) -> list[str]:
    """A migration file as statements, one per execute (a script would commit on its own)."""
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
