"""``imagine-bot migrate-sqlite-to-postgres``: copy an existing SQLite install into PostgreSQL.

Both stores are opened first, so each has every migration applied, and the copy refuses to run
when their schema versions differ. Each SQLite table is copied into the PostgreSQL table of the
same name, column by column; rows already there (same primary key) are kept, so a copy that
stopped half-way can simply be run again. Run it with the bot stopped.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiosqlite
import asyncpg

from bot.domain.errors import StoreError
from bot.store.postgres import PostgresStore
from bot.store.postgres.pool import redact_url
from bot.store.sqlite import SqliteStore
from bot.store.sqlite.connection import path_from_url, sqlite_errors

log = logging.getLogger(__name__)

BATCH = 500
# Tables the stores keep for themselves, never copied.
SKIPPED = {"schema_migrations"}


@dataclass
class TransferReport:
    copied: dict[str, int] = field(default_factory=dict)
    already_there: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [
            f"{table}: {count} copied, {self.already_there.get(table, 0)} already there"
            for table, count in self.copied.items()
        ]


async def copy_sqlite_to_postgres(
    sqlite_url: str,
    postgres_url: str,
    *,
    progress: Callable[[str], None] | None = None,
) -> TransferReport:
    """Copy every row of the SQLite store into the PostgreSQL store; return what was copied."""
    source = await SqliteStore.open(sqlite_url)
    try:
        target = await PostgresStore.open(postgres_url, max_size=2)
        try:
            with sqlite_errors():
                lite = await aiosqlite.connect(path_from_url(sqlite_url))
            try:
                conn = await asyncpg.connect(postgres_url)
                try:
                    with sqlite_errors():
                        return await _copy(lite, conn, progress or (lambda _: None))
                finally:
                    await conn.close()
            finally:
                await lite.close()
        finally:
            await target.aclose()
    except (OSError, asyncpg.PostgresError) as exc:
        raise StoreError(
            f"copying to {redact_url(postgres_url)} failed: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        await source.aclose()


async def _copy(
    lite: aiosqlite.Connection, pg: asyncpg.Connection, progress: Callable[[str], None]
) -> TransferReport:
    lite_version = await _sqlite_version(lite)
    pg_version = await pg.fetchval("SELECT max(version) FROM schema_migrations")
    if lite_version != pg_version:
        raise StoreError(
            f"the SQLite database is at schema version {lite_version} and PostgreSQL at "
            f"{pg_version}: run this imagine-bot version against both before copying"
        )
    report = TransferReport()
    async with pg.transaction():
        for table in await _sqlite_tables(lite):
            columns = await _sqlite_columns(lite, table)
            types = await _postgres_columns(pg, table)
            if not types:
                raise StoreError(f"PostgreSQL has no table {table!r} to copy into")
            missing = [c for c in columns if c not in types]
            if missing:
                raise StoreError(f"PostgreSQL table {table!r} lacks columns {missing}")
            copied, seen = await _copy_table(lite, pg, table, columns, types)
            report.copied[table] = copied
            report.already_there[table] = seen - copied
            progress(f"{table}: {copied} of {seen} rows copied")
        await _advance_sequences(pg)
    return report


async def _copy_table(
    lite: aiosqlite.Connection,
    pg: asyncpg.Connection,
    table: str,
    columns: list[str],
    types: dict[str, str],
) -> tuple[int, int]:
    """COPY the rows into a scratch table, then insert those whose key is not there yet."""
    names = ", ".join(f'"{c}"' for c in columns)
    scratch = f"copy_{table}"
    await pg.execute(f'CREATE TEMP TABLE "{scratch}" (LIKE "{table}") ON COMMIT DROP')
    converters = [_converter(types[c]) for c in columns]
    seen = 0
    async with lite.execute(f'SELECT {names} FROM "{table}"') as cursor:  # noqa: S608
        while rows := list(await cursor.fetchmany(BATCH)):
            records = [
                tuple(convert(value) for convert, value in zip(converters, row, strict=True))
                for row in rows
            ]
            await pg.copy_records_to_table(scratch, records=records, columns=columns)
            seen += len(records)
    status = await pg.execute(
        f'INSERT INTO "{table}" ({names}) SELECT {names} FROM "{scratch}" '  # noqa: S608
        "ON CONFLICT DO NOTHING"
    )
    return int(status.rsplit(" ", 1)[-1]), seen


def _converter(pg_type: str) -> Callable[[Any], Any]:
    if pg_type == "boolean":
        return lambda value: None if value is None else bool(value)
    if pg_type in ("double precision", "real"):
        return lambda value: None if value is None else float(value)
    if pg_type in ("integer", "bigint", "smallint"):
        return lambda value: None if value is None else int(value)
    return lambda value: value


async def _advance_sequences(pg: asyncpg.Connection) -> None:
    """Serial ids and the dispatch order continue after the copied rows."""
    serials = await pg.fetch(
        "SELECT table_name, column_name, pg_get_serial_sequence(table_name, column_name) AS seq "
        "FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND column_default LIKE 'nextval(%'"
    )
    for row in serials:
        if row["seq"] is None:
            continue
        top = await pg.fetchval(
            f'SELECT max("{row["column_name"]}") FROM "{row["table_name"]}"'  # noqa: S608
        )
        if top is not None:
            await pg.execute("SELECT setval($1, $2)", row["seq"], int(top))
    top_claim = await pg.fetchval("SELECT max(last_claim) FROM dispatch")
    if top_claim is not None:
        await pg.execute("SELECT setval('dispatch_order', $1)", int(top_claim))


async def _sqlite_version(lite: aiosqlite.Connection) -> int | None:
    row = await _fetchone(lite, "SELECT max(version) FROM schema_migrations")
    return int(row[0]) if row and row[0] is not None else None


async def _sqlite_tables(lite: aiosqlite.Connection) -> list[str]:
    rows = await _fetchall(
        lite,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY rowid",
    )
    return [str(row[0]) for row in rows if row[0] not in SKIPPED]


async def _sqlite_columns(lite: aiosqlite.Connection, table: str) -> list[str]:
    return [str(row[1]) for row in await _fetchall(lite, f'PRAGMA table_info("{table}")')]


async def _fetchone(lite: aiosqlite.Connection, sql: str) -> sqlite3.Row | None:
    rows = await _fetchall(lite, sql)
    return rows[0] if rows else None


async def _fetchall(lite: aiosqlite.Connection, sql: str) -> list[sqlite3.Row]:
    rows: Iterable[sqlite3.Row] = await lite.execute_fetchall(sql)
    return list(rows)


async def _postgres_columns(pg: asyncpg.Connection, table: str) -> dict[str, str]:
    rows = await pg.fetch(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = $1",
        table,
    )
    return {str(row["column_name"]): str(row["data_type"]) for row in rows}
