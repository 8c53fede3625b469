"""Named SQL: the ``-- name:`` queries and numbered migrations each backend keeps beside its code,
and ``Sql``, what a backend runs them through for the logic written once (``bot.store.rules``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from typing import Any, Protocol


class Row(Protocol):
    """A result row as both drivers give it (``sqlite3.Row``, ``asyncpg.Record``)."""

    def __getitem__(self, key: str, /) -> Any: ...


class Sql(Protocol):
    """Named queries of one backend, run on one connection (inside the caller's transaction
    when it holds one). Parameters are passed by name, as the query files write them (``:name``)."""

    async def one(self, name: str, params: Mapping[str, Any] | None = None) -> Any | None:
        """The first row of the query's answer, or None."""

    async def all(self, name: str, params: Mapping[str, Any] | None = None) -> list[Any]: ...

    async def run(self, name: str, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement; return how many rows it changed (or answered)."""


def load_queries(backend: str) -> dict[str, str]:
    """Named SQL of one backend: the ``-- name: x`` sections of ``bot/store/<backend>/queries.sql``."""
    text = _folder(backend).joinpath("queries.sql").read_text("utf-8")
    queries: dict[str, str] = {}
    for match in re.finditer(r"^-- name: (\w+)\n(.*?)(?=^-- name: |\Z)", text, re.S | re.M):
        queries[match.group(1)] = match.group(2).strip()
    return queries


def load_migrations(backend: str) -> list[tuple[int, str]]:
    """Versioned migrations of one backend, ``bot/store/<backend>/NNNN_name.sql``, in order."""
    found: list[tuple[int, str]] = []
    for entry in _folder(backend).iterdir():
        match = re.match(r"^(\d{4})_\w+\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text("utf-8")))
    return sorted(found)


def _folder(backend: str) -> resources.abc.Traversable:
    if backend not in ("sqlite", "postgres"):
        raise ValueError(f"no store backend named {backend!r}")
    return resources.files("bot.store").joinpath(backend)
