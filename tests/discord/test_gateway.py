"""The adapter's gateway side: shards, and a worker-only process that delivers without one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import discord

from adapters.discord import create_adapter
from bot.runtime.app import open_app
from bot.runtime.config import load_settings
from tests.discord.conftest import discord_env
from tests.fakes.discord import FakeDiscord


async def test_shard_settings_start_an_auto_sharded_client(
    fake_discord: FakeDiscord, data_dir: Path
) -> None:
    env = discord_env(fake_discord, data_dir, DISCORD_SHARD_COUNT="2")
    async with open_app(load_settings(env, env_file=None)) as app:
        adapter = create_adapter(app, gateway=True)
        adapter.attach()
        assert isinstance(adapter.client, discord.AutoShardedClient)
        stop = asyncio.Event()
        runner = asyncio.create_task(adapter.run(stop))
        await fake_discord.wait_for(
            lambda: len(fake_discord.identifies) >= 2, timeout=30, what="two shards"
        )
        assert sorted(tuple(i["shard"]) for i in fake_discord.identifies) == [(0, 2), (1, 2)]
        assert all(i["intents"] == 1 for i in fake_discord.identifies)  # GUILDS only
        stop.set()
        await asyncio.wait_for(runner, 30)
        await adapter.aclose()


async def test_one_process_may_run_only_some_shards(
    fake_discord: FakeDiscord, data_dir: Path
) -> None:
    env = discord_env(fake_discord, data_dir, DISCORD_SHARD_COUNT="4", DISCORD_SHARD_IDS="2,3")
    async with open_app(load_settings(env, env_file=None)) as app:
        adapter = create_adapter(app, gateway=True)
        assert isinstance(adapter.client, discord.AutoShardedClient)
        assert adapter.client.shard_ids == [2, 3] and adapter.client.shard_count == 4
        await adapter.aclose()


async def test_a_worker_process_registers_delivery_without_a_gateway(
    fake_discord: FakeDiscord, data_dir: Path
) -> None:
    env = discord_env(fake_discord, data_dir)
    async with open_app(load_settings(env, env_file=None)) as app:
        adapter = create_adapter(app, gateway=False)
        adapter.attach()
        assert adapter.client is None and "discord" in app.deliveries
        stop = asyncio.Event()
        stop.set()
        await adapter.run(stop)
        await adapter.aclose()
    assert fake_discord.identifies == [] and fake_discord.requests == []


async def test_readyz_says_whether_the_gateway_is_connected(
    fake_discord: FakeDiscord, data_dir: Path
) -> None:
    import httpx

    env = discord_env(fake_discord, data_dir, IMAGINE_HTTP_PORT="0")
    async with open_app(load_settings(env, env_file=None)) as app:
        adapter = create_adapter(app, gateway=True)
        adapter.attach()
        port = await app.http_server.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            before = await http.get("/readyz")
            assert before.status_code == 503
            assert before.json()["problems"] == {"discord": "gateway not started"}
            stop = asyncio.Event()
            runner = asyncio.create_task(adapter.run(stop))
            assert adapter.client is not None
            client = adapter.client
            await fake_discord.wait_for(
                lambda: fake_discord.identifies, timeout=30, what="IDENTIFY"
            )
            for _ in range(600):  # READY is handled by the client a moment after IDENTIFY
                if client.is_ready():
                    break
                await asyncio.sleep(0.05)
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"] == ["discord", "store"]
            stop.set()
            await asyncio.wait_for(runner, 30)
            after = await http.get("/readyz")
            assert after.status_code == 503
            assert after.json()["problems"] == {"discord": "gateway closed"}
        await adapter.aclose()
