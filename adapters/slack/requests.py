"""The core request a Slack command, button, modal or message makes: what to make (the parsed
flags), who asks, where, and how to answer (the response URL, when Slack gave one)."""

from __future__ import annotations

from adapters.slack.delivery import PLATFORM
from bot.domain.models import ImagineRequest, ReplyTarget
from bot.text.flags import ImagineArgs
from bot.text.request import build_request


def slack_request(
    args: ImagineArgs,
    *,
    team: str,
    channel: str,
    user: str,
    thread: str | None = None,
    response_url: str | None = None,
    dedupe: str | None = None,
) -> ImagineRequest:
    """``dedupe``: what makes one job of Slack's retries (a trigger id, a message's ts)."""
    data = {"team_id": team, "user_id": user}
    if response_url is not None:
        data["response_url"] = response_url
    reply = ReplyTarget(platform=PLATFORM, channel_id=channel, thread_id=thread, data=data)
    return build_request(
        args,
        platform=PLATFORM,
        community_id=team,
        channel_id=channel,
        user_id=user,
        reply=reply,
        dedupe_key=dedupe,
    )
