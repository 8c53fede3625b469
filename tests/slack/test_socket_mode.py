"""Socket Mode (SLACK_APP_TOKEN): the same listeners over a WebSocket from the fake Slack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack import SlackAdapter, create_adapter
from bot.domain.clock import ManualClock
from bot.domain.models import JobStatus
from bot.runtime.app import App, open_app
from bot.runtime.config import load_settings
from tests.fakes.slack import FakeSlack
from tests.slack.conftest import BOT_TOKEN, TEAM

APP_TOKEN = "xapp-1-test-app-token-0000000000"


@pytest.fixture
async def socket_bot(
    data_dir: Path, fake_slack: FakeSlack
) -> AsyncIterator[tuple[App, SlackAdapter]]:
    settings = load_settings(
        {
            "IMAGINE_DATA_DIR": str(data_dir),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": fake_slack.api_url,
        },
        env_file=None,
    )
    async with open_app(settings, clock=ManualClock(start=1_790_000_000.0)) as app:
        adapter = create_adapter(app, gateway=True)
        adapter.attach()
        await app.start_workers()
        stop = asyncio.Event()
        running = asyncio.create_task(adapter.run(stop))
        try:
            yield app, adapter
        finally:
            stop.set()
            await running
            await adapter.aclose()


async def test_a_command_over_socket_mode_is_acked_on_the_socket_and_delivered(
    socket_bot: tuple[App, SlackAdapter], fake_slack: FakeSlack
) -> None:
    app, _ = socket_bot
    await fake_slack.wait_for(lambda: bool(fake_slack.sockets))
    [opened] = fake_slack.calls_to("apps.connections.open")
    assert opened.headers["Authorization"] == f"Bearer {APP_TOKEN}"
    assert "/slack/events" not in {
        r.resource.canonical for r in app.http_server.app.router.routes() if r.resource
    }

    payload = {
        "team_id": TEAM,
        "channel_id": "C3",
        "user_id": "U1",
        "command": "/imagine",
        "text": "a kite over the sea --seed 3",
        "response_url": fake_slack.response_url("socket"),
        "trigger_id": "socket.1.trigger",
    }
    await fake_slack.send_envelope("slash_commands", payload, "env-1")
    await fake_slack.wait_for(
        lambda: any(f.get("envelope_id") == "env-1" for f in fake_slack.socket_frames)
    )
    [ack] = [f for f in fake_slack.socket_frames if f.get("envelope_id") == "env-1"]
    assert ack["payload"]["response_type"] == "ephemeral" and "Queued" in ack["payload"]["text"]

    await fake_slack.wait_for(lambda: any(m.blocks for m in fake_slack.posted("C3")))
    [card] = fake_slack.posted("C3")
    job_id = card.blocks[1]["elements"][0]["action_id"].split(":")[2]
    job = await app.service.wait(job_id, timeout=30)
    assert job.status is JobStatus.DELIVERED and job.seed == 3
    [upload] = fake_slack.shared_files()
    assert upload.shared_to == "C3" and job.delivery["files"] == [upload.id]
    assert fake_slack.violations == []
