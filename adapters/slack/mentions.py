"""A message in Slack becomes an /imagine: ``@Imagine a red fox --ar 16:9`` in a channel or thread,
the "Imagine this" message shortcut on any message (its text, its images as references; the image
goes into that message's thread, a top-level message starts one), or a message to the bot in its
Messages tab (answered in that DM).

Same flags, limits, safety and word list as the slash command. Slack retries an event it thinks
was not received; the event id is the job's dedupe key, so a retry never makes a second job (a
shortcut's trigger id plays that part).
"""

from __future__ import annotations

import dataclasses
import logging
import re

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError

from adapters.slack import messages
from adapters.slack.clients import NotInstalled, SlackClients
from adapters.slack.delivery import SLACK_ERRORS
from adapters.slack.handlers import CommandHandlers
from adapters.slack.payloads import (
    AppMention,
    DirectMessage,
    EventCallback,
    MessageShortcut,
    SlackFile,
    team_of,
    text,
)
from adapters.slack.personal import subcommand
from adapters.slack.requests import slack_request
from adapters.slack.tasks import BackgroundWork
from bot.domain.errors import InvalidRequest
from bot.jobs.service import ImagineService
from bot.text.flags import ImagineArgs, parse_imagine

log = logging.getLogger("adapters.slack.adapter")

# The message shortcut's callback id (slack-manifest.yml).
SHORTCUT_CALLBACK = "imagine_this"
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
        self,
        service: ImagineService,
        clients: SlackClients,
        commands: CommandHandlers,
        work: BackgroundWork,
    ) -> None:
        self._service = service
        self._clients = clients
        self._commands = commands
        self._work = work

    def register(self, bolt: AsyncApp) -> None:
        bolt.event("app_mention")(self.on_mention)
        bolt.shortcut(SHORTCUT_CALLBACK)(self.on_shortcut)
        bolt.event("message")(self.on_direct_message)

    async def on_mention(self, body: EventCallback, event: AppMention) -> None:
        # Bolt acknowledges events itself; the work goes to the background at once.
        self._work.spawn(self._mention(body, event), "mention")

    async def on_shortcut(self, ack: AsyncAck, shortcut: MessageShortcut) -> None:
        await ack()
        self._work.spawn(self._shortcut(shortcut), "shortcut")

    async def on_direct_message(self, body: EventCallback, event: DirectMessage) -> None:
        """A message in the bot's DM is an /imagine there (Bolt acknowledges events itself).
        Edits, the bot's own messages and other channels' messages are not commands."""
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        user = text(event.get("user"))
        channel = text(event.get("channel"))
        words = text(event.get("text")).strip()
        if not user or not channel or not words:
            return
        team = text(body.get("team_id"))
        self._work.spawn(self._direct_message(team, user, channel, event), "im")

    async def _direct_message(
        self, team: str, user: str, channel: str, event: DirectMessage
    ) -> None:
        words = text(event.get("text")).strip()
        sub = subcommand(words)
        try:
            if sub is not None:
                reply = await self._commands.personal.run(user, *sub)
                await self._say(team, channel, reply["text"])
                return
            args = parse_imagine(words)
        except InvalidRequest as exc:
            await self._say(team, channel, f":warning: {exc.user_message}")
            return
        if args.help or not args.prompt:
            await self._say(team, channel, messages.HELP)
            return
        # One job per message, however often Slack retries the event.
        dedupe = f"im:{channel}:{text(event.get('ts'))}"
        request = slack_request(args, team=team, channel=channel, user=user, dedupe=dedupe)
        await self._commands.imagine(request, args)

    async def _say(self, team: str, channel: str, message: str) -> None:
        try:
            client = await self._clients.for_team(team)
            await client.chat_postMessage(channel=channel, text=message)
        except (NotInstalled, SlackApiError, *SLACK_ERRORS) as exc:
            log.warning("Slack: could not answer in a DM: %s", type(exc).__name__)

    async def _mention(self, body: EventCallback, event: AppMention) -> None:
        team = text(body.get("team_id")) or text(event.get("team"))
        event_id = text(body.get("event_id")) or f"{text(event.get('channel'))}:{event.get('ts')}"
        await self._imagine_message(
            team=team,
            user=text(event.get("user")),
            channel=text(event.get("channel")),
            # The image goes into the thread: the mention's own, or the one it starts.
            thread=text(event.get("thread_ts")) or text(event.get("ts")) or None,
            words=prompt_text(text(event.get("text"))),
            files=event.get("files") or [],
            response_url="",
            dedupe=f"event:{event_id}",
        )

    async def _shortcut(self, shortcut: MessageShortcut) -> None:
        message = shortcut.get("message") or {}
        await self._imagine_message(
            team=team_of(shortcut),
            user=text((shortcut.get("user") or {}).get("id")),
            channel=text((shortcut.get("channel") or {}).get("id")),
            thread=text(message.get("thread_ts")) or text(message.get("ts")) or None,
            words=prompt_text(text(message.get("text"))),
            files=message.get("files") or [],
            response_url=text(shortcut.get("response_url")),
            dedupe=text(shortcut.get("trigger_id")) or None,
        )

    async def _imagine_message(
        self,
        *,
        team: str,
        user: str,
        channel: str,
        thread: str | None,
        words: str,
        files: list[SlackFile],
        response_url: str,
        dedupe: str | None,
    ) -> None:
        """The message's words and images as an /imagine, answered in its thread."""

        async def say(reply: dict[str, str]) -> None:
            await self._commands.tell(team, response_url, channel, user, reply, thread_ts=thread)

        shared = image_files(files)
        try:
            args = parse_imagine(words) if words or not shared else ImagineArgs("")
        except InvalidRequest as exc:
            await say(messages.refusal(exc.user_message))
            return
        if args.help or not args.prompt:
            await say(messages.ephemeral(messages.HELP))
            return
        args = dataclasses.replace(args, images=args.images + shared)
        request = slack_request(
            args,
            team=team,
            channel=channel,
            user=user,
            thread=thread,
            response_url=response_url,
            dedupe=dedupe,
        )
        await self._commands.imagine(request, args)
