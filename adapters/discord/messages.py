"""Discord message payloads the bot sends: progress lines, the result embed and its buttons.

Plain JSON (the REST shapes), so the gateway process and gateway-less workers render the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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

NO_MENTIONS: Mapping[str, Any] = {"parse": []}
EPHEMERAL = 1 << 6
EMBED_COLOR = 0x5865F2
EMBED_DESCRIPTION_MAX = 4096

# Button styles (Discord component reference).
PRIMARY, SECONDARY, DANGER = 1, 2, 4


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


def queued_payload(job: Job, position: int) -> dict[str, Any]:
    ahead = f"position {position + 1} in the queue" if position else "next in the queue"
    return {
        "content": f"⏳ Queued ({ahead}): `{quote_prompt(job.request.prompt)}`",
        "allowed_mentions": dict(NO_MENTIONS),
    }


def generating_payload(job: Job, elapsed: float, label: str) -> dict[str, Any]:
    provider = f" on {job.provider}" if job.provider else ""
    return {
        "content": (
            f"🎨 Generating with {label}{provider}, {elapsed:.0f} s so far: "
            f"`{quote_prompt(job.request.prompt)}`"
        ),
        "allowed_mentions": dict(NO_MENTIONS),
    }


def late_payload(job: Job) -> dict[str, Any]:
    return {
        "content": (
            f"⏳ Still working on `{quote_prompt(job.request.prompt)}`: this is taking long, so "
            "the image will be posted in this channel with a mention when it is ready."
        ),
        "allowed_mentions": dict(NO_MENTIONS),
    }


def result_embed(
    job: Job, catalog: Catalog, *, filename: str, size: tuple[int, int], seconds: float
) -> dict[str, Any]:
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
    title = f"{action} of an earlier image" if action else "Imagined"
    return {
        "title": title,
        "description": prompt,
        "color": EMBED_COLOR,
        "image": {"url": f"attachment://{filename}"},
        "fields": [
            {"name": "Model", "value": label, "inline": True},
            {"name": "Seed", "value": str(job.seed), "inline": True},
            {"name": "Size", "value": f"{size[0]}×{size[1]}", "inline": True},
            {"name": "Provider", "value": job.provider or "-", "inline": True},
            {"name": "Time", "value": f"{seconds:.1f} s", "inline": True},
        ],
        "footer": {"text": f"job {job.id}"},
    }


def result_buttons(job: Job) -> list[dict[str, Any]]:
    buttons = [
        ("reroll", "Reroll", SECONDARY, "🎲"),
        ("vary", "Vary", SECONDARY, "🔀"),
        ("edit", "Edit", SECONDARY, "✏️"),
        ("upscale", "Upscale to Max", PRIMARY, "⬆️"),
        ("delete", "Delete", DANGER, "🗑️"),
    ]
    return [
        {
            "type": 1,
            "components": [
                {
                    "type": 2,
                    "style": style,
                    "label": label,
                    "emoji": {"name": emoji},
                    "custom_id": custom_id(action, job.id),
                }
                for action, label, style, emoji in buttons
            ],
        }
    ]


def failure_text(job: Job) -> str:
    text = job.error_message or f"Your image could not be made ({job.status.value})."
    return text if len(text) <= 1800 else text[:1799] + "…"
