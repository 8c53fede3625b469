"""The PostgreSQL store's named queries, compiled once from ``:name`` to asyncpg's ``$n``, and
``PgSql``, which runs them on a pool or one connection."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from bot.domain.errors import StoreError
from bot.store.sql import load_queries

_PARAM = re.compile(r"(?<!:):([A-Za-z_]\w*)")

if TYPE_CHECKING:
    Runner = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]


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


class PgSql:
    """The named queries on a pool (each statement its own transaction) or on one connection
    (inside the caller's transaction)."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    async def one(
        self, name: str, params: Mapping[str, Any] | None = None
    ) -> asyncpg.Record | None:
        query = Q[name]
        with postgres_errors():
            return await self._runner.fetchrow(query.sql, *query.args(params or {}))

    async def all(self, name: str, params: Mapping[str, Any] | None = None) -> list[asyncpg.Record]:
        query = Q[name]
        with postgres_errors():
            return list(await self._runner.fetch(query.sql, *query.args(params or {})))

    async def run(self, name: str, params: Mapping[str, Any] | None = None) -> int:
        query = Q[name]
        with postgres_errors():
            return rowcount(await self._runner.execute(query.sql, *query.args(params or {})))


@contextlib.contextmanager
def postgres_errors() -> Iterator[None]:
    """What the server refused (a constraint, a bad value) becomes StoreError for the caller."""
    try:
        yield
    except asyncpg.PostgresError as exc:
        raise StoreError(f"PostgreSQL: {type(exc).__name__}: {exc}") from exc


def rowcount(status: str) -> int:
    """asyncpg answers a command tag such as ``UPDATE 1``, ``INSERT 0 1`` or ``SELECT 1``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0
