"""The dashboard in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
driven by Selenium): sign in through the fake Discord OAuth, change a limit, see it on the page
and in the audit log, and see the next /imagine of that community refused by it; a non-admin sees
no community; a form posted without its CSRF token is refused.

Screenshots go to the test's folder; with DASHBOARD_SCREENSHOTS_DIR set they are also written
there, small (a 64-colour palette), for docs/dashboard.md.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord as discord_py
import pytest
from PIL import Image

from adapters.discord import DiscordAdapter, create_adapter
from bot.runtime.app import App, open_app
from bot.runtime.config import load_settings
from tests.fakes import discord_oauth
from tests.fakes.discord import BOT_TOKEN, FakeDiscord, Recorded
from tests.web.conftest import ADMIN, GUILD, MEMBER, SECRET, discord_world

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
# Read at import: the autouse fixture clears IMAGINE_* variables before each test.
_REQUIRED = os.environ.get("IMAGINE_REQUIRE_BROWSER", "") not in ("", "0")
if _REQUIRED and not (CHROMIUM and CHROMEDRIVER):
    raise RuntimeError("IMAGINE_REQUIRE_BROWSER=1 but chromium or chromedriver is missing")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)


def _browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1100,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    # A click that leads to another page returns before that page is there on a loaded machine:
    # each look-up waits (up to 10 s) for its element to appear.
    driver.implicitly_wait(10)
    return driver


class Browser:
    """Selenium's calls block; each runs in a thread so the bot's event loop keeps serving."""

    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.driver = driver
        self.base = base
        self.shots = shots

    async def run(self, call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(call, *args)

    async def open(self, path: str) -> None:
        await self.run(self.driver.get, self.base + path)

    async def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return await self.run(self.driver.find_element, By.CSS_SELECTOR, css)

    async def text(self, css: str = "body") -> str:
        element = await self.find(css)
        return str(await self.run(lambda: element.text))

    async def click(self, css: str) -> None:
        element = await self.find(css)
        await self.run(element.click)

    async def type(self, css: str, value: str) -> None:
        element = await self.find(css)
        await self.run(element.clear)
        await self.run(element.send_keys, value)

    async def shot(self, name: str) -> None:
        path = self.shots / f"{name}.png"
        await self.run(self.driver.save_screenshot, str(path))
        # A palette of 64 colours keeps the docs' images small and the text readable.
        with Image.open(path) as image:
            image.convert("RGB").quantize(64).save(path, optimize=True)
        target = os.environ.get("DASHBOARD_SCREENSHOTS_DIR")
        if target:
            shutil.copy(path, Path(target) / path.name)


@dataclass
class Running:
    app: App
    discord: FakeDiscord
    adapter: DiscordAdapter
    base: str


async def imagine(bot: Running, prompt: str, *, wait_for: str) -> Recorded:
    """A member's /imagine fed to discord.py's own state (as the gateway would hand it over);
    the first ``wait_for`` call made with its interaction token."""
    fake = bot.discord
    payload = fake.imagine(prompt)
    payload["member"]["user"]["id"] = MEMBER
    assert bot.adapter.client is not None
    bot.adapter.client._connection.parse_interaction_create(payload)  # type: ignore[arg-type]
    token = str(payload["token"])
    calls = await fake.wait_for(lambda: fake.calls(wait_for, token), what=wait_for)
    return calls[0]  # type: ignore[no-any-return]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    discord = await FakeDiscord().start()
    saved_base = discord_py.http.Route.BASE
    saved_gateway = discord_py.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord_world(discord)
    env = {
        "IMAGINE_DATA_DIR": str(tmp_path / "data"),
        "IMAGINE_HTTP_PORT": "0",
        "IMAGINE_SECRET_KEY": SECRET,
        "DISCORD_TOKEN": BOT_TOKEN,
        "DISCORD_API_BASE": discord.api_base,
        "DISCORD_GATEWAY_URL": discord.gateway_url,
        "DISCORD_CLIENT_ID": discord_oauth.CLIENT_ID,
        "DISCORD_CLIENT_SECRET": discord_oauth.CLIENT_SECRET,
    }
    try:
        async with open_app(load_settings(env, env_file=None)) as app:
            adapter = create_adapter(app, gateway=True)
            adapter.attach()
            assert adapter.client is not None
            await adapter.client.login(BOT_TOKEN)
            await app.start_workers()
            port = await app.http_server.start()
            try:
                yield Running(app, discord, adapter, f"http://127.0.0.1:{port}")
            finally:
                await adapter.aclose()
        assert discord.violations == [] and discord.oauth_violations == []
    finally:
        discord_py.http.Route.BASE = saved_base
        discord_py.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved_gateway
        await discord.aclose()


@pytest.fixture
async def browser(running: Running, tmp_path: Path) -> AsyncIterator[Browser]:
    driver = await asyncio.to_thread(_browser, tmp_path / "profile")
    shots = tmp_path / "shots"
    shots.mkdir()
    try:
        yield Browser(driver, running.base, shots)
    finally:
        await asyncio.to_thread(driver.quit)


async def test_a_moderator_changes_a_limit_in_the_browser(
    running: Running, browser: Browser
) -> None:
    discord = running.discord
    discord.browser_user = ADMIN
    await browser.open("/dashboard/")
    await browser.shot("dashboard-sign-in")
    await browser.click("#signin-discord")
    assert "Painters" in await browser.text("#communities")
    await browser.shot("dashboard-communities")

    await browser.click(f'a[href="/dashboard/c/{GUILD}"]')
    await browser.type("#form-limits-set input[name=daily]", "1")
    await browser.click("#form-limits-set button")
    assert await browser.text("#done") == "Done: limits for every user: daily 1."
    assert await browser.text("#current-limits") == "daily 1"
    await browser.shot("dashboard-settings")

    await browser.click('nav.tabs a[href$="/audit"]')
    first_row = await browser.text("#audit tbody tr")
    assert "limits for every user: daily 1" in first_row and "dashboard" in first_row
    await browser.shot("dashboard-audit")

    # The community's next /imagine, through the Discord adapter, meets the new limit: one
    # image a day per user, so a member's second one is refused (ephemerally).
    await imagine(running, "a first fox", wait_for="update_original_webhook_message")
    refusal = await imagine(running, "a second fox", wait_for="execute_webhook")
    assert refusal.json["flags"] & 64
    assert "You have used your 1 images for today" in refusal.json["content"]

    await browser.click('nav.tabs a[href$="/usage"]')
    assert "1 image," in await browser.text("main")
    await browser.shot("dashboard-usage")


async def test_a_form_without_its_csrf_token_is_refused_in_the_browser(
    running: Running, browser: Browser
) -> None:
    app, discord = running.app, running.discord
    discord.browser_user = ADMIN
    await browser.open("/dashboard/login/discord")
    await browser.open(f"/dashboard/c/{GUILD}")
    # A page that posts the same form without the token (as another site's form would).
    await browser.run(
        browser.driver.execute_script,
        "document.querySelector('#form-budget-set input[name=csrf_token]').remove();",
    )
    await browser.type("#form-budget-set input[name=value]", "0")
    await browser.click("#form-budget-set button")
    assert "not sent from this page" in await browser.text("#error-message")
    assert (await app.service.get_settings(GUILD)).community_budget_usd is None


async def test_a_member_who_is_no_admin_sees_no_community_in_the_browser(
    running: Running, browser: Browser
) -> None:
    discord = running.discord
    discord.browser_user = MEMBER
    await browser.open("/dashboard/")
    await browser.click("#signin-discord")
    assert "You administer no community" in await browser.text("#no-communities")
    await browser.open(f"/dashboard/c/{GUILD}")
    assert "You do not administer that community" in await browser.text("#error-message")
