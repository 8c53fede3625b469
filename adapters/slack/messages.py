"""What the bot posts in Slack: progress text, the result card with its buttons, modals, App Home.

Pure functions from core values to Slack payloads (Block Kit as plain dicts), so they are easy to test.
Button state lives in ``action_id`` (``imagine:<action>:<job id>``) so buttons keep working after a
restart and in any process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from bot.domain.catalog import Catalog
from bot.domain.models import Job
from bot.text.flags import flags_help

Block = dict[str, Any]

ACTION_PREFIX = "imagine"
BUTTON_ACTIONS = ("reroll", "vary", "edit", "upscale", "delete")
# Re-run under a /imagine history line.
HISTORY_ACTIONS = ("rerun",)
EDIT_CALLBACK = "imagine_edit"
EDIT_BLOCK = "prompt_block"
EDIT_INPUT = "prompt"
# Slack's limits: section text 3,000 characters, plain-text input 3,000, modal title 24.
SECTION_LIMIT = 3000
SHORT_PROMPT = 200

HELP = f"""*/imagine* makes an image from a description.
`/imagine a red fox at dawn --ar 16:9 --seed 7 --model max`
Options:
```
{flags_help()}
```
Under each image: *Reroll* (new seed), *Vary* (a close variation), *Edit* (new prompt on this image), *Upscale to Max*, *Delete* (you or an admin).
Your allowance is on the app's *Home* tab."""
CANNOT_POST = (
    "I can't post in this channel. Invite me first (type /invite and pick the Imagine app), "
    "then try again."
)


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: no user text can become a mention, link or channel ping."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def short(text: str, limit: int = SHORT_PROMPT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def action_id(action: str, job_id: str) -> str:
    return f"{ACTION_PREFIX}:{action}:{job_id}"


def parse_action_id(value: str) -> tuple[str, str] | None:
    """``imagine:reroll:<job>`` -> (``reroll``, ``<job>``); None for anything else."""
    parts = value.split(":")
    known = (*BUTTON_ACTIONS, *HISTORY_ACTIONS)
    if len(parts) != 3 or parts[0] != ACTION_PREFIX or parts[1] not in known:
        return None
    if not parts[2] or len(parts[2]) > 64:
        return None
    return parts[1], parts[2]


def ack_queued(prompt: str, *, private: bool = False) -> dict[str, Any]:
    where = "your DM with the bot (only you see it)" if private else "this channel"
    return {
        "response_type": "ephemeral",
        "text": f":hourglass_flowing_sand: Queued: _{escape(short(prompt))}_. "
        f"Your image will appear in {where}.",
    }


def ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


def refusal(message: str) -> dict[str, Any]:
    return ephemeral(f":no_entry_sign: {escape(message)}")


def queued_text(job: Job, label: str, position: int) -> str:
    ahead = f" ({position} ahead)" if position else ""
    return (
        f":hourglass_flowing_sand: Queued{ahead}: <@{job.user_id}> asked {label} for "
        f"_{escape(short(job.request.prompt))}_"
    )


def generating_text(job: Job, label: str, elapsed: float) -> str:
    return (
        f":art: Generating with {label} ({elapsed:.0f} s): <@{job.user_id}> asked for "
        f"_{escape(short(job.request.prompt))}_"
    )


def summary_line(job: Job, label: str, took: float) -> str:
    return f"{label} · seed {job.seed} · {job.width}×{job.height} · {took:.1f} s"


def upload_comment(job: Job, label: str, took: float) -> str:
    return f"<@{job.user_id}>: {escape(short(job.request.prompt, 1000))}\n{summary_line(job, label, took)}"


def result_blocks(job: Job, label: str, took: float) -> list[Block]:
    prompt = escape(job.request.prompt)
    head = f"*{prompt}*"
    details = f"{summary_line(job, label, took)} · requested by <@{job.user_id}>"
    text = head + "\n" + details
    if len(text) > SECTION_LIMIT:
        text = short(head, SECTION_LIMIT - len(details) - 1) + "\n" + details
    buttons = [
        _button("Reroll", "reroll", job.id),
        _button("Vary", "vary", job.id),
        _button("Edit", "edit", job.id),
        _button("Upscale to Max", "upscale", job.id),
        _button("Delete", "delete", job.id, style="danger", confirm=True),
    ]
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "block_id": f"imagine_actions:{job.id}", "elements": buttons},
    ]


def _button(
    label: str, action: str, job_id: str, *, style: str | None = None, confirm: bool = False
) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id(action, job_id),
        "value": job_id,
    }
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = {
            "title": {"type": "plain_text", "text": "Delete this image?"},
            "text": {"type": "plain_text", "text": "The image and its message are removed."},
            "confirm": {"type": "plain_text", "text": "Delete"},
            "deny": {"type": "plain_text", "text": "Keep"},
        }
    return button


def failure_text(job: Job) -> str:
    message = job.error_message or f"Your image ended as {job.status.value}."
    return (
        f":warning: <@{job.user_id}>, no image for _{escape(short(job.request.prompt))}_: "
        f"{escape(message)}"
    )


def edit_modal(job: Job, metadata: Mapping[str, str]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": EDIT_CALLBACK,
        "private_metadata": json.dumps(dict(metadata), separators=(",", ":")),
        "title": {"type": "plain_text", "text": "Edit image"},
        "submit": {"type": "plain_text", "text": "Imagine"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": EDIT_BLOCK,
                "label": {"type": "plain_text", "text": "What should change?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": EDIT_INPUT,
                    "multiline": True,
                    "max_length": 2000,
                    "initial_value": job.request.prompt[:2000],
                },
            }
        ],
    }


def home_view(
    *,
    quota_lines: Sequence[str],
    settings_lines: Sequence[str] | None,
    catalog: Catalog,
    history_lines: Sequence[str] = (),
) -> dict[str, Any]:
    models = ", ".join(f"`{v.name}` ({v.label})" for v in catalog.variants.values())
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Imagine"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": HELP}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Models:* {models}"}},
        {"type": "divider"},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*Your allowance*\n" + "\n".join(quota_lines)},
        },
    ]
    if history_lines:
        recent = "\n".join(escape(line) for line in history_lines)
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": ("*Your recent images* (`/imagine history` to re-run one)\n" + recent)[
                        :3000
                    ],
                },
            }
        )
    if settings_lines is not None:
        blocks.append({"type": "divider"})
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*Workspace settings* (you are an admin; change them with "
                    "`/imagine-admin`)\n" + "\n".join(escape(line) for line in settings_lines),
                },
            }
        )
    return {"type": "home", "blocks": blocks}
