"""Shared parts of the reliability suite (RELIABILITY.md): a recording platform port, the app on a
given database, log capture. Everything else is the real code against fakes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.domain.clock import Clock
from bot.domain.models import Job
from bot.ports import OutImage, Progress
from bot.runtime.app import App, open_app
from bot.runtime.config import load_settings

# The platform suites' fixtures, reused here: the bot on its real HTTP server with fake platforms.
from tests.discord.conftest import bot, fake_discord  # noqa: F401
from tests.slack.conftest import fake_slack, slack_bot  # noqa: F401


@dataclass
class RecordingPort:
    """A platform that shows what its users would see: one entry per post."""

    delivered: list[tuple[Job, list[OutImage]]] = field(default_factory=list)
    failures: list[Job] = field(default_factory=list)
    progress_seen: list[Progress] = field(default_factory=list)

    async def progress(self, job: Job, progress: Progress) -> None:
        self.progress_seen.append(progress)

    async def deliver(self, job: Job, images: Sequence[OutImage]) -> Mapping[str, Any]:
        self.delivered.append((job, list(images)))
        return {"message": f"m-{job.id}"}

    async def notify_failure(self, job: Job) -> None:
        self.failures.append(job)

    def outcomes(self) -> dict[str, int]:
        """Posts per job id (an image or a failure notice)."""
        seen: dict[str, int] = {}
        for job, _ in self.delivered:
            seen[job.id] = seen.get(job.id, 0) + 1
        for job in self.failures:
            seen[job.id] = seen.get(job.id, 0) + 1
        return seen


@asynccontextmanager
async def opened_app(
    data_dir: Path, *, clock: Clock | None = None, **env: str
) -> AsyncIterator[App]:
    """The real app (composition root) on ``data_dir`` with extra environment settings."""
    settings = load_settings({"IMAGINE_DATA_DIR": str(data_dir), **env}, env_file=None)
    async with open_app(settings, clock=clock) as app:
        yield app


async def settle(app: App, platforms: set[str], *, timeout: float = 30.0) -> None:
    """Wait until every job of these platforms has had its outcome sent (a hang guard only)."""
    async with asyncio.timeout(timeout):
        while await app.store.count_pending(platforms) > 0:
            await app.events.wait_for_change(0.2)


class LogCapture(logging.Handler):
    """Every record of the bot's loggers, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def bot_logs() -> Iterator[LogCapture]:
    """The bot's own loggers (``bot``, ``adapters``) at DEBUG; libraries stay as they are."""
    capture = LogCapture()
    loggers = [logging.getLogger(name) for name in ("bot", "adapters")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(capture)
        logger.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(capture)
            logger.setLevel(level)
