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
from adapters.host import Host
from bot.domain.catalog import Catalog
from bot.domain.community import Actor, AddItem, Clear, RemoveItem, SettingsChange
from bot.domain.community_settings import (
    ADMIN_ROLES,
    ADMIN_USERS,
    BANNED_USERS,
    BLOCKED_TERMS,
    CHANNELS,
    LIMITS,
)
from bot.domain.errors import ImagineError, InvalidRequest, RequestRejected
from bot.domain.models import OUTPUT_FORMATS
from bot.domain.safety import NAMED_LEVELS
from bot.text import replies
from bot.text.settings import channel_safety_change, limits_change, value_change

log = logging.getLogger(__name__)


Reply = Callable[[Actor, str], Awaitable[str]]
MAX_REPLY = 1900
SAFETY_CHOICES = [app_commands.Choice(name=name, value=name) for name in NAMED_LEVELS]
SWITCH_CHOICES = [app_commands.Choice(name=name, value=name) for name in ("on", "off")]


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

    def __init__(self, app: Host) -> None:
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
            text = f"⚠️ {replies.SOMETHING_WRONG}"
        if len(text) > MAX_REPLY:
            text = text[: MAX_REPLY - 1] + "…"
        await interaction.edit_original_response(
            content=text, allowed_mentions=discord.AllowedMentions.none()
        )

    async def change(
        self, interaction: discord.Interaction, build: Callable[[], SettingsChange]
    ) -> None:
        """Read the options with the shared settings grammar (a mistake is answered at once,
        before any ack), then apply the change."""
        try:
            change = build()
        except InvalidRequest as exc:
            await interaction.response.send_message(f"⚠️ {exc.user_message}", ephemeral=True)
            return

        async def answer(actor: Actor, community: str) -> str:
            changed = await self._app.service.update_settings(community, actor, change)
            return changed.message

        await self.run(interaction, answer)

    async def quota(self, interaction: discord.Interaction) -> None:
        async def answer(actor: Actor, community: str) -> str:
            report = await self._app.service.quota(
                community, actor.user_id, actor.role_ids, is_platform_admin=actor.is_platform_admin
            )
            return "\n".join(replies.quota_lines(report)) or replies.NO_LIMITS

        await self.run(interaction, answer)

    async def show_settings(self, interaction: discord.Interaction) -> None:
        async def answer(actor: Actor, community: str) -> str:
            service = self._app.service
            if not await service.is_admin(community, actor):
                # Let the service refuse and audit it, as for any other admin action.
                await service.audit_log(community, actor, 1)
            settings = await service.get_settings(community)
            app = self._app
            lines = replies.settings_lines(
                settings, app.policy.defaults.limits, app.catalog.default_variant
            )
            return "\n".join(lines)

        await self.run(interaction, answer)

    async def blocked_list(self, interaction: discord.Interaction) -> None:
        async def answer(actor: Actor, community: str) -> str:
            terms = await self._app.service.blocked_terms(community, actor)
            return replies.blocked_terms_text(terms, quote="`")

        await self.run(interaction, answer)

    async def audit(self, interaction: discord.Interaction, count: int) -> None:
        async def answer(actor: Actor, community: str) -> str:
            entries = await self._app.service.audit_log(community, actor, count)
            if not entries:
                return replies.AUDIT_EMPTY
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


