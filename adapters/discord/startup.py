"""Holding the gateway: a first connection that fails is retried like a dropped one."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from adapters.discord.login import DiscordLogin
from bot.domain.errors import ConfigError

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 60.0


async def start_gateway(login: DiscordLogin) -> None:
    """``Client.start``: log in over REST (unless a delivery already did), then hold the gateway,
    retrying while it is unreachable.

    Raises discord.LoginFailure for a refused token, ConfigError when Discord's API cannot be
    reached at all (the process stops and says so; a supervisor may start it again).
    """
    try:
        client = await login.logged_in()
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise ConfigError(
            "DISCORD_API_BASE",
            f"could not reach Discord ({type(exc).__name__}); check the network, and the URL if "
            "you set one",
        ) from None
    delay = 1.0
    while not client.is_closed():
        try:
            await client.connect()
            return
        except AttributeError:
            # discord.py 2.7.1 (Rapptz/discord.py#10520): when the very first gateway connection
            # fails, connect() logs the reason, then trips over ``ws`` being None instead of
            # retrying. Anything else stays an error.
            if client.ws is not None:
                raise
        log.warning("Discord: gateway not reachable yet; trying again in %.0f s", delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RETRY_DELAY)
