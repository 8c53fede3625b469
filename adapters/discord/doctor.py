"""``imagine-bot doctor`` line for Discord: the token works, and the commands are registered."""

from __future__ import annotations

import contextlib

import aiohttp
import discord
from discord import app_commands

from adapters.discord.login import configure_endpoints, rest_only_client
from bot.runtime.config import Settings


async def check_discord(settings: Settings) -> str:
    token = settings.secret("DISCORD_TOKEN")
    if not token:
        return "not configured"
    configure_endpoints(settings)
    client = rest_only_client()
    registered: list[app_commands.AppCommand] = []
    try:
        await client.login(token)
        # A token that logs in but may not list commands is still a working bot.
        with contextlib.suppress(discord.HTTPException):
            registered = await app_commands.CommandTree(client).fetch_commands()
    except discord.LoginFailure:
        raise RuntimeError("DISCORD_TOKEN was refused (401): reset it in the portal") from None
    except discord.HTTPException as exc:
        raise RuntimeError(f"Discord answered HTTP {exc.status}") from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        base = settings.discord_api_base.rstrip("/")
        raise RuntimeError(f"cannot reach {base}: {type(exc).__name__}") from None
    finally:
        await client.close()
    user = client.user
    if user is None:  # set by every login that returns
        raise RuntimeError("Discord sent no user for the token")
    names = sorted(command.name for command in registered)
    listed = (
        f"global commands: {', '.join('/' + n for n in names)}"
        if "imagine" in names
        else "/imagine is not registered globally: run imagine-bot sync-commands"
    )
    return f"logged in as {user.name} ({user.id}); {listed}"
