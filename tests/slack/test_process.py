"""End to end: the real ``imagine-bot run`` process serving Slack over HTTP, offline provider."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import bot_env, free_port, wait_healthy
from tests.fakes.slack import FakeSlack, form_body, signed_headers
from tests.slack.conftest import BOT_TOKEN, SIGNING_SECRET

# A JPEG: the bot's default format.
JPEG_MAGIC = b"\xff\xd8\xff"


@pytest.mark.slow
async def test_the_real_process_takes_a_signed_command_and_uploads_the_image(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    port = free_port()
    env = bot_env(
        tmp_path / "data",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        IMAGINE_HTTP_PORT=str(port),
        IMAGINE_LOG_LEVEL="DEBUG",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=env,
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, base, process)
            body = form_body(
                {
                    "team_id": "T1",
                    "channel_id": "C9",
                    "user_id": "U1",
                    "command": "/imagine",
                    "text": "a paper boat on a pond --ar 3:2 --seed 5",
                    "response_url": fake_slack.response_url("e2e"),
                    "trigger_id": "e2e.1.trigger",
                }
            )
            async with http.post(
                f"{base}/slack/events", data=body, headers=signed_headers(SIGNING_SECRET, body)
            ) as response:
                assert response.status == 200
                ack = await response.json()
            assert ack["response_type"] == "ephemeral" and "Queued" in ack["text"]

            stale = signed_headers(SIGNING_SECRET, body, timestamp=time.time() - 600)
            async with http.post(f"{base}/slack/events", data=body, headers=stale) as response:
                assert response.status == 401

            await fake_slack.wait_for(lambda: bool(fake_slack.shared_files()), timeout=60)
            await fake_slack.wait_for(
                lambda: any(m.blocks for m in fake_slack.posted("C9")), timeout=30
            )
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    [upload] = fake_slack.shared_files()
    assert upload.shared_to == "C9"
    assert upload.data is not None and upload.data.startswith(JPEG_MAGIC)
    assert "seed 5" in (upload.initial_comment or "")
    [card] = fake_slack.posted("C9")
    assert card.blocks[1]["elements"][0]["action_id"].startswith("imagine:u1:")
    assert fake_slack.violations == []
    logs = stdout.decode() + stderr.decode()
    for secret in (BOT_TOKEN, SIGNING_SECRET, fake_slack.response_url("e2e")):
        assert secret not in logs, [line for line in logs.splitlines() if secret in line][:3]
