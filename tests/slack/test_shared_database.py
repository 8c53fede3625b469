"""Two app instances on one PostgreSQL database, as `run --no-workers` and `worker` (docs/scaling.md):
the worker updates the progress message the command handler posted instead of posting its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest

from adapters.slack import create_adapter
from bot.domain.clock import ManualClock
from bot.domain.models import Job
from bot.runtime.app import App, open_app
from bot.runtime.config import load_settings
from tests.fakes.slack import FakeSlack
from tests.pg import connect, private_schema
from tests.slack.conftest import BOT_TOKEN, SIGNING_SECRET, SlackBot

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with private_schema() as url:
        yield url


def _settings(database_url: str, data_dir: Path, fake_slack: FakeSlack) -> dict[str, str]:
    return {
        "IMAGINE_DATABASE_URL": database_url,
        "IMAGINE_DATA_DIR": str(data_dir),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "IMAGINE_HTTP_PORT": "0",
    }


async def _wait_for_outcomes(worker_app: App) -> None:
    while await worker_app.store.count_pending({"slack"}) > 0:
        await worker_app.events.wait_for_change(0.5)


async def test_a_worker_in_another_app_updates_the_handlers_progress_message(
    database_url: str, data_dir: Path, fake_slack: FakeSlack
) -> None:
    env = _settings(database_url, data_dir, fake_slack)
    clock = ManualClock(start=1_790_000_000.0)
    async with AsyncExitStack() as stack:
        # The `run --no-workers` role: takes the command, stores the job, posts "queued".
        front = await stack.enter_async_context(
            open_app(load_settings(env, env_file=None), clock=clock)
        )
        front_adapter = create_adapter(front, gateway=True)
        front_adapter.attach()
        stack.push_async_callback(front_adapter.aclose)
        port = await front.http_server.start()
        # The `worker` role: no gateway, only delivery.
        back = await stack.enter_async_context(
            open_app(load_settings(env, env_file=None), clock=ManualClock(start=clock.now()))
        )
        back_adapter = create_adapter(back, gateway=False)
        back_adapter.attach()
        stack.push_async_callback(back_adapter.aclose)
        stack.push_async_callback(back.stop_workers)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        bot = SlackBot(
            app=front,
            adapter=front_adapter,
            fake=fake_slack,
            clock=clock,
            url=f"http://127.0.0.1:{port}/slack/events",
            http=http,
        )

        await back.start_workers()
        reply = await bot.command("a lighthouse in fog --seed 3")
        assert reply.status == 200
        await front_adapter.drain()  # the job is stored and its "queued" message posted
        await _wait_for_outcomes(back)

        [job] = await _jobs(front)
        [message] = fake_slack.posted("C1")  # one message: the worker posted none of its own
        posts = fake_slack.calls_to("chat.postMessage")
        assert len(posts) == 1 and "queued" in posts[0].args["text"].lower()
        assert job.delivery["ts"] == message.ts == job.delivery["progress_ts"]
        assert message.blocks and message.blocks[1]["type"] == "actions"
        assert any(c.args["ts"] == message.ts for c in fake_slack.calls_to("chat.update"))
        [upload] = fake_slack.shared_files()
        assert job.delivery["files"] == [upload.id]
        assert fake_slack.violations == []


async def _jobs(app: App) -> list[Job | None]:
    """Every stored job, listed straight from the app's schema."""
    conn = await connect()
    try:
        schema = app.settings.effective_database_url.rsplit("search_path=", 1)[1]
        rows = await conn.fetch(f'SELECT id FROM "{schema}".jobs')
    finally:
        await conn.close()
    return [await app.store.get_job(row["id"]) for row in rows]
