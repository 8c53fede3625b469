"""App Home: the Home tab shows the user's allowance, their recent images and, to admins, the
workspace's settings."""

from __future__ import annotations

import logging

from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import messages
from adapters.slack.admin import AdminCommands, AdminGate
from adapters.slack.delivery import PLATFORM, SLACK_ERRORS
from adapters.slack.payloads import AppHomeOpened, EventCallback, text
from adapters.slack.tasks import BackgroundWork
from bot.domain.catalog import Catalog
from bot.jobs.service import ImagineService
from bot.text import replies
from bot.text.personal import history_lines

log = logging.getLogger("adapters.slack.adapter")

# How many of the user's recent images the Home tab lists.
HOME_HISTORY = 5


class AppHome:
    def __init__(
        self,
        service: ImagineService,
        catalog: Catalog,
        client: AsyncWebClient,
        admins: AdminGate,
        admin_commands: AdminCommands,
        work: BackgroundWork,
    ) -> None:
        self._service = service
        self._catalog = catalog
        self._client = client
        self._admins = admins
        self._admin_commands = admin_commands
        self._work = work

    def register(self, bolt: AsyncApp) -> None:
        bolt.event("app_home_opened")(self.on_opened)

    async def on_opened(self, body: EventCallback, event: AppHomeOpened) -> None:
        if event.get("tab", "home") != "home":
            return
        team = text(body.get("team_id"))
        user = text(event.get("user"))
        self._work.spawn(self.publish(team, user), "home")

    async def publish(self, team: str, user: str) -> None:
        actor = await self._admins.actor(user)
        report = await self._service.quota(team, user, is_platform_admin=actor.is_platform_admin)
        admin = await self._service.is_admin(team, actor)
        recent = await self._service.history(PLATFORM, user, HOME_HISTORY)
        view = messages.home_view(
            quota_lines=replies.quota_lines(report) or [replies.NO_LIMITS],
            settings_lines=await self._admin_commands.settings_lines(team) if admin else None,
            catalog=self._catalog,
            history_lines=history_lines(recent, self._catalog, lambda _: None),
        )
        try:
            await self._client.views_publish(user_id=user, view=view)
        except (SlackApiError, *SLACK_ERRORS) as exc:
            log.warning("Slack: could not publish App Home: %s", type(exc).__name__)
