"""``/history`` (the user's own jobs, each with a Re-run button) and ``/prefer`` (their own
defaults): every answer ephemeral, acknowledged first, the same in servers, DMs and user installs."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import discord
from discord import app_commands

from adapters.discord.ack import acknowledge
from adapters.discord.delivery import PLATFORM
from adapters.host import Host
from bot.domain.catalog import Catalog
from bot.domain.errors import ImagineError, RequestRejected
from bot.domain.models import Job
from bot.domain.preferences import FORMATS
from bot.text import replies
from bot.text.personal import HISTORY_EMPTY, PREFERENCES_RESET, history_lines, preferences_text

log = logging.getLogger(__name__)

MAX_REPLY = 2000
# Discord shows at most 5 rows of 5 buttons under a message.
MAX_BUTTONS = 25
RERUN_TEMPLATE = r"imagine:rerun:(?P<job_id>[0-9A-Za-z_-]{1,64})"


def rerun_custom_id(job_id: str) -> str:
    return f"imagine:rerun:{job_id}"


def message_link(job: Job) -> str | None:
    """The delivered message of a public job, as a Discord link (None where there is none)."""
    delivery = job.delivery or {}
    message_id, channel_id = delivery.get("message_id"), delivery.get("channel_id")
    if not message_id or not channel_id or not job.community_id.isdigit():
        return None
    return f"https://discord.com/channels/{job.community_id}/{channel_id}/{message_id}"


class RerunHandler(Protocol):
    async def rerun(self, interaction: discord.Interaction, job_id: str) -> None: ...


class RerunButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=RERUN_TEMPLATE):
    """Re-run under a /history line: the same prompt and options, a new seed."""

    handler: RerunHandler | None = None

    def __init__(self, job_id: str, number: int = 0) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"Re-run {number}" if number else "Re-run",
                style=discord.ButtonStyle.secondary,
                emoji="🔁",
                custom_id=rerun_custom_id(job_id),
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[discord.Client],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> RerunButton:
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction[discord.Client]) -> None:
        if self.handler is not None:
            await self.handler.rerun(interaction, self.job_id)


class PersonalCommands:
    def __init__(self, app: Host) -> None:
        self._app = app

    async def _answer(
        self,
        interaction: discord.Interaction,
        answer: Callable[[str], Awaitable[tuple[str, discord.ui.View | None]]],
    ) -> None:
        if not await acknowledge(interaction, thinking=True, ephemeral=True):
            return
        view: discord.ui.View | None = None
        try:
            text, view = await answer(str(interaction.user.id))
        except RequestRejected as exc:
            text = f"⚠️ {exc.user_message}"
        except ImagineError:
            log.exception("interaction %s: the core failed", interaction.id)
            text = f"⚠️ {replies.SOMETHING_WRONG}"
        if len(text) > MAX_REPLY:
            text = text[: MAX_REPLY - 1] + "…"
        if view is None:
            await interaction.edit_original_response(
                content=text, allowed_mentions=discord.AllowedMentions.none()
            )
        else:
            await interaction.edit_original_response(
                content=text, view=view, allowed_mentions=discord.AllowedMentions.none()
            )

    async def history(self, interaction: discord.Interaction, count: int) -> None:
        async def answer(user_id: str) -> tuple[str, discord.ui.View | None]:
            jobs = await self._app.service.history(PLATFORM, user_id, count)
            if not jobs:
                return HISTORY_EMPTY, None
            lines = history_lines(jobs, self._app.catalog, message_link)
            view = discord.ui.View(timeout=None)
            for number, job in enumerate(jobs[:MAX_BUTTONS], 1):
                view.add_item(RerunButton(job.id, number))
            return "\n".join(lines), view

        await self._answer(interaction, answer)

    async def prefer(self, interaction: discord.Interaction, values: dict[str, object]) -> None:
        async def answer(user_id: str) -> tuple[str, discord.ui.View | None]:
            if not values:
                prefs = await self._app.service.preferences(PLATFORM, user_id)
            else:
                prefs = await self._app.service.prefer(PLATFORM, user_id, values)
            return preferences_text(prefs), None

        await self._answer(interaction, answer)

    async def reset(self, interaction: discord.Interaction) -> None:
        async def answer(user_id: str) -> tuple[str, discord.ui.View | None]:
            await self._app.service.reset_preferences(PLATFORM, user_id)
            return PREFERENCES_RESET, None

        await self._answer(interaction, answer)


def build_personal_commands(
    need: Callable[[], PersonalCommands], catalog: Catalog
) -> list[app_commands.Command[Any, ..., None] | app_commands.Group]:
    """``/history`` and the ``/prefer`` group, usable wherever /imagine is."""
    model_choices = [
        app_commands.Choice(name=variant.label, value=variant.name)
        for variant in list(catalog.variants.values())[:24]
    ] + [app_commands.Choice(name="The default", value="default")]
    format_choices = [app_commands.Choice(name=f, value=f) for f in FORMATS]

    @app_commands.command(name="history", description="Your recent images (only you see them)")
    @app_commands.describe(count="How many (1-25, default 10)")
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def history(
        interaction: discord.Interaction, count: app_commands.Range[int, 1, 25] = 10
    ) -> None:
        await need().history(interaction, count)

    prefer = app_commands.Group(
        name="prefer",
        description="Your own defaults for /imagine",
        allowed_installs=app_commands.AppInstallationType(guild=True, user=True),
        allowed_contexts=app_commands.AppCommandContext(
            guild=True, dm_channel=True, private_channel=True
        ),
    )

    @prefer.command(name="set", description="Set your defaults (the others stay as they are)")
    @app_commands.describe(
        model="Your default model",
        aspect="Your default aspect ratio, like 16:9 ('default' clears it)",
        format="The image format",
        count="How many images at once",
        private="Show your images to you only",
        enhance="Let the provider enhance your prompts",
        suffix="Text added to the end of every prompt ('default' clears it)",
    )
    @app_commands.choices(model=model_choices, format=format_choices)
    async def prefer_set(
        interaction: discord.Interaction,
        model: str | None = None,
        aspect: str | None = None,
        format: str | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
        private: bool | None = None,
        enhance: bool | None = None,
        suffix: app_commands.Range[str, 1, 500] | None = None,
    ) -> None:
        given = {
            "model": model,
            "aspect": aspect,
            "format": format,
            "count": count,
            "private": private,
            "enhance": enhance,
            "suffix": suffix,
        }
        await need().prefer(interaction, {k: v for k, v in given.items() if v is not None})

    @prefer.command(name="show", description="Show your defaults")
    async def prefer_show(interaction: discord.Interaction) -> None:
        await need().prefer(interaction, {})

    @prefer.command(name="reset", description="Clear all your defaults")
    async def prefer_reset(interaction: discord.Interaction) -> None:
        await need().reset(interaction)

    return [history, prefer]
