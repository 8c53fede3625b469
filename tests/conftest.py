"""Shared fixtures: a clean environment per test, settings on a temporary folder, the opened app."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.runtime.app import App, open_app
from bot.runtime.config import Settings, load_settings
from bot.store import Store, open_store
from tests.pg import private_schema

ENV_PREFIXES = ("IMAGINE_", "BFL_", "FAL_", "TOGETHER_", "DISCORD_", "SLACK_", "AWS_", "S3_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's variables or .env file."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES) and name != "IMAGINE_REQUIRE_POSTGRES":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Tests that call ``bot.runtime.cli.main`` set up the process's logging (a handler on the captured
    stderr of that test); put the root logger back so later tests do not log into a closed stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return load_settings({"IMAGINE_DATA_DIR": str(data_dir)}, env_file=None)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    async with open_app(settings) as opened:
        yield opened


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh store, the test run once on each backend (the PostgreSQL one in a private schema)."""
    if request.param == "postgres":
        async with private_schema() as url, open_store(url) as opened:
            yield opened
        return
    async with open_store(f"sqlite:///{tmp_path / 'contract.db'}") as opened:
        yield opened
