"""Applying the PostgreSQL store's numbered migrations, once, however many processes start."""

from __future__ import annotations

import logging
import re
import time

import asyncpg

from bot.domain.errors import StoreError
from bot.store.sql import load_migrations

log = logging.getLogger(__name__)

# pg_advisory_xact_lock(MIGRATION_LOCK, hashtext(schema)): one migrating process per schema.
MIGRATION_LOCK = 0x1A61


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
