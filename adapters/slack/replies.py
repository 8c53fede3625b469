"""Ephemeral replies to one user in Slack: the request's response_url, else chat.postEphemeral."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError

from adapters.slack.clients import NotInstalled, SlackClients
from adapters.slack.delivery import SLACK_ERRORS

log = logging.getLogger("adapters.slack.adapter")

Message = dict[str, Any]


class Replies:
    """Ephemeral replies to one user: through the request's response_url, else chat.postEphemeral
    with the token of the user's workspace."""

    def __init__(self, session: aiohttp.ClientSession, clients: SlackClients) -> None:
        self._session = session
        self._clients = clients

    async def tell(
        self,
        team: str,
        response_url: str,
        channel: str,
        user: str,
        message: Message,
        *,
        thread_ts: str | None = None,
    ) -> None:
        if response_url.startswith(("https://", "http://")):
            try:
                async with self._session.post(response_url, json=message) as response:
                    if response.status < 300:
                        return
                    log.info("Slack: response_url answered %s", response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("Slack: response_url failed: %s", type(exc).__name__)
        if not channel or not user:
            return
        try:
            client = await self._clients.for_team(team)
            await client.chat_postEphemeral(
                channel=channel, user=user, text=message["text"], thread_ts=thread_ts
            )
        except (NotInstalled, SlackApiError, *SLACK_ERRORS) as exc:
            log.warning("Slack: could not reply to %s: %s", user, type(exc).__name__)
