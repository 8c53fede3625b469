"""A private PostgreSQL schema per test, on the server at 127.0.0.1:5432 (database ``test``).

Several people run the suite at once against one server, so every test gets its own schema
(``?search_path=`` in the URL) and drops it afterwards. Without a server the PostgreSQL tests are
skipped with the reason; with ``IMAGINE_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

# Read once at import: the autouse fixture clears IMAGINE_* variables before each test.
SERVER_URL = os.environ.get(
    "IMAGINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
_unavailable: list[str] = []


def _required() -> bool:
    return os.environ.get("IMAGINE_REQUIRE_POSTGRES", "") not in ("", "0")


def _give_up(reason: str) -> None:
    message = f"PostgreSQL half skipped: {reason}"
    if _required():
        pytest.fail(f"IMAGINE_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(message)


def with_schema(schema: str) -> str:
    separator = "&" if "?" in SERVER_URL else "?"
    return f"{SERVER_URL}{separator}search_path={schema}"


async def connect(url: str | None = None) -> Any:
    """Connect, waiting while the shared server is full (the whole team runs tests on it)."""
    import asyncpg

    for delay in (0.5, 1, 2, 4, 8, 15, None):
        try:
            return await asyncpg.connect(url or SERVER_URL, timeout=3)
        except (asyncpg.TooManyConnectionsError, asyncpg.CannotConnectNowError):
            if delay is None:
                raise
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


@asynccontextmanager
async def private_schema() -> AsyncIterator[str]:
    """Yield the URL of a new, empty schema; drop it (and all it holds) on exit."""
    try:
        import asyncpg
    except ImportError:
        _give_up("asyncpg is not installed (pip install -e '.[postgres]')")
        raise  # pragma: no cover - _give_up raises
    if _unavailable:
        _give_up(_unavailable[0])
    try:
        conn = await connect()
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        reason = f"cannot connect to PostgreSQL at {SERVER_URL} ({type(exc).__name__}: {exc})"
        _unavailable.append(reason)
        _give_up(reason)
        raise  # pragma: no cover - _give_up raises
    schema = f"t_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield with_schema(schema)
        finally:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()
