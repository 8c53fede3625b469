"""Settings in .env count like exported ones, also where the CLI asks whether one was set."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import bot_env, free_port

pytestmark = pytest.mark.slow


async def test_a_worker_serves_healthz_on_the_port_from_dot_env(data_dir: Path) -> None:
    port = free_port()
    (data_dir.parent / ".env").write_text(
        # A worker delivers platform jobs, so it needs a platform token; it opens no gateway.
        "SLACK_BOT_TOKEN=xoxb-from-dot-env\nSLACK_SIGNING_SECRET=s3cret\n"
        f"IMAGINE_HTTP_PORT={port}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "worker",
        env=bot_env(data_dir),
        cwd=data_dir.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            while True:
                assert proc.returncode is None
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
