"""The Discord adapter: a discord.py client whose commands and buttons end in ImagineService calls.

Every interaction is acknowledged first (defer, or the modal for Edit), before any storage or
network call of the bot's own; results arrive later over REST (``delivery.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import discord
import yarl

from adapters.discord import messages
from adapters.discord.ack import acknowledge
from adapters.discord.admin import AdminCommands, actor_of
from adapters.discord.commands import build_tree
from adapters.discord.delivery import (
    APPLICATION_ID,
    INTERACTION_ID,
    INTERACTION_TOKEN,
    PLATFORM,
    SIZE_LIMIT,
    DiscordDelivery,
)
from adapters.discord.rest import DiscordRest
from bot.domain.errors import ConfigError, ImagineError, JobNotFound, RequestRejected
from bot.domain.models import ImagineRequest, ReplyTarget
from bot.jobs.service import Accepted
from bot.runtime.app import App
from bot.runtime.config import Settings
from bot.text import replies
from bot.text.flags import ImagineArgs, option_args
from bot.text.request import build_request

log = logging.getLogger(__name__)


def configure_endpoints(settings: Settings) -> None:
    """Point discord.py at DISCORD_API_BASE / DISCORD_GATEWAY_URL (regional proxies, tests)."""
    discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


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
            )
        return discord.AutoShardedClient(intents=intents, shard_count=settings.discord_shard_count)
    return discord.Client(intents=intents)


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=messages.BUTTON_TEMPLATE
):
    """Any button under a result, in any message, before or after a restart."""

    handler: InteractionHandler | None = None

    def __init__(self, action: str, job_id: str) -> None:
        super().__init__(discord.ui.Button(custom_id=messages.custom_id(action, job_id)))
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[discord.Client],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ResultButton:
        return cls(match["action"], match["job_id"])

    async def callback(self, interaction: discord.Interaction[discord.Client]) -> None:
        if self.handler is not None:
            await self.handler.button(interaction, self.action, self.job_id)


class EditPromptModal(discord.ui.Modal):
    """Asks for the new prompt of an Edit. The submission is handled in ``on_interaction`` from
    its custom id, so a modal opened before a restart still works after it."""

    def __init__(self, job_id: str) -> None:
        super().__init__(title="Edit this image", custom_id=messages.edit_modal_id(job_id))
        self.add_item(
            discord.ui.TextInput(
                label="New prompt",
                custom_id=messages.EDIT_PROMPT_INPUT,
                style=discord.TextStyle.paragraph,
                placeholder="What should change? e.g. make it night, add snow",
                max_length=2000,
            )
        )


class InteractionHandler:
    """Turns interactions into core requests and core answers into interaction responses."""

    def __init__(self, app: App, delivery: DiscordDelivery) -> None:
        self._app = app
        self._delivery = delivery
        self.admin = AdminCommands(app)

    # /imagine -----------------------------------------------------------------------------------

    async def imagine(
        self,
        interaction: discord.Interaction,
        *,
        prompt: str,
        model: str | None,
        aspect: str | None,
        seed: int | None,
        image: discord.Attachment | None,
    ) -> None:
        if not await acknowledge(interaction, thinking=True):
            return
        inputs: tuple[str, ...] = ()
        if image is not None:
            if not (image.content_type or "").startswith("image/"):
                await self._refuse(interaction, "The `image` option takes a PNG, JPEG or WebP.")
                return
            inputs = (image.url,)
        try:
            args = option_args(prompt, model=model, aspect_ratio=aspect, seed=seed, images=inputs)
        except RequestRejected as exc:
            await self._refuse(interaction, exc.user_message)
            return
        request = self._request(interaction, args, inputs)
        await self._submit(interaction, lambda: self._app.service.imagine(request))

    # Buttons and the Edit modal -----------------------------------------------------------------

    async def button(self, interaction: discord.Interaction, action: str, job_id: str) -> None:
        if action == "edit":
            await interaction.response.send_modal(EditPromptModal(job_id))
            return
        if action == "delete":
            await self._delete(interaction, job_id)
            return
        if not await acknowledge(interaction, thinking=True):
            return
        request = self._request(interaction, ImagineArgs(""))
        await self._submit(
            interaction, lambda: self._app.service.follow_up(job_id, action, request)
        )

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Modal submissions of Edit (the one interaction kind not routed by discord.py here)."""
        if interaction.type is not discord.InteractionType.modal_submit or not interaction.data:
            return
        match = messages.EDIT_MODAL_RE.match(str(interaction.data.get("custom_id", "")))
        if match is None:
            return
        if not await acknowledge(interaction, thinking=True):
            return
        new_prompt = _submitted_value(interaction.data, messages.EDIT_PROMPT_INPUT) or ""
        request = self._request(interaction, ImagineArgs(new_prompt))
        job_id = match["job_id"]
        await self._submit(
            interaction,
            lambda: self._app.service.follow_up(job_id, "edit", request, prompt=new_prompt),
        )

    async def _delete(self, interaction: discord.Interaction, job_id: str) -> None:
        # A deferred update: the "original response" is then the message carrying the button.
        if not await acknowledge(interaction):
            return
        actor = actor_of(interaction)
        service = self._app.service
        moderator = (
            actor.is_platform_admin
            or interaction.permissions.manage_messages
            or await service.is_admin(str(interaction.guild_id or ""), actor)
        )
        try:
            # Ownership is the core's rule: the requester or a moderator.
            await service.cancel(job_id, user_id=actor.user_id, is_admin=moderator)
        except JobNotFound:
            if not moderator:
                await interaction.followup.send(
                    "Only a moderator can delete an image the bot no longer knows.", ephemeral=True
                )
                return
        except RequestRejected as exc:
            await interaction.followup.send(f"⚠️ {exc.user_message}", ephemeral=True)
            return
        with contextlib.suppress(discord.NotFound):
            await interaction.delete_original_response()

    # Shared ---------------------------------------------------------------------------------------

    def _request(
        self, interaction: discord.Interaction, args: ImagineArgs, inputs: tuple[str, ...] = ()
    ) -> ImagineRequest:
        user = interaction.user
        roles: tuple[str, ...] = ()
        if isinstance(user, discord.Member):
            roles = tuple(str(role_id) for role_id in user._roles)
        channel_id = str(interaction.channel_id or "")
        return build_request(
            args,
            platform=PLATFORM,
            community_id=str(interaction.guild_id or f"dm-{user.id}"),
            channel_id=channel_id,
            user_id=str(user.id),
            input_images=inputs,
            reply=ReplyTarget(
                platform=PLATFORM,
                channel_id=channel_id,
                data={
                    APPLICATION_ID: str(interaction.application_id),
                    INTERACTION_ID: str(interaction.id),
                    INTERACTION_TOKEN: interaction.token,
                    SIZE_LIMIT: str(interaction.filesize_limit),
                },
            ),
            dedupe_key=str(interaction.id),
            user_roles=roles,
            user_is_admin=_is_admin(interaction),
            channel_age_restricted=_age_restricted(interaction.channel),
        )

    async def _submit(
        self, interaction: discord.Interaction, call: Callable[[], Awaitable[Accepted]]
    ) -> None:
        """Run a service call after the ack; show the queue position or the refusal."""
        try:
            accepted = await call()
        except RequestRejected as exc:
            await self._refuse(interaction, exc.user_message)
            return
        except JobNotFound:
            await self._refuse(interaction, replies.JOB_UNKNOWN)
            return
        except ImagineError:
            log.exception("interaction %s: the core failed", interaction.id)
            await self._refuse(interaction, replies.SOMETHING_WRONG)
            return
        if not accepted.duplicate:
            await self._delivery.show_queued(accepted.job, accepted.position)

    async def _refuse(self, interaction: discord.Interaction, text: str) -> None:
        """Refusals are ephemeral: drop the public "thinking" message, tell only the requester."""
        with contextlib.suppress(discord.HTTPException):
            await interaction.delete_original_response()
        await interaction.followup.send(
            f"⚠️ {text}", ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


class DiscordAdapter:
    def __init__(self, app: App, *, gateway: bool) -> None:
        settings = app.settings
        token = settings.secret("DISCORD_TOKEN")
        self._app = app
        self._token = token
        configure_endpoints(settings)
        self.rest = DiscordRest(
            app.http, api_base=settings.discord_api_base, bot_token=token, clock=app.clock
        )
        self.delivery = DiscordDelivery(self.rest, catalog=app.catalog, clock=app.clock)
        self.handler = InteractionHandler(app, self.delivery)
        self.client: discord.Client | None = None
        self._started = False
        if gateway:
            self.client = make_client(settings)
            build_tree(self.client, self.handler, app.catalog)
            ResultButton.handler = self.handler
            self.client.add_dynamic_items(ResultButton)
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
        runner = asyncio.create_task(client.start(self._token), name="discord-gateway")
        stopper = asyncio.create_task(stop.wait())
        refused = False
        try:
            done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if runner in done:
                runner.result()
                await stop.wait()
        except discord.LoginFailure:
            refused = True
        finally:
            stopper.cancel()
            await client.close()
            if not runner.done():
                runner.cancel()
            await asyncio.gather(runner, stopper, return_exceptions=True)
        if refused:
            stop.set()  # nothing works without the token: stop the whole process, say why
            raise ConfigError(
                "DISCORD_TOKEN", "Discord refused the token; reset it in the Developer Portal"
            )

    async def aclose(self) -> None:
        client = self.client
        if client is None or client.is_closed():
            return
        if self._started or not isinstance(client, discord.AutoShardedClient):
            await client.close()
        else:
            await client.http.close()  # a sharded client that never started has nothing else


def create_adapter(app: App, *, gateway: bool = True) -> DiscordAdapter:
    return DiscordAdapter(app, gateway=gateway)


async def sync_commands(settings: Settings, guild: str | None) -> int:
    """Register the commands globally (up to an hour to appear) or in one guild (at once)."""
    from bot.domain.catalog import load_catalog

    token = settings.secret("DISCORD_TOKEN")
    if not token:
        print("imagine-bot: DISCORD_TOKEN is not set")
        return 2
    configure_endpoints(settings)
    client = discord.Client(intents=discord.Intents.none())
    tree = build_tree(client, None, load_catalog())
    target = discord.Object(id=int(guild)) if guild else None
    try:
        await client.login(token)
        if target is not None:
            tree.copy_global_to(guild=target)
        synced = await tree.sync(guild=target)
    except discord.HTTPException as exc:
        print(f"imagine-bot: Discord refused the commands: HTTP {exc.status} {exc.text}")
        return 1
    finally:
        await client.close()
    where = f"guild {guild}" if guild else "every server (may take up to an hour to show)"
    print(f"registered {len(synced)} commands in {where}: {', '.join(c.name for c in synced)}")
    return 0


def _is_admin(interaction: discord.Interaction) -> bool:
    permissions = interaction.permissions
    return permissions.administrator or permissions.manage_guild


def _age_restricted(channel: Any) -> bool:
    if channel is None:
        return False
    is_nsfw = getattr(channel, "is_nsfw", None)
    if callable(is_nsfw):
        try:
            return bool(is_nsfw())
        except AttributeError:
            return False
    return bool(getattr(channel, "nsfw", False))


def _submitted_value(data: Mapping[str, Any], custom_id: str) -> str | None:
    """The value of one input of a modal submission, in rows or in labels (any nesting)."""
    stack: list[Any] = list(data.get("components") or [])
    while stack:
        item = stack.pop(0)
        if not isinstance(item, dict):
            continue
        if item.get("custom_id") == custom_id and "value" in item:
            return str(item["value"])
        stack.extend(item.get("components") or [])
        if isinstance(item.get("component"), dict):
            stack.append(item["component"])
    return None
