"""The Discord adapter: a discord.py client whose commands and buttons end in ImagineService calls.

Every interaction is acknowledged first (defer, or the modal for Edit), before any storage or
network call of the bot's own (``interactions.py``); results arrive later over REST through the
same client, logged in without the gateway where a process runs only workers (``delivery.py``).
"""

from __future__ import annotations

import asyncio
import logging
import sys

import aiohttp
import discord

from adapters.discord.commands import build_tree
from adapters.discord.components import ResultButton
from adapters.discord.delivery import PLATFORM, DiscordDelivery
from adapters.discord.interactions import InteractionHandler
from adapters.discord.login import (
    DiscordLogin,
    client_options,
    configure_endpoints,
    rest_only_client,
)
from adapters.discord.personal import RerunButton
from adapters.discord.startup import start_gateway
from adapters.host import Host
from bot.domain.errors import ConfigError
from bot.runtime.config import Settings

log = logging.getLogger(__name__)


def make_client(settings: Settings) -> discord.Client:
    # No privileged intent: interactions arrive without any. ``guilds`` keeps channels cached,
    # so a thread's age restriction can be read from its parent channel.
    intents = discord.Intents.none()
    intents.guilds = True
    if settings.discord_shard_count is not None or settings.discord_shard_ids:
        if settings.discord_shard_ids:
            return discord.AutoShardedClient(
                intents=intents,
                shard_count=settings.discord_shard_count,
                shard_ids=list(settings.discord_shard_ids),
                **client_options(),
            )
        return discord.AutoShardedClient(
            intents=intents, shard_count=settings.discord_shard_count, **client_options()
        )
    return discord.Client(intents=intents, **client_options())


class DiscordAdapter:
    def __init__(self, app: Host, *, gateway: bool) -> None:
        settings = app.settings
        token = settings.secret("DISCORD_TOKEN")
        self._app = app
        self._token = token
        configure_endpoints(settings)
        # The gateway client, or None in a process that only runs workers.
        self.client: discord.Client | None = make_client(settings) if gateway else None
        # Deliveries use the gateway client where there is one (one session, one set of
        # rate-limit buckets), else a client of their own that never connects.
        self.login = DiscordLogin(self.client or rest_only_client(), token)
        self.delivery = DiscordDelivery(self.login, catalog=app.catalog, clock=app.clock)
        self.handler = InteractionHandler(app, self.delivery)
        self._started = False
        if self.client is not None:
            build_tree(self.client, self.handler, app.catalog)
            ResultButton.handler = self.handler
            RerunButton.handler = self.handler
            self.client.add_dynamic_items(ResultButton, RerunButton)
            handler = self.handler

            async def on_interaction(interaction: discord.Interaction) -> None:
                try:
                    await handler.on_interaction(interaction)
                except Exception:
                    log.exception("interaction %s failed", interaction.id)

            self.client.event(on_interaction)

    def attach(self) -> None:
        self._app.add_delivery(PLATFORM, self.delivery)
        if self.client is not None:
            self._app.http_server.add_readiness_check(PLATFORM, self.readiness)

    async def readiness(self) -> str | None:
        """For ``/readyz``: None while the gateway is connected, else why not."""
        client = self.client
        if client is None or not self._started:
            return "gateway not started"
        if client.is_closed():
            return "gateway closed"
        if not client.is_ready():
            return "gateway not connected"
        return None

    async def run(self, stop: asyncio.Event) -> None:
        if self.client is None or not self._token:
            await stop.wait()
            return
        client = self.client
        self._started = True
        runner = asyncio.create_task(start_gateway(self.login), name="discord-gateway")
        stopper = asyncio.create_task(stop.wait())
        refused: ConfigError | None = None
        try:
            done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if runner in done:
                runner.result()
                await stop.wait()
        except discord.LoginFailure:
            refused = ConfigError(
                "DISCORD_TOKEN", "Discord refused the token; reset it in the Developer Portal"
            )
        except ConfigError as exc:
            refused = exc
        finally:
            stopper.cancel()
            await client.close()
            if not runner.done():
                runner.cancel()
            await asyncio.gather(runner, stopper, return_exceptions=True)
        if refused is not None:
            stop.set()  # nothing works without Discord: stop the whole process, say why
            raise refused

    async def aclose(self) -> None:
        client = self.login.client
        if client.is_closed():
            return
        if self._started or not isinstance(client, discord.AutoShardedClient):
            await client.close()
        else:
            await client.http.close()  # a sharded client that never started has nothing else


def create_adapter(app: Host, *, gateway: bool = True) -> DiscordAdapter:
    return DiscordAdapter(app, gateway=gateway)


async def sync_commands(settings: Settings, guild: str | None) -> int:
    """Register the commands globally (up to an hour to appear) or in one guild (at once)."""
    from bot.domain.catalog import load_catalog

    token = settings.secret("DISCORD_TOKEN")
    if not token:
        print("imagine-bot: DISCORD_TOKEN is not set")
        return 2
    configure_endpoints(settings)
    # Never connects to the gateway; ``guilds`` only keeps discord.py from warning about it.
    client = discord.Client(intents=discord.Intents(guilds=True))
    tree = build_tree(client, None, load_catalog())
    target = discord.Object(id=int(guild)) if guild else None
    try:
        await client.login(token)
        if target is not None:
            tree.copy_global_to(guild=target)
        synced = await tree.sync(guild=target)
    except discord.LoginFailure:
        print("imagine-bot: DISCORD_TOKEN: Discord refused the token", file=sys.stderr)
        return 2
    except discord.HTTPException as exc:
        print(f"imagine-bot: Discord refused the commands: HTTP {exc.status} {exc.text}")
        return 1
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        print(
            f"imagine-bot: could not reach Discord at {settings.discord_api_base} "
            f"({type(exc).__name__}); check the network",
            file=sys.stderr,
        )
        return 1
    finally:
        await client.close()
    where = f"guild {guild}" if guild else "every server (may take up to an hour to show)"
    print(f"registered {len(synced)} commands in {where}: {', '.join(c.name for c in synced)}")
    return 0
