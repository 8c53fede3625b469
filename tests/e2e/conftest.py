"""Helpers to run the real ``imagine-bot`` process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[2]


def bot_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IMAGINE_", "BFL_", "FAL_", "TOGETHER_", "DISCORD_", "SLACK_"))
    }
    env.update(IMAGINE_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def run_bot(
    args: list[str],
    *,
    data_dir: Path,
    stdin: str = "",
    timeout: float = 60,
    cwd: Path | None = None,
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=bot_env(data_dir, **extra),
        cwd=cwd or data_dir.parent,
    )


def free_port() -> int:
    """A port nothing on 127.0.0.1 listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_healthy(
    http: aiohttp.ClientSession,
    base: str,
    process: asyncio.subprocess.Process,
    output: Callable[[], str] | None = None,
) -> None:
    """Until the bot at ``base`` answers /healthz; fails at once if its process exits (saying
    the end of ``output()`` when the caller keeps it)."""
    async with asyncio.timeout(60):
        while True:
            if process.returncode is not None:
                said = f": {output()[-2000:]}" if output is not None else ""
                raise AssertionError(f"the bot exited with {process.returncode}{said}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
