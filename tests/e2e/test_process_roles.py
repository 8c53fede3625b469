"""Process roles on one PostgreSQL database: ``imagine-bot run --no-workers`` takes commands,
``imagine-bot worker`` (no gateway, no HTTP port) delivers them; limits hold across processes."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import REPO, bot_env, free_port, run_bot, wait_healthy
from tests.fakes.slack import FakeSlack, form_body, signed_headers
from tests.pg import connect, private_schema
from tests.slack.conftest import BOT_TOKEN, SIGNING_SECRET

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# A JPEG: the bot's default format.
JPEG_MAGIC = b"\xff\xd8\xff"


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with private_schema() as schema_url:
        yield schema_url


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack(BOT_TOKEN).start()
    yield fake
    await fake.aclose()


class Bot:
    """One real ``imagine-bot`` process; its output goes to a file read after it stops."""

    def __init__(self, args: list[str], data: Path, log: Path, **env: str) -> None:
        self.args, self.data, self.log, self.env = args, data, log, env
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> Bot:
        with self.log.open("wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                *self.args,
                env=bot_env(self.data, **self.env),
                cwd=REPO,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        return self

    async def stop(self) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            return await self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


async def healthy(http: aiohttp.ClientSession, port: int, bot: Bot) -> None:
    assert bot.process is not None
    await wait_healthy(http, f"http://127.0.0.1:{port}", bot.process, bot.output)


def slack_env(fake: FakeSlack, url: str, **extra: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url,
        "IMAGINE_DATABASE_URL": url,
        "IMAGINE_LOG_LEVEL": "INFO",
        **extra,
    }


async def send_imagine(
    http: aiohttp.ClientSession, port: int, fake: FakeSlack, trigger: str, text: str
) -> int:
    body = form_body(
        {
            "team_id": "T1",
            "channel_id": "C9",
            "user_id": "U1",
            "command": "/imagine",
            "text": text,
            "response_url": fake.response_url(trigger),
            "trigger_id": trigger,
        }
    )
    async with http.post(
        f"http://127.0.0.1:{port}/slack/events",
        data=body,
        headers=signed_headers(SIGNING_SECRET, body),
    ) as response:
        await response.read()
        return response.status


async def wait_for_rows(url: str, sql: str, count: int) -> None:
    conn = await connect(url)
    try:
        async with asyncio.timeout(60):
            while await conn.fetchval(sql) < count:
                await asyncio.sleep(0.1)
    finally:
        await conn.close()


def test_a_worker_without_any_platform_says_what_it_needs(tmp_path: Path) -> None:
    out = run_bot(["worker"], data_dir=tmp_path / "data")
    assert out.returncode == 0  # a clean stop: compose restarts only failures (docs/scaling.md)
    assert "imagine-bot worker delivers Discord and Slack jobs" in out.stderr
    assert "DISCORD_TOKEN" in out.stderr


async def test_the_gateway_takes_the_command_and_a_worker_process_delivers_it(
    tmp_path: Path, url: str, fake_slack: FakeSlack
) -> None:
    port = free_port()
    gateway = Bot(
        ["run", "--no-workers"],
        tmp_path / "data",
        tmp_path / "gateway.log",
        **slack_env(fake_slack, url, IMAGINE_HTTP_PORT=str(port)),
    )
    # The worker shares the images folder here; on several machines it would be an S3 bucket.
    worker = Bot(
        ["worker"], tmp_path / "data", tmp_path / "worker.log", **slack_env(fake_slack, url)
    )
    await gateway.start()
    try:
        async with aiohttp.ClientSession() as http:
            await healthy(http, port, gateway)
            await worker.start()
            status = await send_imagine(http, port, fake_slack, "roles.1", "a lighthouse --seed 3")
            assert status == 200
            await fake_slack.wait_for(lambda: bool(fake_slack.shared_files()), timeout=60)
            await wait_for_rows(url, "SELECT count(*) FROM jobs WHERE outcome_sent", 1)
    finally:
        codes = [await worker.stop(), await gateway.stop()]
    assert codes == [0, 0], (gateway.output()[-2000:], worker.output()[-2000:])
    [upload] = fake_slack.shared_files()
    assert upload.shared_to == "C9"
    assert upload.data is not None and upload.data.startswith(JPEG_MAGIC)
    # The gateway never worked on a job; the worker did, without serving Slack's events.
    assert "submitted to offline" not in gateway.output()
    assert "submitted to offline" in worker.output()
    assert "delivering slack jobs" in worker.output()
    conn = await connect(url)
    try:
        rows = await conn.fetch("SELECT status, outcome_sent FROM jobs")
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [("delivered", True)]


async def test_fifty_commands_on_two_bot_processes_admit_exactly_the_limit(
    tmp_path: Path, url: str, fake_slack: FakeSlack
) -> None:
    ports = [free_port(), free_port()]
    bots = [
        Bot(
            ["run", "--no-workers"],
            tmp_path / "data",
            tmp_path / f"bot{i}.log",
            **slack_env(fake_slack, url, IMAGINE_HTTP_PORT=str(port), IMAGINE_USER_RATE="5/minute"),
        )
        for i, port in enumerate(ports)
    ]
    for bot in bots:
        await bot.start()
    try:
        async with aiohttp.ClientSession() as http:
            for bot, port in zip(bots, ports, strict=True):
                await healthy(http, port, bot)
            statuses = await asyncio.gather(
                *(
                    send_imagine(http, ports[n % 2], fake_slack, f"burst.{n}", f"cat number {n}")
                    for n in range(50)
                )
            )
            assert statuses == [200] * 50
            # Every refused command is told so on its response_url.
            await fake_slack.wait_for(lambda: len(fake_slack.responses) >= 45, timeout=60)
    finally:
        codes = [await bot.stop() for bot in bots]
    assert codes == [0, 0], [bot.output()[-2000:] for bot in bots]
    conn = await connect(url)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM jobs WHERE user_id = 'U1'")
    finally:
        await conn.close()
    assert stored == 5
    refused = {key for key, body in fake_slack.responses if "Queued" not in body.get("text", "")}
    assert len(refused) == 45
