"""Who administers a Slack workspace for the bot, and ``/imagine-admin``: the workspace's settings.

Admins are workspace admins and owners (Slack's ``users.info``) and the user ids the workspace made
bot admins. The service re-checks every permission itself and audits refused attempts; this module
only turns Slack text into the service's typed changes and their answers into text.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

from slack_sdk.errors import SlackApiError

from adapters.slack import messages
from adapters.slack.clients import NotInstalled, SlackClients
from adapters.slack.delivery import SLACK_ERRORS
from bot.domain import community as c
from bot.domain.errors import InvalidRequest, RequestRejected
from bot.domain.limits import LimitDefaults
from bot.jobs.service import ImagineService
from bot.text import replies
from bot.text.settings import (
    ListBlockedTerms,
    SettingsCommand,
    ShowAudit,
    ShowSettings,
    ShowSettingsHelp,
    parse_settings_command,
    settings_help,
)

log = logging.getLogger(__name__)

# Slack roles change rarely; a short memory spares one users.info call per command.
ADMIN_CACHE_SECONDS = 300.0
# Slack escapes mentions in command text as <@U123|name> and <#C123|name> (should_escape: true).
_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^([UW][A-Z0-9]+)$")
_CHANNEL = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>$|^([CGD][A-Z0-9]+)$")

ADMIN_HELP = (
    "*/imagine-admin* (workspace admins and owners, and bot admins):\n```"
    + settings_help("/imagine-admin")
    + "```"
)


class AdminGate:
    """Slack's word on who administers the workspace, remembered for a few minutes."""

    def __init__(
        self,
        clients: SlackClients,
        service: ImagineService,
        monotonic: Callable[[], float],
    ) -> None:
        self._clients = clients
        self._service = service
        self._monotonic = monotonic
        self._known: dict[tuple[str, str], tuple[float, bool]] = {}
        self._asking: dict[tuple[str, str], asyncio.Future[bool]] = {}

    async def is_workspace_admin(self, team_id: str, user_id: str) -> bool:
        """The user is an admin or owner of the workspace (one ``users.info`` in flight per user).
        False when Slack cannot be asked."""
        if not user_id:
            return False
        key = (team_id, user_id)
        known = self._known.get(key)
        if known is not None and self._monotonic() - known[0] < ADMIN_CACHE_SECONDS:
            return known[1]
        pending = self._asking.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._asking[key] = future
        answer = False
        try:
            client = await self._clients.for_team(team_id)
            response = await client.users_info(user=user_id)
            user = response.get("user") or {}
            answer = bool(
                user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")
            )
            self._known[key] = (self._monotonic(), answer)
        except (NotInstalled, SlackApiError, *SLACK_ERRORS) as exc:
            log.warning("Slack: users.info failed: %s", type(exc).__name__)
        finally:
            future.set_result(answer)
            self._asking.pop(key, None)
        return answer

    async def actor(self, team_id: str, user_id: str) -> c.Actor:
        admin = await self.is_workspace_admin(team_id, user_id)
        return c.Actor(user_id=user_id, is_platform_admin=admin)

    async def is_admin(self, team_id: str, user_id: str) -> bool:
        """A workspace admin or owner, or a user id the workspace made a bot admin."""
        return await self._service.is_admin(team_id, await self.actor(team_id, user_id))


class SlackMentions:
    """Users and channels as Slack writes them in command text; Slack has no roles the bot sees."""

    def user(self, word: str) -> str:
        match = _USER.match(word)
        if not match:
            raise InvalidRequest(f"{word!r} is not a user: mention them, like @someone.")
        return match.group(1) or match.group(2)

    def channel(self, word: str) -> str:
        match = _CHANNEL.match(word)
        if not match:
            raise InvalidRequest(f"{word!r} is not a channel: mention it, like #general.")
        return match.group(1) or match.group(2)

    def role(self, word: str) -> str:
        raise InvalidRequest(
            "Slack workspaces have no roles the bot can see: name people instead, like "
            "`admin-users add @someone`."
        )


def parse_command(text: str) -> SettingsCommand:
    """One ``/imagine-admin`` line, read by the settings grammar every platform shares."""
    return parse_settings_command(text, SlackMentions())


class AdminCommands:
    def __init__(self, service: ImagineService, gate: AdminGate, defaults: LimitDefaults) -> None:
        self._service = service
        self._gate = gate
        self._defaults = defaults

    async def run(self, team: str, user: str, text: str) -> str:
        """Answer one ``/imagine-admin`` command (as mrkdwn for an ephemeral reply)."""
        actor = await self._gate.actor(team, user)
        service = self._service
        try:
            command = parse_command(text)
            if isinstance(command, ShowSettingsHelp):
                return ADMIN_HELP
            if isinstance(command, ShowSettings):
                await service.require_admin(team, actor, "show_settings")
                return "*Workspace settings*\n" + "\n".join(
                    messages.escape(line) for line in await self.settings_lines(team)
                )
            if isinstance(command, ShowAudit):
                entries = await service.audit_log(team, actor, command.limit)
                if not entries:
                    return replies.AUDIT_EMPTY
                return "*Audit log* (newest first)\n" + "\n".join(
                    f"<!date^{int(e.at)}^{{date_short_pretty}} {{time}}|{int(e.at)}> <@{e.actor_id}> "
                    f"{e.kind} {e.action}: {messages.escape(e.detail)}"
                    for e in entries
                )
            if isinstance(command, ListBlockedTerms):
                terms = await service.blocked_terms(team, actor)
                return messages.escape(replies.blocked_terms_text(terms, quote="`"))
            changed = await service.update_settings(team, actor, command)
            return messages.escape(changed.message)
        except RequestRejected as exc:
            return f":no_entry_sign: {messages.escape(exc.user_message)}"

    async def settings_lines(self, team: str) -> list[str]:
        settings = await self._service.get_settings(team)
        default_model = self._service.catalog.default_variant
        return replies.settings_lines(settings, self._defaults, default_model)
