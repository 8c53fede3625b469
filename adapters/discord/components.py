"""The buttons under a result (U1-U4, V1-V4, Reroll, Edit, Delete), Cancel under a running job,
and the Edit modal, as discord.py UI items whose custom ids carry the job id, so they work in any
process and after any restart."""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord

from adapters.discord import messages
from bot.domain.models import Job

# (label, style, emoji, row) of each button that is not per image.
_LOOKS: dict[str, tuple[str, discord.ButtonStyle, str | None, int]] = {
    "reroll": ("Reroll", discord.ButtonStyle.secondary, "🎲", 2),
    "edit": ("Edit", discord.ButtonStyle.secondary, "✏️", 2),
    "delete": ("Delete", discord.ButtonStyle.danger, "🗑️", 2),
    "cancel": ("Cancel", discord.ButtonStyle.danger, None, 0),
    "vary-subtle": ("Vary (Subtle)", discord.ButtonStyle.secondary, None, 0),
    "vary-strong": ("Vary (Strong)", discord.ButtonStyle.secondary, None, 0),
    # Buttons of messages sent before the per-image ones; they act on image 1.
    "vary": ("Vary", discord.ButtonStyle.secondary, "🔀", 0),
    "upscale": ("Upscale", discord.ButtonStyle.primary, "⬆️", 0),
}
# The row of buttons under an upscale: it is one image, varied or edited further.
UPSCALED_ACTIONS = ("vary-subtle", "vary-strong", "edit", "delete")


def _looks(action: str) -> tuple[str, discord.ButtonStyle, str | None, int]:
    if action[0] in "uv" and action[1:].isdigit():
        # U{k} and V{k}, exactly as Midjourney labels them; U on the first row, V on the second.
        style = discord.ButtonStyle.primary if action[0] == "u" else discord.ButtonStyle.secondary
        return action.upper(), style, None, 0 if action[0] == "u" else 1
    return _LOOKS[action]


class ButtonHandler(Protocol):
    async def button(self, interaction: discord.Interaction, action: str, job_id: str) -> None: ...


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=messages.BUTTON_TEMPLATE
):
    """Any button under a result or a running job, in any message, before or after a restart."""

    handler: ButtonHandler | None = None

    def __init__(self, action: str, job_id: str, *, row: int | None = None) -> None:
        label, style, emoji, default_row = _looks(action)
        super().__init__(
            discord.ui.Button(
                label=label,
                style=style,
                emoji=emoji,
                custom_id=messages.custom_id(action, job_id),
                row=default_row if row is None else row,
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


def result_actions(job: Job) -> list[str]:
    """The actions under a result, left to right and row by row."""
    if job.request.action == "upscale":
        return list(UPSCALED_ACTIONS)
    count = max(1, min(messages.MAX_IMAGES, len(job.images) or job.request.count))
    return [
        *(f"u{k}" for k in range(1, count + 1)),
        *(f"v{k}" for k in range(1, count + 1)),
        "reroll",
        "edit",
        "delete",
    ]


def result_view(job: Job) -> discord.ui.View:
    """The buttons under a result. Only dynamic items: a process that sends it keeps no
    per-message state (discord.py stores just the item class)."""
    view = discord.ui.View(timeout=None)
    upscaled = job.request.action == "upscale"
    for action in result_actions(job):
        view.add_item(ResultButton(action, job.id, row=0 if upscaled else None))
    return view


def cancel_view(job: Job) -> discord.ui.View:
    """The Cancel button under a queued or generating job."""
    view = discord.ui.View(timeout=None)
    view.add_item(ResultButton("cancel", job.id))
    return view


class EditPromptModal(discord.ui.Modal):
    """Asks for the new prompt of an Edit and the image to start from. The submission is handled
    in ``on_interaction`` from its custom id, so a modal opened before a restart still works."""

    def __init__(self, job_id: str, images: int = messages.MAX_IMAGES) -> None:
        """``images``: how many the result shows; with one there is nothing to pick."""
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
        if images > 1:
            self.add_item(
                discord.ui.TextInput(
                    label=f"Which image (1-{images})",
                    custom_id=messages.EDIT_IMAGE_INPUT,
                    default="1",
                    required=False,
                    min_length=1,
                    max_length=1,
                )
            )
