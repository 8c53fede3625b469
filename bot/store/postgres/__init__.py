"""The PostgreSQL backend (asyncpg): several bot processes sharing one database."""

from bot.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
