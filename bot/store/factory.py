"""``open_store``: the backend named by ``IMAGINE_DATABASE_URL``, imported only when chosen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.domain.errors import ConfigError
from bot.store.base import Store


@asynccontextmanager
async def open_store(url: str) -> AsyncIterator[Store]:
    """Open the backend named by the URL, apply its migrations, and close it on exit."""
    store: Store
    if url.startswith("sqlite:"):
        from bot.store.sqlite import SqliteStore

        store = await SqliteStore.open(url)
    elif url.startswith(("postgresql:", "postgres:")):
        try:
            from bot.store.postgres import PostgresStore
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigError(
                "IMAGINE_DATABASE_URL",
                "PostgreSQL needs the postgres extra: pip install 'imagine-bot[postgres]'",
            ) from exc
        store = await PostgresStore.open(url)
    else:
        raise ConfigError("IMAGINE_DATABASE_URL", "must start with sqlite:/// or postgresql://")
    try:
        yield store
    finally:
        await store.aclose()
