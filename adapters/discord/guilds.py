"""The dashboard's view of Discord guilds through the bot's token, on discord.py: the guilds the
bot is in, a member's roles and permissions (``Member.guild_permissions``: the owner, Administrator
and every role of the member, as Discord's permission rules say) and the application's owners."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import discord

from adapters.discord.login import configure_endpoints, rest_only_client
from bot.ports import Community, Membership, SignInFailed
from bot.runtime.config import Settings

PLATFORM = "discord"


class BotGuilds:
    """A discord.py client of its own, logged in over REST on first use (no gateway)."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._client = rest_only_client()
        self._login = asyncio.Lock()
        self._logged_in = False

    @classmethod
    def from_settings(cls, settings: Settings) -> BotGuilds | None:
        token = settings.secret("DISCORD_TOKEN")
        if not token:
            return None
        configure_endpoints(settings)
        return cls(token)

    async def _ready(self) -> discord.Client:
        async with self._login:
            if not self._logged_in:
                await self._client.login(self._token)
                self._logged_in = True
        return self._client

    async def guild_ids(self) -> set[str]:
        async with _answers():
            client = await self._ready()
            return {str(guild.id) async for guild in client.fetch_guilds(limit=None)}

    async def membership(self, guild_id: str, user_id: str) -> Membership | None:
        if not guild_id.isdigit() or not user_id.isdigit():
            return None
        async with _answers():
            client = await self._ready()
            try:
                guild = await client.fetch_guild(int(guild_id), with_counts=False)
                member = await guild.fetch_member(int(user_id))
            except (discord.NotFound, discord.Forbidden):
                return None
        permissions = member.guild_permissions
        roles = tuple(str(role.id) for role in member.roles if role != guild.default_role)
        return Membership(roles, permissions.administrator or permissions.manage_guild)

    async def guild(self, guild_id: str) -> Community | None:
        if not guild_id.isdigit():
            return None
        async with _answers():
            client = await self._ready()
            try:
                guild = await client.fetch_guild(int(guild_id), with_counts=False)
            except (discord.NotFound, discord.Forbidden):
                return None
        return Community(PLATFORM, guild_id, guild.name)

    async def application_owners(self) -> set[str]:
        async with _answers():
            info = await (await self._ready()).application_info()
        members = {str(member.id) for member in info.team.members} if info.team else set()
        return members | {str(info.owner.id)}

    async def aclose(self) -> None:
        await self._client.close()


@contextlib.asynccontextmanager
async def _answers() -> AsyncIterator[None]:
    """discord.py's failures as a sign-in failure with a message for the user."""
    try:
        yield
    except discord.LoginFailure:
        raise SignInFailed("The bot's Discord token was refused.") from None
    except (discord.HTTPException, aiohttp.ClientError, TimeoutError):
        raise SignInFailed("Discord did not answer; please try again in a moment.") from None
