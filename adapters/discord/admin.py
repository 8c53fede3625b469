"""``/quota`` and the ``/imagine-admin`` group: each subcommand becomes one typed change or query
of ImagineService. Discord hides the group from members without Manage Server, but server admins
can re-grant commands to anyone, so the service re-checks every use (and audits refusals)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from adapters.discord.ack import acknowledge
from bot.domain.catalog import Catalog
from bot.domain.community import (
    Actor,
    AllowAllChannels,
    AllowChannel,
    BanUser,
    BlockTerm,
    ClearUserLimits,
    DisallowChannel,
    SetBudget,
    SetChannelSafety,
    SetCommunityDaily,
    SetDefaultModel,
    SetSafetyLevel,
    SettingsChange,
    SetUserLimits,
    UnbanUser,
    UnblockTerm,
    describe_settings,
)
from bot.domain.errors import ImagineError, InvalidRequest, RequestRejected
from bot.domain.limits import UNLIMITED, parse_rate
from bot.domain.models import Limits
from bot.domain.safety import NAMED_LEVELS
from bot.runtime.app import App

log = logging.getLogger(__name__)


Reply = Callable[[Actor, str], Awaitable[str]]
MAX_REPLY = 1900
SAFETY_CHOICES = [app_commands.Choice(name=name, value=name) for name in NAMED_LEVELS]


class ChannelOption(app_commands.Transformer):
    """A channel where /imagine can be used: text, announcement, voice (text chat), forum and
    threads. Only the id is needed, so the payload's partial channel suffices (no cache)."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return [
            discord.ChannelType.text,
            discord.ChannelType.news,
            discord.ChannelType.voice,
            discord.ChannelType.forum,
            discord.ChannelType.public_thread,
            discord.ChannelType.private_thread,
            discord.ChannelType.news_thread,
        ]

    async def transform(self, interaction: discord.Interaction, value: Any, /) -> Any:
        return value


Channel = app_commands.Transform[app_commands.AppCommandChannel, ChannelOption]


def actor_of(interaction: discord.Interaction) -> Actor:
    user = interaction.user
    roles: tuple[str, ...] = ()
    if isinstance(user, discord.Member):
        roles = tuple(str(role_id) for role_id in user._roles)
    permissions = interaction.permissions
    return Actor(
        user_id=str(user.id),
        role_ids=roles,
        is_platform_admin=permissions.administrator or permissions.manage_guild,
        name=user.name,
    )


class AdminCommands:
    """Runs each admin command: ack (ephemeral) first, then the service, then the answer."""

    def __init__(self, app: App) -> None:
        self._app = app

    async def run(self, interaction: discord.Interaction, answer: Reply) -> None:
        if not await acknowledge(interaction, ephemeral=True, thinking=True):
            return
        actor = actor_of(interaction)
        try:
            text = await answer(actor, str(interaction.guild_id or ""))
        except RequestRejected as exc:
            text = f"⚠️ {exc.user_message}"
        except ImagineError:
            log.exception("admin command failed")
            text = "⚠️ Something went wrong on our side; please try again in a moment."
        if len(text) > MAX_REPLY:
            text = text[: MAX_REPLY - 1] + "…"
        await interaction.edit_original_response(
            content=text, allowed_mentions=discord.AllowedMentions.none()
        )

    async def change(self, interaction: discord.Interaction, *changes: SettingsChange) -> None:
        async def answer(actor: Actor, community: str) -> str:
            lines = []
            for change in changes:
                changed = await self._app.service.update_settings(community, actor, change)
                lines.append(changed.message)
            return "\n".join(lines)

        await self.run(interaction, answer)

    async def quota(self, interaction: discord.Interaction) -> None:
        async def answer(actor: Actor, community: str) -> str:
            report = await self._app.service.quota(
                community, actor.user_id, actor.role_ids, is_platform_admin=actor.is_platform_admin
            )
            return "\n".join(report.lines()) or "No limits apply to you here."

        await self.run(interaction, answer)

    async def show_settings(self, interaction: discord.Interaction) -> None:
        async def answer(actor: Actor, community: str) -> str:
            service = self._app.service
            if not await service.is_admin(community, actor):
                # Let the service refuse and audit it, as for any other admin action.
                await service.audit_log(community, actor, 1)
            settings = await service.get_settings(community)
            return "\n".join(describe_settings(settings))

        await self.run(interaction, answer)

    async def blocked_list(self, interaction: discord.Interaction) -> None:
        async def answer(actor: Actor, community: str) -> str:
            terms = await self._app.service.blocked_terms(community, actor)
            if not terms:
                return "This server's word list is empty (the bot's built-in list still applies)."
            return "Blocked terms: " + ", ".join(f"`{t}`" for t in terms)

        await self.run(interaction, answer)

    async def audit(self, interaction: discord.Interaction, count: int) -> None:
        async def answer(actor: Actor, community: str) -> str:
            entries = await self._app.service.audit_log(community, actor, count)
            if not entries:
                return "The audit log is empty."
            lines = []
            for entry in entries:
                when = dt.datetime.fromtimestamp(entry.at, dt.UTC).strftime("%Y-%m-%d %H:%M")
                where = f" in <#{entry.channel_id}>" if entry.channel_id else ""
                lines.append(
                    f"`{when}` <@{entry.actor_id}> {entry.kind} {entry.action}{where}: "
                    f"{entry.detail}"
                )
            return "\n".join(lines)

        await self.run(interaction, answer)


