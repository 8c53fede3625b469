"""The bot with its Slack adapter on its real HTTP server, a fake Slack Web API, signed requests."""

from __future__ import annotations

import contextlib
import itertools
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.slack import SlackAdapter, create_adapter
from bot.domain.clock import ManualClock
from bot.domain.models import Job
from bot.runtime.app import App, open_app
from bot.runtime.config import load_settings
from tests.fakes.slack import FakeSlack, form_body, interaction_body, signed_headers

SIGNING_SECRET = "test-signing-secret-5f2a9c"
BOT_TOKEN = "xoxb-test-token-000000000000"
TEAM = "T1"

_triggers = itertools.count(1)


def new_trigger() -> str:
    return f"{next(_triggers)}.1234567890.abcdef{next(_triggers):06d}"


@dataclass
class Reply:
    status: int
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


@dataclass
class SlackBot:
    app: App
    adapter: SlackAdapter
    fake: FakeSlack
    clock: ManualClock
    url: str
    http: aiohttp.ClientSession
    sent: list[bytes] = field(default_factory=list)

    async def post(self, body: bytes, headers: dict[str, str]) -> Reply:
        async with self.http.post(self.url, data=body, headers=headers) as response:
            return Reply(response.status, await response.text())

    async def signed(self, body: bytes, *, content_type: str | None = None) -> Reply:
        headers = signed_headers(
            SIGNING_SECRET, body, timestamp=self.clock.now(), content_type=content_type
        )
        return await self.post(body, headers)

    def command_body(
        self,
        text: str,
        *,
        user: str = "U1",
        channel: str = "C1",
        trigger: str | None = None,
        thread_ts: str | None = None,
        command: str = "/imagine",
        response_key: str | None = None,
    ) -> bytes:
        trigger = trigger or new_trigger()
        fields = {
            "token": "legacy-verification-token",
            "team_id": TEAM,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A1",
            "is_enterprise_install": "false",
            "response_url": self.fake.response_url(response_key or trigger),
            "trigger_id": trigger,
        }
        if thread_ts:
            fields["thread_ts"] = thread_ts
        return form_body(fields)

    async def command(self, text: str, **options: Any) -> Reply:
        return await self.signed(self.command_body(text, **options))

    def action_body(
        self,
        verb: str,
        job: Job,
        *,
        user: str = "U1",
        channel: str = "C1",
        trigger: str | None = None,
        message_ts: str = "1700000000.000100",
        thread_ts: str | None = None,
    ) -> bytes:
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        }
        if thread_ts:
            container["thread_ts"] = thread_ts
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": TEAM},
            "api_app_id": "A1",
            "token": "legacy-verification-token",
            "container": container,
            "trigger_id": trigger or new_trigger(),
            "team": {"id": TEAM, "domain": "fake"},
            "channel": {"id": channel, "name": "general"},
            "message": {"type": "message", "ts": message_ts, "text": "image"},
            "response_url": self.fake.response_url(f"action-{verb}-{user}"),
            "actions": [
                {
                    "type": "button",
                    "action_id": f"imagine:{verb}:{job.id}",
                    "block_id": f"imagine_actions:{job.id}",
                    "text": {"type": "plain_text", "text": verb},
                    "value": job.id,
                    "action_ts": "1700000001.000200",
                }
            ],
        }
        return interaction_body(payload)

    async def action(self, verb: str, job: Job, **options: Any) -> Reply:
        return await self.signed(self.action_body(verb, job, **options))

    async def settle(self) -> None:
        """Wait until acknowledged requests are stored and every Slack job's outcome is sent."""
        await self.adapter.drain()
        while await self.app.store.count_pending({"slack"}) > 0:
            await self.app.events.wait_for_change(0.5)

    async def jobs(self) -> list[Job]:
        """Every stored job, read from the SQLite file itself."""
        path = self.app.settings.data_dir / "imagine.db"
        with contextlib.closing(sqlite3.connect(path)) as db:
            ids = [row[0] for row in db.execute("SELECT id FROM jobs ORDER BY created_at, id")]
        return [j for j in [await self.app.store.get_job(i) for i in ids] if j is not None]


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack(BOT_TOKEN).start()
    yield fake
    await fake.aclose()


@pytest.fixture
async def slack_bot(data_dir: Path, fake_slack: FakeSlack) -> AsyncIterator[SlackBot]:
    settings = load_settings(
        {
            "IMAGINE_DATA_DIR": str(data_dir),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake_slack.api_url,
            "SLACK_FILES_URL": fake_slack.files_url,
            "IMAGINE_HTTP_PORT": "0",
        },
        env_file=None,
    )
    clock = ManualClock(start=1_790_000_000.0)
    async with open_app(settings, clock=clock) as app:
        adapter = create_adapter(app, gateway=True)
        adapter.attach()
        port = await app.http_server.start()
        await app.start_workers()
        async with aiohttp.ClientSession() as http:
            yield SlackBot(
                app=app,
                adapter=adapter,
                fake=fake_slack,
                clock=clock,
                url=f"http://127.0.0.1:{port}/slack/events",
                http=http,
            )
        await adapter.aclose()
