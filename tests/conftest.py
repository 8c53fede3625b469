"""Shared fixtures: a clean environment per test, settings on a temporary folder, the opened app."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.app import App, open_app
from bot.config import Settings, load_settings

ENV_PREFIXES = ("IMAGINE_", "BFL_", "FAL_", "TOGETHER_", "DISCORD_", "SLACK_", "AWS_", "S3_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's variables or .env file."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES) and name != "IMAGINE_REQUIRE_POSTGRES":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield


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
