"""The buttons under a result and the Edit modal, as discord.py UI items whose custom ids carry
the job id, so they work in any process and after any restart."""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord

from adapters.discord import messages
from bot.domain.models import Job

# (action, label, style, emoji) of each button under a result, left to right.
RESULT_BUTTONS = (
    ("reroll", "Reroll", discord.ButtonStyle.secondary, "🎲"),
    ("vary", "Vary", discord.ButtonStyle.secondary, "🔀"),
    ("edit", "Edit", discord.ButtonStyle.secondary, "✏️"),
    ("upscale", "Upscale to Max", discord.ButtonStyle.primary, "⬆️"),
    ("delete", "Delete", discord.ButtonStyle.danger, "🗑️"),
)
_LOOKS = {action: (label, style, emoji) for action, label, style, emoji in RESULT_BUTTONS}


class ButtonHandler(Protocol):
    async def button(self, interaction: discord.Interaction, action: str, job_id: str) -> None: ...


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=messages.BUTTON_TEMPLATE
):
    """Any button under a result, in any message, before or after a restart."""

    handler: ButtonHandler | None = None

    def __init__(self, action: str, job_id: str) -> None:
        label, style, emoji = _LOOKS[action]
        super().__init__(
            discord.ui.Button(
                label=label,
                style=style,
                emoji=emoji,
                custom_id=messages.custom_id(action, job_id),
            )
        )
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


def result_view(job: Job) -> discord.ui.View:
    """The row of buttons under a result. Only dynamic items: a process that sends it keeps no
    per-message state (discord.py stores just the item class)."""
    view = discord.ui.View(timeout=None)
    for action, *_ in RESULT_BUTTONS:
        view.add_item(ResultButton(action, job.id))
    return view


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
