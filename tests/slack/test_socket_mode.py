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


async def test_socket_mode_serves_each_installed_workspace_with_its_own_token(
    data_dir: Path, fake_slack: FakeSlack
) -> None:
    """OAuth installs and Socket Mode together: a command from a workspace installed earlier
    (here saved straight into the installation store) is delivered with that workspace's token."""
    from slack_sdk.oauth.installation_store.models.installation import Installation

    from tests.fakes.slack import Workspace

    fake_slack.workspaces["xoxb-T2-socket-000000000001"] = Workspace("T2", "Second", "UB2", "BB2")
    settings = load_settings(
        {
            "IMAGINE_DATA_DIR": str(data_dir),
            "SLACK_CLIENT_ID": fake_slack.client_id,
            "SLACK_CLIENT_SECRET": fake_slack.client_secret,
            "SLACK_SIGNING_SECRET": "socket-mode-signing-secret",
            "IMAGINE_SECRET_KEY": "socket-mode-secret-key-000000",
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": fake_slack.api_url,
        },
        env_file=None,
    )
    async with open_app(settings, clock=ManualClock(start=1_790_000_000.0)) as app:
        adapter = create_adapter(app, gateway=True)
        adapter.attach()
        assert adapter.installations is not None
        await adapter.installations.async_save(
            Installation(
                team_id="T2",
                bot_token="xoxb-T2-socket-000000000001",
                bot_user_id="UB2",
                bot_id="BB2",
                user_id="UINSTALLER",
            )
        )
        await app.start_workers()
        stop = asyncio.Event()
        running = asyncio.create_task(adapter.run(stop))
        try:
            await fake_slack.wait_for(lambda: bool(fake_slack.sockets))
            payload = {
                "team_id": "T2",
                "channel_id": "C4",
                "user_id": "U1",
                "command": "/imagine",
                "text": "a kite over the sea",
                "response_url": fake_slack.response_url("socket-2"),
                "trigger_id": "socket.2.trigger",
            }
            await fake_slack.send_envelope("slash_commands", payload, "env-2")
            await fake_slack.wait_for(lambda: bool(fake_slack.shared_files()))
            uploads = fake_slack.calls_to("files.completeUploadExternal")
            assert [fake_slack.team_of_call(c) for c in uploads] == ["T2"]
        finally:
            stop.set()
            await running
            await adapter.aclose()
    assert fake_slack.violations == []
