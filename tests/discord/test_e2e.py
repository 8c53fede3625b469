"""The real ``imagine-bot run`` process against the fake Discord (REST + gateway): /imagine sent as
INTERACTION_CREATE over the gateway, the image edited into the deferred response, and the buttons
still working after the process restarts."""

from __future__ import annotations

import asyncio
import io
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.discord.conftest import discord_env
from tests.e2e.conftest import bot_env
from tests.fakes.discord import BOT_TOKEN, FakeDiscord, Recorded

pytestmark = pytest.mark.slow


class BotProcess:
    def __init__(self, fake: FakeDiscord, data_dir: Path, log: Path) -> None:
        self._fake = fake
        self._data_dir = data_dir
        self._log = log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        identified = len(self._fake.identifies)
        env = bot_env(
            self._data_dir,
            **discord_env(self._fake, self._data_dir),
            IMAGINE_HTTP_PORT="0",
            IMAGINE_LOG_LEVEL="DEBUG",
        )
        with self._log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", env=env, stdout=out, stderr=out
            )
        await self._fake.wait_for(
            lambda: len(self._fake.identifies) > identified, timeout=60, what="IDENTIFY"
        )

    async def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"the bot did not stop on SIGTERM:\n{self.log()}") from None

    def log(self) -> str:
        return self._log.read_text("utf-8", errors="replace")


@pytest.fixture
async def bot_process(
    fake_discord: FakeDiscord, data_dir: Path, tmp_path: Path
) -> AsyncIterator[BotProcess]:
    process = BotProcess(fake_discord, data_dir, tmp_path / "bot.log")
    try:
        yield process
    finally:
        if process.proc is not None and process.proc.returncode is None:
            process.proc.kill()
            await process.proc.wait()


def image_edit(fake: FakeDiscord, token: str) -> Recorded | None:
    for r in fake.calls("update_original_webhook_message", token):
        if r.files:
            return r
    return None


def embed_image(edit: Recorded) -> str:
    return str(edit.json["embeds"][0]["image"]["url"])


async def send(fake: FakeDiscord, payload: dict[str, Any]) -> str:
    await fake.send_dispatch("INTERACTION_CREATE", payload)
    return str(payload["token"])


async def test_imagine_over_the_gateway_and_buttons_after_a_restart(
    fake_discord: FakeDiscord, bot_process: BotProcess
) -> None:
    fake = fake_discord
    await bot_process.start()
    token = await send(fake, fake.imagine("a lighthouse in a storm", seed=11))
    edit = await fake.wait_for(lambda: image_edit(fake, token), timeout=60, what="the image")

    mine = [r for r in fake.requests if token in r.path]
    assert mine[0].operation == "create_interaction_response" and mine[0].json["type"] == 5
    assert mine[0].status == 200  # within Discord's 3 s
    ((name, data, _),) = edit.files.values()
    assert name.endswith(".jpg") and embed_image(edit) == f"attachment://{name}"
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"  # the bot's default format
    embed = edit.json["embeds"][0]
    assert embed["description"] == "a lighthouse in a storm"
    assert {f["name"]: f["value"] for f in embed["fields"]}["Seed"] == "11"
    job_id = embed["footer"]["text"].removeprefix("job ")
    labels = [b["label"] for b in edit.json["components"][0]["components"]]
    assert labels == ["Reroll", "Vary", "Edit", "Upscale to Max", "Delete"]
    message = fake.original_message(token)
    assert message is not None
    message = {k: v for k, v in message.items() if not k.startswith("_")}

    assert await bot_process.stop() == 0
    await bot_process.start()

    reroll = await send(fake, fake.button(f"imagine:reroll:{job_id}", message))
    again = await fake.wait_for(lambda: image_edit(fake, reroll), timeout=60, what="the reroll")
    assert fake.calls("create_interaction_response", reroll)[0].json["type"] == 5
    assert again.json["embeds"][0]["title"] == "Reroll of an earlier image"
    assert again.json["embeds"][0]["description"] == "a lighthouse in a storm"
    assert await bot_process.stop() == 0

    # DEBUG logging on, and still no credential in the logs.
    log = bot_process.log()
    assert "job " in log
    for secret in (BOT_TOKEN, token, reroll):
        assert secret not in log


async def test_a_refused_token_stops_the_bot_with_one_line(
    fake_discord: FakeDiscord, data_dir: Path
) -> None:
    settings = discord_env(fake_discord, data_dir, IMAGINE_HTTP_PORT="0")
    settings["DISCORD_TOKEN"] = "not-the-bot-token-at-all"
    env = bot_env(data_dir, **settings)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 2, err.decode()
    text = err.decode()
    assert "configuration error: DISCORD_TOKEN: Discord refused the token" in text
    assert "not-the-bot-token-at-all" not in text
