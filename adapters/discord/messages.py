"""What the bot says on Discord: progress lines, the result embed, failure texts, custom ids.

The buttons under a result are in ``components.py``."""

from __future__ import annotations

import re

import discord

from bot.domain.catalog import Catalog
from bot.domain.models import Job

# Button custom ids: ``imagine:<action>:<job id>``. The state lives in the id, so a button
# works in any process and after any restart.
ACTIONS = ("reroll", "vary", "edit", "upscale", "delete")
BUTTON_TEMPLATE = (
    r"imagine:(?P<action>reroll|vary|edit|upscale|delete):(?P<job_id>[0-9A-Za-z_-]{1,64})"
)
EDIT_MODAL_PREFIX = "imagine:edit-prompt:"
EDIT_MODAL_RE = re.compile(r"^imagine:edit-prompt:(?P<job_id>[0-9A-Za-z_-]{1,64})$")
EDIT_PROMPT_INPUT = "prompt"

EMBED_COLOR = 0x5865F2
EMBED_DESCRIPTION_MAX = 4096


def custom_id(action: str, job_id: str) -> str:
    return f"imagine:{action}:{job_id}"


def edit_modal_id(job_id: str) -> str:
    return f"{EDIT_MODAL_PREFIX}{job_id}"


def quote_prompt(prompt: str, limit: int = 300) -> str:
    """The prompt as shown in a progress line: one line, bounded, markdown-neutral."""
    text = " ".join(prompt.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("`", "'")


def queued_text(job: Job, position: int) -> str:
    ahead = f"position {position + 1} in the queue" if position else "next in the queue"
    return f"⏳ Queued ({ahead}): `{quote_prompt(job.request.prompt)}`"


def generating_text(job: Job, elapsed: float, label: str) -> str:
    provider = f" on {job.provider}" if job.provider else ""
    return (
        f"🎨 Generating with {label}{provider}, {elapsed:.0f} s so far: "
        f"`{quote_prompt(job.request.prompt)}`"
    )


def late_text(job: Job) -> str:
    return (
        f"⏳ Still working on `{quote_prompt(job.request.prompt)}`: this is taking long, so "
        "the image will be posted in this channel with a mention when it is ready."
    )


def late_history_text(job: Job) -> str:
    return (
        f"⏳ Still working on `{quote_prompt(job.request.prompt)}`: this is taking longer than "
        "Discord keeps this message open, so the image will not appear here. "
        "Find it with /history when it is ready."
    )


def result_embed(
    job: Job, catalog: Catalog, *, filename: str, size: tuple[int, int], seconds: float
) -> discord.Embed:
    variant = catalog.variants.get(job.variant)
    label = variant.label if variant else job.variant
    prompt = job.request.prompt
    if len(prompt) > EMBED_DESCRIPTION_MAX:
        prompt = prompt[: EMBED_DESCRIPTION_MAX - 1] + "…"
    action = {
        "reroll": "Reroll",
        "vary": "Variation",
        "edit": "Edit",
        "upscale": "Upscale",
    }.get(job.request.action)
    embed = discord.Embed(
        title=f"{action} of an earlier image" if action else "Imagined",
        description=prompt,
        color=EMBED_COLOR,
    )
    embed.set_image(url=f"attachment://{filename}")
    embed.add_field(name="Model", value=label)
    embed.add_field(name="Seed", value=str(job.seed))
    embed.add_field(name="Size", value=f"{size[0]}×{size[1]}")
    embed.add_field(name="Provider", value=job.provider or "-")
    embed.add_field(name="Time", value=f"{seconds:.1f} s")
    embed.set_footer(text=f"job {job.id}")
    return embed


def mention_only(user_id: str) -> discord.AllowedMentions:
    """Allowed mentions that ping the requester and nobody else."""
    return discord.AllowedMentions(
        everyone=False, roles=False, users=[discord.Object(id=int(user_id))], replied_user=False
    )


def failure_text(job: Job) -> str:
    text = job.error_message or f"Your image could not be made ({job.status.value})."
    return text if len(text) <= 1800 else text[:1799] + "…"
