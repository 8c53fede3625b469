"""A running bot (``open_app``) with the dashboard on, against fake Discord and Slack on
127.0.0.1, on SQLite and on PostgreSQL; a client that follows the OAuth redirects like a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from bot.runtime.app import App, open_app
from bot.runtime.config import load_settings
from tests.fakes import discord_oauth, slack_openid
from tests.fakes.discord import BOT_TOKEN, FakeDiscord
from tests.fakes.discord_oauth import FakeGuild
from tests.fakes.slack import FakeSlack
from tests.pg import private_schema

SECRET = "a-test-secret-key-of-enough-length"
GUILD = "1200000000000000002"  # the bot is here
OTHER_GUILD = "1200000000000000009"  # the bot is here, the admin is not
BOTLESS_GUILD = "1200000000000000010"  # the admin is here, the bot is not
ADMIN = "1500000000000000005"  # Manage Server in GUILD
MEMBER = "1500000000000000006"  # a plain member of GUILD
HELPER_ROLE = "1700000000000000007"
OWNER = "1600000000000000006"  # the application's owner in the fake
MANAGE_GUILD = 1 << 5
SEND = (1 << 10) | (1 << 11)


@dataclass
class Site:
    app: App
    client: TestClient
    discord: FakeDiscord
    slack: FakeSlack

    async def sign_in(self, platform: str = "discord", user: str | None = ADMIN) -> ClientResponse:
        """The browser's path: our login, the platform's authorize page, our callback."""
        fake = self.discord if platform == "discord" else self.slack
        fake.browser_user = user
        response = await self.client.get(f"/dashboard/login/{platform}", allow_redirects=False)
        assert response.status == 302, await response.text()
        at_platform = await self.client.session.get(
            response.headers["Location"], allow_redirects=False
        )
        assert at_platform.status == 302, await at_platform.text()
        return await self.client.session.get(at_platform.headers["Location"])

    async def csrf(self, path: str) -> str:
        page = await (await self.client.get(path)).text()
        marker = 'name="csrf_token" value="'
        start = page.index(marker) + len(marker)
        return page[start : page.index('"', start)]


def discord_world(fake: FakeDiscord) -> None:
    fake.add_user(ADMIN, "Ada Admin")
    fake.add_user(MEMBER, "Max Member")
    fake.guilds[GUILD] = FakeGuild(
        GUILD,
        "Painters",
        owner_id="1500000000000000099",
        roles={GUILD: SEND, "1700000000000000001": MANAGE_GUILD, HELPER_ROLE: 0},
        members={ADMIN: ["1700000000000000001"], MEMBER: [], OWNER: []},
    )
    fake.guilds[OTHER_GUILD] = FakeGuild(
        OTHER_GUILD,
        "Sculptors",
        owner_id="1500000000000000098",
        roles={OTHER_GUILD: SEND},
        members={MEMBER: []},
    )
    fake.guilds[BOTLESS_GUILD] = FakeGuild(
        BOTLESS_GUILD,
        "No bot",
        owner_id=ADMIN,
        roles={BOTLESS_GUILD: SEND},
        members={ADMIN: []},
        bot_member=False,
    )


@pytest.fixture(params=["sqlite", "postgres"])
async def site(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Site]:
    discord = await FakeDiscord().start()
    slack = await FakeSlack().start()
    discord_world(discord)
    try:
        env = {
            "IMAGINE_DATA_DIR": str(tmp_path / "data"),
            "IMAGINE_SECRET_KEY": SECRET,
            "DISCORD_TOKEN": BOT_TOKEN,
            "DISCORD_API_BASE": discord.api_base,
            "DISCORD_CLIENT_ID": discord_oauth.CLIENT_ID,
            "DISCORD_CLIENT_SECRET": discord_oauth.CLIENT_SECRET,
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": "slack-signing-secret",
            "SLACK_API_URL": slack.api_url,
            "SLACK_CLIENT_ID": slack_openid.CLIENT_ID,
            "SLACK_CLIENT_SECRET": slack_openid.CLIENT_SECRET,
            "IMAGINE_OWNERS": "slack:UOWNER",
            "IMAGINE_USER_RATE": "100/minute",
        }
        if request.param == "postgres":
            async with private_schema() as url:
                env["IMAGINE_DATABASE_URL"] = url
                async with _site(env, discord, slack) as opened:
                    yield opened
        else:
            async with _site(env, discord, slack) as opened:
                yield opened
        assert discord.violations == [] and discord.oauth_violations == []
        assert slack.violations == [] and slack.openid_violations == []
    finally:
        await discord.aclose()
        await slack.aclose()


@asynccontextmanager
async def _site(env: dict[str, str], discord: FakeDiscord, slack: FakeSlack) -> AsyncIterator[Site]:
    settings = load_settings(env, env_file=None)
    async with open_app(settings) as app:
        client = TestClient(TestServer(app.http_server.app))
        await client.start_server()
        try:
            yield Site(app, client, discord, slack)
        finally:
            await client.close()
