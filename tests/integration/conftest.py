"""Fixtures for tests against real local parts. ``store`` runs each test on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import Store, open_store

STORE_BACKENDS = ["sqlite"]


@pytest.fixture(params=STORE_BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend = request.param
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'contract.db'}"
    else:  # pragma: no cover - other backends add their URL here
        raise AssertionError(backend)
    async with open_store(url) as opened:
        yield opened
