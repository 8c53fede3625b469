"""Who administers a Slack workspace for the bot: workspace admins and owners (``users.info``) and
the user ids the workspace configured as bot admins."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.delivery import SLACK_ERRORS
from bot.service import ImagineService

log = logging.getLogger(__name__)

# Slack roles change rarely; a short memory spares one users.info call per command.
ADMIN_CACHE_SECONDS = 300.0


class AdminGate:
    def __init__(
        self,
        client: AsyncWebClient,
        service: ImagineService,
        monotonic: Callable[[], float],
    ) -> None:
        self._client = client
        self._service = service
        self._monotonic = monotonic
        self._known: dict[str, tuple[float, bool]] = {}
        self._asking: dict[str, asyncio.Future[bool]] = {}

    async def is_workspace_admin(self, user_id: str) -> bool:
        """Slack's own word: the user is an admin or owner of the workspace (cached, one
        ``users.info`` in flight per user). False when Slack cannot be asked."""
        if not user_id:
            return False
        known = self._known.get(user_id)
        if known is not None and self._monotonic() - known[0] < ADMIN_CACHE_SECONDS:
            return known[1]
        pending = self._asking.get(user_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._asking[user_id] = future
        answer = False
        try:
            response = await self._client.users_info(user=user_id)
            user = response.get("user") or {}
            answer = bool(
                user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")
            )
            self._known[user_id] = (self._monotonic(), answer)
        except (SlackApiError, *SLACK_ERRORS) as exc:
            log.warning("Slack: users.info failed: %s", type(exc).__name__)
        finally:
            future.set_result(answer)
            self._asking.pop(user_id, None)
        return answer

    async def is_admin(self, team_id: str, user_id: str) -> bool:
        """A workspace admin or owner, or a user id the workspace made a bot admin."""
        settings = await self._service.settings_for(team_id)
        if user_id in settings.admin_users:
            return True
        return await self.is_workspace_admin(user_id)
