"""Every adapter package meets adapters.base: create, attach, run until stop, close, doctor."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.base import PlatformName, load_platform
from bot.runtime.app import open_app
from bot.runtime.config import load_settings


@pytest.mark.parametrize("name", ["console", "discord", "slack"])
def test_each_package_offers_create_and_doctor(name: PlatformName) -> None:
    platform = load_platform(name)
    assert callable(platform.create_adapter)
    assert asyncio.iscoroutinefunction(platform.doctor_check)


async def test_the_console_runs_until_its_input_ends_then_stops_the_process(
    tmp_path: Path,
) -> None:
    settings = load_settings({"IMAGINE_DATA_DIR": str(tmp_path)}, env_file=None)
    async with open_app(settings) as app:
        from adapters.console import ConsoleAdapter

        async def end_of_input() -> str:
            return ""

        lines: list[str] = []
        adapter = ConsoleAdapter(app, write=lines.append, readline=end_of_input)
        adapter.attach()
        stop = asyncio.Event()
        await asyncio.wait_for(adapter.run(stop), timeout=30)
        assert stop.is_set()
        await adapter.aclose()
        assert "console" in app.deliveries
        assert lines == []


async def test_the_console_returns_when_stop_is_set_while_it_waits_for_input(
    tmp_path: Path,
) -> None:
    settings = load_settings({"IMAGINE_DATA_DIR": str(tmp_path)}, env_file=None)
    async with open_app(settings) as app:
        from adapters.console import ConsoleAdapter

        never = asyncio.Event()

        async def blocked() -> str:
            await never.wait()
            return ""

        adapter = ConsoleAdapter(app, write=lambda line: None, readline=blocked)
        stop = asyncio.Event()
        running = asyncio.create_task(adapter.run(stop))
        await asyncio.sleep(0)
        stop.set()
        await asyncio.wait_for(running, timeout=5)
