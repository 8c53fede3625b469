"""Starting discord.py quietly: no voice warnings, reconnect attempts as one log line each, and a
first gateway connection that fails retried like a dropped one."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import discord

from bot.errors import ConfigError

log = logging.getLogger(__name__)

# discord.py logs these with the whole traceback of a network error it is about to retry.
_RETRY_MESSAGES = ("Attempting a reconnect", "Failed to connect for shard_id")
MAX_RETRY_DELAY = 60.0


def _one_line_retries(record: logging.LogRecord) -> bool:
    """A reconnect attempt keeps its line and names the error; its traceback goes."""
    if record.exc_info and str(record.msg).startswith(_RETRY_MESSAGES):
        exc = record.exc_info[1]
        record.msg = f"{record.getMessage()} ({type(exc).__name__}: {exc})"
        record.args = None
        record.exc_info = None
        record.exc_text = None
    return True


def quiet_discord() -> None:
    """The bot uses no voice: discord.py's warnings that PyNaCl and davey are missing are noise."""
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False
    for name in ("discord.client", "discord.shard"):
        logging.getLogger(name).addFilter(_one_line_retries)


async def start_gateway(client: discord.Client, token: str) -> None:
    """``Client.start``: log in over REST, then hold the gateway, retrying while it is unreachable.

    Raises discord.LoginFailure for a refused token, ConfigError when Discord's API cannot be
    reached at all (the process stops and says so; a supervisor may start it again).
    """
    try:
        await client.login(token)
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
