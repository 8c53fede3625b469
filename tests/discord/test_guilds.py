"""The dashboard's view of guilds through the bot's token (adapters/discord/guilds.py, on
discord.py) against the fake Discord: Manage Server as Discord's permission rules compute it, no
membership where the bot or the user is not, the guild list paged, the application's owners."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.discord.guilds import BotGuilds
from bot.ports import Community, SignInFailed
from bot.runtime.config import load_settings
from tests.discord.conftest import discord_env
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_oauth import FakeGuild

GUILD = "1700000000000000100"
USER = "1700000000000000200"
ROLE = "1700000000000000300"


@pytest.fixture
async def guilds(fake_discord: FakeDiscord, data_dir: Path) -> AsyncIterator[BotGuilds]:
    settings = load_settings(discord_env(fake_discord, data_dir), env_file=None)
    reader = BotGuilds.from_settings(settings)
    assert reader is not None
    yield reader
    await reader.aclose()


@pytest.mark.parametrize(
    ("owner", "member_roles", "roles", "admin"),
    [
        (USER, [], {GUILD: 0}, True),  # the owner
        ("9", [ROLE], {GUILD: 0, ROLE: 1 << 3}, True),  # Administrator
        ("9", [ROLE], {GUILD: 0, ROLE: 1 << 5}, True),  # Manage Server
        ("9", [], {GUILD: 1 << 5}, True),  # @everyone may manage
        ("9", [ROLE], {GUILD: 1 << 10, ROLE: 1 << 13}, False),  # Manage Messages is not enough
    ],
)
async def test_manage_server_is_computed_from_the_guilds_roles(
    guilds: BotGuilds,
    fake_discord: FakeDiscord,
    owner: str,
    member_roles: list[str],
    roles: dict[str, int],
    admin: bool,
) -> None:
    fake_discord.guilds[GUILD] = FakeGuild(GUILD, "G", owner, roles, {USER: member_roles})
    membership = await guilds.membership(GUILD, USER)
    assert membership is not None
    assert membership.is_platform_admin is admin
    assert membership.role_ids == tuple(member_roles)


async def test_no_membership_where_the_bot_or_the_user_is_not(
    guilds: BotGuilds, fake_discord: FakeDiscord
) -> None:
    fake_discord.guilds[GUILD] = FakeGuild(GUILD, "G", "9", {GUILD: 0}, {})
    assert await guilds.membership(GUILD, USER) is None  # Unknown Member
    fake_discord.guilds[GUILD] = FakeGuild(GUILD, "G", "9", {GUILD: 0}, {USER: []}, False)
    assert await guilds.membership(GUILD, USER) is None  # the bot is not in it
    assert await guilds.guild(GUILD) is None
    assert await guilds.membership("not-a-snowflake", USER) is None


async def test_the_bots_guilds_are_read_page_by_page(
    guilds: BotGuilds, fake_discord: FakeDiscord
) -> None:
    ids = [str(1700000000000001000 + n) for n in range(230)]
    for guild_id in ids:
        fake_discord.guilds[guild_id] = FakeGuild(guild_id, f"g{guild_id}", "9")
    fake_discord.guilds["1700000000000009999"] = FakeGuild(
        "1700000000000009999", "botless", "9", bot_member=False
    )
    assert await guilds.guild_ids() == set(ids)
    assert await guilds.guild(ids[0]) == Community("discord", ids[0], f"g{ids[0]}")


async def test_the_application_owner_is_named(guilds: BotGuilds) -> None:
    assert await guilds.application_owners() == {"1600000000000000006"}


async def test_a_refused_bot_token_is_a_sign_in_failure(
    fake_discord: FakeDiscord, data_dir: Path
) -> None:
    env = discord_env(fake_discord, data_dir, DISCORD_TOKEN="MTIz.refused.token-0123456789")
    reader = BotGuilds.from_settings(load_settings(env, env_file=None))
    assert reader is not None
    try:
        with pytest.raises(SignInFailed, match="token was refused"):
            await reader.guild_ids()
    finally:
        await reader.aclose()