def build_admin_group(
    need: Callable[[], AdminCommands], catalog: Catalog
) -> list[app_commands.Command[Any, ..., None] | app_commands.Group]:
    """``/quota`` and the ``/imagine-admin`` group: the settings of the shared grammar
    (``bot.text.settings``) under the same names, one subcommand (or group) per setting."""

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

    @admin.command(name="show", description="Show this server's /imagine settings")
    async def show(interaction: discord.Interaction) -> None:
        await need().show_settings(interaction)

    @admin.command(name="safety", description="The server's safety level")
    @app_commands.choices(level=SAFETY_CHOICES)
    async def safety(interaction: discord.Interaction, level: str) -> None:
        await need().change(interaction, lambda: value_change("safety", level))

    @admin.command(name="channel-safety", description="A channel's own safety level")
    @app_commands.describe(level="Leave empty to clear the channel's own level")
    @app_commands.choices(level=SAFETY_CHOICES)
    async def channel_safety(
        interaction: discord.Interaction,
        channel: Channel,
        level: str | None = None,
    ) -> None:
        await need().change(interaction, lambda: channel_safety_change(str(channel.id), level))

    channels = app_commands.Group(
        name="channels", description="Where /imagine may be used", parent=admin
    )

    @channels.command(name="allow", description="Allow /imagine in a channel")
    async def channels_allow(interaction: discord.Interaction, channel: Channel) -> None:
        await need().change(interaction, lambda: AddItem(CHANNELS, str(channel.id)))

    @channels.command(name="disallow", description="Remove a channel from the allowed list")
    async def channels_disallow(interaction: discord.Interaction, channel: Channel) -> None:
        await need().change(interaction, lambda: RemoveItem(CHANNELS, str(channel.id)))

    @channels.command(name="allow-all", description="Allow /imagine in every channel")
    async def channels_all(interaction: discord.Interaction) -> None:
        await need().change(interaction, lambda: Clear(CHANNELS))

    blocked = app_commands.Group(
        name="blocked", description="This server's blocked terms", parent=admin
    )

    @blocked.command(name="add", description="Block a term in prompts")
    async def blocked_add(
        interaction: discord.Interaction, term: app_commands.Range[str, 1, 100]
    ) -> None:
        await need().change(interaction, lambda: AddItem(BLOCKED_TERMS, term))

    @blocked.command(name="remove", description="Unblock a term")
    async def blocked_remove(
        interaction: discord.Interaction, term: app_commands.Range[str, 1, 100]
    ) -> None:
        await need().change(interaction, lambda: RemoveItem(BLOCKED_TERMS, term))

    @blocked.command(name="list", description="List this server's blocked terms")
    async def blocked_list(interaction: discord.Interaction) -> None:
        await need().blocked_list(interaction)

    @admin.command(name="ban", description="Stop a member from using /imagine")
    async def ban(interaction: discord.Interaction, user: discord.User) -> None:
        await need().change(interaction, lambda: AddItem(BANNED_USERS, str(user.id)))

    @admin.command(name="unban", description="Let a member use /imagine again")
    async def unban(interaction: discord.Interaction, user: discord.User) -> None:
        await need().change(interaction, lambda: RemoveItem(BANNED_USERS, str(user.id)))

    @admin.command(name="limits", description="Per-user limits (for everyone, or one role)")
    @app_commands.rename(in_flight="in-flight")
    @app_commands.describe(
        rate="e.g. 5/minute, 20/hour, or off",
        burst="images at once within the rate, or off",
        daily="images per user per day, or off",
        in_flight="unfinished images per user at a time, or off",
        role="set an override for this role's members instead",
        reset="back to the bot defaults (for the role, if given)",
    )
    async def limits(
        interaction: discord.Interaction,
        rate: str | None = None,
        burst: str | None = None,
        daily: str | None = None,
        in_flight: str | None = None,
        role: discord.Role | None = None,
        reset: bool = False,
    ) -> None:
        role_id = str(role.id) if role is not None else None
        given = {"rate": rate, "burst": burst, "daily": daily, "in-flight": in_flight}
        values = {name: value for name, value in given.items() if value is not None}

        def build() -> SettingsChange:
            return Clear(LIMITS, role_id) if reset else limits_change(values, role_id)

        await need().change(interaction, build)

    @admin.command(name="server-daily", description="Images per day for the whole server")
    @app_commands.describe(images="a number of images, or off, or default")
    async def server_daily(interaction: discord.Interaction, images: str) -> None:
        await need().change(interaction, lambda: value_change("server-daily", images))

    @admin.command(name="budget", description="The server's daily spend in US dollars")
    @app_commands.describe(dollars="US dollars per day, like 2.50, or off, or default")
    async def budget(interaction: discord.Interaction, dollars: str) -> None:
        await need().change(interaction, lambda: value_change("budget", dollars))

    @admin.command(name="model", description="The model used when a request names none")
    @app_commands.choices(
        model=[
            *(
                app_commands.Choice(name=v.label, value=v.name)
                for v in list(catalog.variants.values())[:24]
            ),
            app_commands.Choice(name="The bot's default", value="default"),
        ]
    )
    async def model(interaction: discord.Interaction, model: str) -> None:
        await need().change(interaction, lambda: value_change("model", model))

    @admin.command(name="format", description="The image format when a request names none")
    @app_commands.choices(
        value=[
            *(app_commands.Choice(name=f, value=f) for f in OUTPUT_FORMATS),
            app_commands.Choice(name="The bot's default (jpeg)", value="default"),
        ]
    )
    async def default_format(interaction: discord.Interaction, value: str) -> None:
        await need().change(interaction, lambda: value_change("format", value))

    def switch(name: str, description: str) -> None:
        @admin.command(name=name, description=description)
        @app_commands.choices(value=SWITCH_CHOICES)
        async def command(interaction: discord.Interaction, value: str) -> None:
            await need().change(interaction, lambda: value_change(name, value))

    switch("input-images", "Whether /imagine takes images to edit")
    switch("cache", "Whether seeded requests may reuse a stored image")
    switch("enhance", "Prompt upsampling when a request does not say (where offered)")
    switch("admins-exempt", "Whether admins skip the per-user limits")
    switch("shared-buttons", "Whether anyone may use U/V/Reroll under a result")

    @admin.command(name="count", description="Images per /imagine when a request names none")
    @app_commands.describe(images="1 to 4")
    async def count(
        interaction: discord.Interaction, images: app_commands.Range[int, 1, 4]
    ) -> None:
        await need().change(interaction, lambda: value_change("count", str(images)))

    switch("private", "Whether users may ask for private images (seen by them only)")

    admin_roles = app_commands.Group(
        name="admin-roles",
        description="Roles whose members are bot admins (server administrators only)",
        parent=admin,
    )

    @admin_roles.command(name="add", description="Make a role's members bot admins")
    async def admin_roles_add(interaction: discord.Interaction, role: discord.Role) -> None:
        await need().change(interaction, lambda: AddItem(ADMIN_ROLES, str(role.id)))

    @admin_roles.command(name="remove", description="A role's members are no longer bot admins")
    async def admin_roles_remove(interaction: discord.Interaction, role: discord.Role) -> None:
        await need().change(interaction, lambda: RemoveItem(ADMIN_ROLES, str(role.id)))

    admin_users = app_commands.Group(
        name="admin-users",
        description="Members who are bot admins (server administrators only)",
        parent=admin,
    )

    @admin_users.command(name="add", description="Make a member a bot admin")
    async def admin_users_add(interaction: discord.Interaction, user: discord.User) -> None:
        await need().change(interaction, lambda: AddItem(ADMIN_USERS, str(user.id)))

    @admin_users.command(name="remove", description="A member is no longer a bot admin")
    async def admin_users_remove(interaction: discord.Interaction, user: discord.User) -> None:
        await need().change(interaction, lambda: RemoveItem(ADMIN_USERS, str(user.id)))

    @admin.command(name="audit", description="Recent settings changes and refusals")
    async def audit(
        interaction: discord.Interaction, count: app_commands.Range[int, 1, 50] = 15
    ) -> None:
        await need().audit(interaction, count)

    return [quota, admin]
