"""Connecting to PostgreSQL: the pool (waiting while a starting or full server refuses), the
schema named in the URL, and the URL as messages may show it (without its password)."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qsl, urlsplit

import asyncpg

from bot.domain.errors import StoreError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
# Every statement is short (no transaction spans a provider call), so a few connections serve many
# concurrent jobs; several processes share the server's max_connections.
POOL_SIZE = 3
# A server that is starting up or full may answer in a moment: tried this many times at start.
BUSY_RETRIES = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


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


async def create_pool(url: str, *, min_size: int, max_size: int) -> asyncpg.Pool:
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
