"""The process's discord.py client, logged in once over REST (``Client.login``, no gateway), so any
worker can call Discord through discord.py's HTTP client and its per-route rate-limit buckets."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import yarl

from bot.domain.errors import ConfigError
from bot.ops import metrics
from bot.runtime.config import Settings

# A longer rate limit on a route fails the call (discord.RateLimited) instead of holding a worker.
MAX_RATE_LIMIT_WAIT = 30.0


# discord.py logs these with the whole traceback of a network error it is about to retry.
_RETRY_MESSAGES = ("Attempting a reconnect", "Failed to connect for shard_id")


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


def configure_endpoints(settings: Settings) -> None:
    """Point discord.py at DISCORD_API_BASE / DISCORD_GATEWAY_URL (regional proxies, tests)."""
    quiet_discord()
    discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def client_options() -> dict[str, Any]:
    """Options of every discord.py client the adapter makes (gateway or not)."""
    return {"http_trace": _count_rate_limits(), "max_ratelimit_timeout": MAX_RATE_LIMIT_WAIT}


def rest_only_client() -> discord.Client:
    """A client for a process without the gateway: it logs in and calls REST, never connects."""
    # Intents matter only to a gateway connection; ``guilds`` spares discord.py's warning that
    # its state works poorly without it.
    intents = discord.Intents.none()
    intents.guilds = True
    return discord.Client(intents=intents, **client_options())


def _count_rate_limits() -> aiohttp.TraceConfig:
    """Counts Discord's 429 answers, which discord.py waits out itself (webhooks included: they
    share the client's aiohttp session)."""

    async def on_request_end(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        if params.response.status == 429:
            metrics.rate_limited("discord")

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    return trace


class DiscordLogin:
    def __init__(self, client: discord.Client, token: str | None) -> None:
        self.client = client
        self._token = token
        self._lock = asyncio.Lock()

    async def logged_in(self) -> discord.Client:
        """The client, after its one login (two REST calls; the gateway may follow or not)."""
        # ``Client.user`` is set by a login (discord.py documents it as None until then).
        if self.client.user is None:
            async with self._lock:
                if self.client.user is None:
                    if not self._token:
                        raise ConfigError("DISCORD_TOKEN", "is not set")
                    await self.client.login(self._token)
        return self.client
