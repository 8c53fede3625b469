"""Fixtures for tests against real local parts. ``store`` runs each test on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import Store, open_store
from tests.pg import private_schema

STORE_BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=STORE_BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend = request.param
    if backend == "postgres":
        async with private_schema() as url, open_store(url) as opened:
            yield opened
        return
    url = f"sqlite:///{tmp_path / 'contract.db'}"
    async with open_store(url) as opened:
        yield opened
