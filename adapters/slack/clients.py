"""One Web API client per workspace: the bot token of the workspace a request or a job belongs to.

With ``SLACK_BOT_TOKEN`` alone every workspace gets that token (one workspace, as before); with
OAuth installs each workspace's token comes from the installation store, so a worker in any
process delivers with the token of the job's workspace.
"""

from __future__ import annotations

import logging
from typing import Protocol

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.models import Job

log = logging.getLogger(__name__)


class NotInstalled(Exception):
    """No bot token for this workspace: the app was never installed there, or was uninstalled."""

    def __init__(self, team_id: str) -> None:
        super().__init__(f"the app is not installed in workspace {team_id or '(unknown)'}")
        self.team_id = team_id


class TokenSource(Protocol):
    async def bot_token(self, enterprise_id: str | None, team_id: str | None) -> str | None:
        """The workspace's bot token, or None when there is none."""


class FixedToken:
    """Single-workspace mode: ``SLACK_BOT_TOKEN`` serves every request."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def bot_token(self, enterprise_id: str | None, team_id: str | None) -> str | None:
        return self._token


class SlackClients:
    """Web API clients sharing one aiohttp session, each carrying one workspace's token."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, tokens: TokenSource) -> None:
        self._session = session
        self._base_url = base_url
        self._tokens = tokens

    def client(self, token: str | None) -> AsyncWebClient:
        client = AsyncWebClient(
            token=token,
            base_url=self._base_url,
            session=self._session,
            timeout=30,
            logger=logging.getLogger("adapters.slack.web"),
        )
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
        return client

    async def token_for(self, team_id: str, enterprise_id: str | None = None) -> str:
        token = await self._tokens.bot_token(enterprise_id or None, team_id or None)
        if not token:
            raise NotInstalled(team_id)
        return token

    async def for_team(self, team_id: str, enterprise_id: str | None = None) -> AsyncWebClient:
        """The client of one workspace; NotInstalled when the app has no token there."""
        return self.client(await self.token_for(team_id, enterprise_id))

    async def for_job(self, job: Job) -> AsyncWebClient:
        data = job.request.reply.data
        team = str(data.get("team_id") or job.community_id)
        enterprise = data.get("enterprise_id")
        return await self.for_team(team, str(enterprise) if enterprise else None)
