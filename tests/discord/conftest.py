"""Fixtures: the fake Discord on 127.0.0.1 and the bot's Discord adapter pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest

from adapters.discord import DiscordAdapter, create_adapter
from bot.runtime.app import App, open_app
from bot.runtime.config import load_settings
from tests.fakes.discord import BOT_TOKEN, FakeDiscord


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    fake = await FakeDiscord().start()
    saved_base = discord.http.Route.BASE
    saved_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    try:
        yield fake
    finally:
        discord.http.Route.BASE = saved_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved_gateway
        await fake.aclose()
    # Every request the bot sent must be one Discord's API description accepts.
    assert fake.violations == []


def discord_env(fake: FakeDiscord, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "IMAGINE_DATA_DIR": str(data_dir),
        "DISCORD_TOKEN": BOT_TOKEN,
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        **extra,
    }


@dataclass
class Bot:
    app: App
    adapter: DiscordAdapter
    fake: FakeDiscord

    def feed(self, payload: dict[str, Any]) -> str:
        """Hand an INTERACTION_CREATE to discord.py's own state, as the gateway would."""
        client = self.adapter.client
        assert client is not None
        client._connection.parse_interaction_create(payload)  # type: ignore[arg-type]
        return str(payload["token"])


@pytest.fixture
async def bot(fake_discord: FakeDiscord, data_dir: Path) -> AsyncIterator[Bot]:
    settings = load_settings(discord_env(fake_discord, data_dir), env_file=None)
    async with open_app(settings) as app:
        adapter = create_adapter(app, gateway=True)
        adapter.attach()
        assert adapter.client is not None
        await adapter.client.login(BOT_TOKEN)
        await app.start_workers()
        try:
            yield Bot(app, adapter, fake_discord)
        finally:
            await adapter.aclose()