def parse_count(text: str | None, what: str) -> int | None:
    """A limit typed by an admin: a number, ``unlimited``, or ``default`` (empty: no change)."""
    if text is None:
        return None
    value = text.strip().lower()
    if value in ("unlimited", "none", "off", "no limit"):
        return UNLIMITED
    if not value.isdigit():
        raise InvalidRequest(f"{what} is a whole number or 'unlimited'; got {text!r}.")
    return int(value)


def build_admin_group(
    need: Callable[[], AdminCommands], catalog: Catalog
) -> list[app_commands.Command[Any, ..., None] | app_commands.Group]:
    """``/quota`` and the ``/imagine-admin`` group."""

    @app_commands.command(name="quota", description="How many images you have left")
    @app_commands.guild_only()
    async def quota(interaction: discord.Interaction) -> None:
        await need().quota(interaction)

    admin = app_commands.Group(
        name="imagine-admin",
        description="Moderator settings of /imagine",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )

    @admin.command(name="settings", description="Show this server's /imagine settings")
    async def settings(interaction: discord.Interaction) -> None:
        await need().show_settings(interaction)

    @admin.command(name="safety", description="The server's safety level")
    @app_commands.choices(level=SAFETY_CHOICES)
    async def safety(interaction: discord.Interaction, level: str) -> None:
        await need().change(interaction, SetSafetyLevel(level))

    @admin.command(name="channel-safety", description="A channel's own safety level")
    @app_commands.describe(level="Leave empty to clear the channel's own level")
    @app_commands.choices(level=SAFETY_CHOICES)
    async def channel_safety(
        interaction: discord.Interaction,
        channel: Channel,
        level: str | None = None,
    ) -> None:
        await need().change(interaction, SetChannelSafety(str(channel.id), level))

    channels = app_commands.Group(
        name="channels", description="Where /imagine may be used", parent=admin
    )

    @channels.command(name="allow", description="Allow /imagine in a channel")
    async def channels_allow(interaction: discord.Interaction, channel: Channel) -> None:
        await need().change(interaction, AllowChannel(str(channel.id)))

    @channels.command(name="disallow", description="Remove a channel from the allowed list")
    async def channels_disallow(interaction: discord.Interaction, channel: Channel) -> None:
        await need().change(interaction, DisallowChannel(str(channel.id)))

    @channels.command(name="allow-all", description="Allow /imagine in every channel")
    async def channels_all(interaction: discord.Interaction) -> None:
        await need().change(interaction, AllowAllChannels())

    blocked = app_commands.Group(
        name="blocked", description="This server's blocked terms", parent=admin
    )

    @blocked.command(name="add", description="Block a term in prompts")
    async def blocked_add(
        interaction: discord.Interaction, term: app_commands.Range[str, 1, 100]
    ) -> None:
        await need().change(interaction, BlockTerm(term))

    @blocked.command(name="remove", description="Unblock a term")
    async def blocked_remove(
        interaction: discord.Interaction, term: app_commands.Range[str, 1, 100]
    ) -> None:
        await need().change(interaction, UnblockTerm(term))

    @blocked.command(name="list", description="List this server's blocked terms")
    async def blocked_list(interaction: discord.Interaction) -> None:
        await need().blocked_list(interaction)

    @admin.command(name="ban", description="Stop a member from using /imagine")
    async def ban(interaction: discord.Interaction, user: discord.User) -> None:
        await need().change(interaction, BanUser(str(user.id)))

    @admin.command(name="unban", description="Let a member use /imagine again")
    async def unban(interaction: discord.Interaction, user: discord.User) -> None:
        await need().change(interaction, UnbanUser(str(user.id)))

    @admin.command(name="limits", description="Per-user limits (for everyone, or one role)")
    @app_commands.describe(
        rate="e.g. 5/minute, 20/hour, or off",
        daily="images per user per day, or unlimited",
        burst="images at once within the rate",
        in_progress="unfinished images per user at a time, or unlimited",
        role="set an override for this role's members instead",
        reset="back to the bot defaults (for the role, if given)",
    )
    async def limits(
        interaction: discord.Interaction,
        rate: str | None = None,
        daily: str | None = None,
        burst: app_commands.Range[int, 1, 1000] | None = None,
        in_progress: str | None = None,
        role: discord.Role | None = None,
        reset: bool = False,
    ) -> None:
        role_id = str(role.id) if role is not None else None
        if reset:
            await need().change(interaction, ClearUserLimits(role_id))
            return
        try:
            change = SetUserLimits(_limits(rate, daily, burst, in_progress), role_id=role_id)
        except InvalidRequest as exc:
            await interaction.response.send_message(f"⚠️ {exc.user_message}", ephemeral=True)
            return
        await need().change(interaction, change)

    @admin.command(name="budget", description="The server's daily spend and image quota")
    @app_commands.describe(
        dollars="daily spend in US dollars, or unlimited, or default",
        images="images per day for the whole server, or unlimited, or default",
    )
    async def budget(
        interaction: discord.Interaction, dollars: str | None = None, images: str | None = None
    ) -> None:
        try:
            changes: list[SettingsChange] = []
            if dollars is not None:
                changes.append(SetBudget(_money(dollars)))
            if images is not None:
                value = (
                    None if images.strip().lower() == "default" else parse_count(images, "images")
                )
                changes.append(SetCommunityDaily(value))
        except InvalidRequest as exc:
            await interaction.response.send_message(f"⚠️ {exc.user_message}", ephemeral=True)
            return
        if not changes:
            await interaction.response.send_message(
                "Give `dollars`, `images` or both.", ephemeral=True
            )
            return
        await need().change(interaction, *changes)

    @admin.command(name="model", description="The model used when a request names none")
    @app_commands.choices(
        model=[
            app_commands.Choice(name=v.label, value=v.name)
            for v in list(catalog.variants.values())[:25]
        ]
    )
    async def model(interaction: discord.Interaction, model: str) -> None:
        await need().change(interaction, SetDefaultModel(model))

    @admin.command(name="audit", description="Recent settings changes and refusals")
    async def audit(
        interaction: discord.Interaction, count: app_commands.Range[int, 1, 50] = 15
    ) -> None:
        await need().audit(interaction, count)

    return [quota, admin]


def _limits(
    rate: str | None, daily: str | None, burst: int | None, in_progress: str | None
) -> Limits:
    rate_count: int | None = None
    period: float | None = None
    if rate is not None:
        try:
            parsed = parse_rate(rate)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        if parsed is None:
            rate_count, period = UNLIMITED, 60.0
        else:
            rate_count, period = parsed
    return Limits(
        rate=rate_count,
        period=period,
        burst=burst,
        daily=parse_count(daily, "The daily quota"),
        max_in_flight=parse_count(in_progress, "The in-progress cap"),
    )


def _money(text: str) -> float | None:
    value = text.strip().lower().removeprefix("$")
    if value == "default":
        return None
    if value in ("unlimited", "none", "off"):
        return float(UNLIMITED)
    try:
        return float(value)
    except ValueError:
        raise InvalidRequest(
            f"The budget is an amount in dollars like 5 or 2.50; got {text!r}."
        ) from None
