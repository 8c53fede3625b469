"""``/imagine history [count]`` and ``/imagine prefer ...`` on Slack: the user's own jobs (each
with a Re-run button) and defaults, answered ephemerally through the command's response_url."""

from __future__ import annotations

from typing import Any

from adapters.slack import messages
from adapters.slack.delivery import PLATFORM
from bot.domain.models import Job
from bot.jobs.service import ImagineService
from bot.text.personal import HISTORY_EMPTY, PREFERENCES_RESET, history_lines, preferences_text
from bot.text.preferences import (
    PREFER_HELP,
    ResetPreferences,
    SetPreference,
    parse_prefer,
)

DEFAULT_HISTORY = 10
# Slack allows 25 elements in an actions block and 50 blocks per message.
MAX_RERUN_BUTTONS = 25
RERUN = "rerun"


def subcommand(command_text: str) -> tuple[str, str] | None:
    """``("history", "5")`` or ``("prefer", "model max")`` when the text is one of those
    subcommands, else None (then it is a prompt: "history of rome" is one)."""
    first, _, rest = command_text.strip().partition(" ")
    word, rest = first.lower(), rest.strip()
    if word == "history" and (not rest or rest.isdigit()):
        return word, rest
    if word == "prefer":
        return word, rest
    return None


def _permalink(job: Job) -> str | None:
    delivery = job.delivery or {}
    channel, ts = delivery.get("channel"), delivery.get("ts")
    if not channel or not ts:
        return None
    return f"in channel {channel}"


class PersonalCommands:
    def __init__(self, service: ImagineService) -> None:
        self._service = service

    async def run(self, user: str, name: str, rest: str) -> dict[str, Any]:
        """The ephemeral answer (a message payload) to one subcommand."""
        if name == "history":
            return await self._history(user, int(rest) if rest else DEFAULT_HISTORY)
        return messages.ephemeral(await self._prefer(user, rest))

    async def _history(self, user: str, count: int) -> dict[str, Any]:
        jobs = await self._service.history(PLATFORM, user, count)
        if not jobs:
            return messages.ephemeral(HISTORY_EMPTY)
        lines = history_lines(jobs, self._service.catalog, _permalink)
        body = "\n".join(messages.escape(line) for line in lines)
        buttons = [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": f"Re-run {number}"},
                "action_id": messages.action_id(RERUN, job.id),
                "value": job.id,
            }
            for number, job in enumerate(jobs[:MAX_RERUN_BUTTONS], 1)
        ]
        return {
            "response_type": "ephemeral",
            "text": body,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}},
                {"type": "actions", "block_id": "imagine_history", "elements": buttons},
            ],
        }

    async def _prefer(self, user: str, rest: str) -> str:
        if rest.strip() == "help":
            return PREFER_HELP
        command = parse_prefer(rest)
        if isinstance(command, ResetPreferences):
            await self._service.reset_preferences(PLATFORM, user)
            return PREFERENCES_RESET
        if isinstance(command, SetPreference):
            prefs = await self._service.prefer(PLATFORM, user, {command.name: command.value})
        else:
            prefs = await self._service.preferences(PLATFORM, user)
        return preferences_text(prefs)
