"""``@Imagine a red fox --ar 16:9``: a mention in a channel or a thread becomes an /imagine whose
image goes into that message's thread (a top-level mention starts one).

Same flags, limits, safety and word list as the slash command. Slack retries an event it thinks
was not received; the event id is the job's dedupe key, so a retry never makes a second job.
"""

from __future__ import annotations

import dataclasses
import re

from slack_bolt.app.async_app import AsyncApp

from adapters.slack import messages
from adapters.slack.delivery import PLATFORM
from adapters.slack.handlers import CommandHandlers
from adapters.slack.payloads import AppMention, EventCallback, SlackFile, text
from adapters.slack.tasks import BackgroundWork
from bot.domain.errors import InvalidRequest
from bot.domain.models import ImagineRequest, ReplyTarget
from bot.jobs.service import ImagineService
from bot.text.flags import ImagineArgs, parse_imagine
from bot.text.request import build_request

# The leading mention of the bot: <@U0123ABC> (or <@U0123ABC|name>).
_LEADING_MENTION = re.compile(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>\s*")


def prompt_text(mention_text: str) -> str:
    """The text after the mention of the bot that starts the message."""
    return _LEADING_MENTION.sub("", mention_text, count=1).strip()


def image_files(files: list[SlackFile]) -> tuple[str, ...]:
    """The images shared with the message, as input image references."""
    found: list[str] = []
    for file in files:
        url = text(file.get("url_private_download")) or text(file.get("url_private"))
        if url and text(file.get("mimetype")).startswith("image/"):
            found.append(url)
    return tuple(found)


class MentionHandlers:
    def __init__(
        self, service: ImagineService, commands: CommandHandlers, work: BackgroundWork
    ) -> None:
        self._service = service
        self._commands = commands
        self._work = work

    def register(self, bolt: AsyncApp) -> None:
        bolt.event("app_mention")(self.on_mention)

    async def on_mention(self, body: EventCallback, event: AppMention) -> None:
        # Bolt acknowledges events itself; the work goes to the background at once.
        self._work.spawn(self._mention(body, event), "mention")

    async def _mention(self, body: EventCallback, event: AppMention) -> None:
        team = text(body.get("team_id")) or text(event.get("team"))
        user = text(event.get("user"))
        channel = text(event.get("channel"))
        # The image goes into the thread: the mention's own, or the one it starts.
        thread = text(event.get("thread_ts")) or text(event.get("ts")) or None
        try:
            args = parse_imagine(prompt_text(text(event.get("text"))))
        except InvalidRequest as exc:
            await self._commands.tell(
                team, "", channel, user, messages.refusal(exc.user_message), thread_ts=thread
            )
            return
        if args.help or not args.prompt:
            await self._commands.tell(
                team, "", channel, user, messages.ephemeral(messages.HELP), thread_ts=thread
            )
            return
        shared = image_files(event.get("files") or [])
        if shared:
            args = dataclasses.replace(args, images=args.images + shared)
        event_id = text(body.get("event_id")) or f"{channel}:{text(event.get('ts'))}"
        request = _mention_request(args, team, channel, thread, user, f"event:{event_id}")
        await self._commands.imagine(request, args)


def _mention_request(
    args: ImagineArgs, team: str, channel: str, thread: str | None, user: str, dedupe: str
) -> ImagineRequest:
    reply = ReplyTarget(
        platform=PLATFORM,
        channel_id=channel,
        thread_id=thread,
        data={"team_id": team, "user_id": user, "response_url": ""},
    )
    return build_request(
        args,
        platform=PLATFORM,
        community_id=team,
        channel_id=channel,
        user_id=user,
        reply=reply,
        dedupe_key=dedupe,
    )
