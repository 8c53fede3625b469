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
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import messages
from adapters.slack.delivery import SLACK_ERRORS
from bot.domain import community as c
from bot.domain.catalog import Catalog
from bot.domain.errors import InvalidRequest, RequestRejected
from bot.domain.limits import UNLIMITED, parse_rate
from bot.domain.models import Limits
from bot.jobs.service import ImagineService

log = logging.getLogger(__name__)

# Slack roles change rarely; a short memory spares one users.info call per command.
ADMIN_CACHE_SECONDS = 300.0
AUDIT_LINES = 15
# Slack escapes mentions in command text as <@U123|name> and <#C123|name> (should_escape: true).
_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^([UW][A-Z0-9]+)$")
_CHANNEL = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>$|^([CGD][A-Z0-9]+)$")
_ON = {"on": True, "yes": True, "true": True, "off": False, "no": False, "false": False}

ADMIN_HELP = """*/imagine-admin* (workspace admins and owners, and bot admins):
`show` the settings · `audit [n]` the newest audit entries
`safety strict|standard|relaxed|adult|0-6` · `channel-safety #channel <level>|clear`
`channels allow #channel` · `channels disallow #channel` · `channels all`
`terms add <term>` · `terms remove <term>` · `terms list`
`ban @user` · `unban @user`
`limits rate 5/minute burst 2 daily 50 in-flight 3` (any of them; `unlimited` lifts one) · `limits reset`
`workspace-daily <images>|unlimited|default` · `budget <usd>|unlimited|default`
`admins-exempt on|off` · `model <name>|default` · `images on|off` · `cache on|off`
`admins add @user` · `admins remove @user` (workspace admins and owners only)"""


class AdminGate:
    """Slack's word on who administers the workspace, remembered for a few minutes."""

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
        """The user is an admin or owner of the workspace (one ``users.info`` in flight per user).
        False when Slack cannot be asked."""
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

    async def actor(self, user_id: str) -> c.Actor:
        return c.Actor(user_id=user_id, is_platform_admin=await self.is_workspace_admin(user_id))

    async def is_admin(self, team_id: str, user_id: str) -> bool:
        """A workspace admin or owner, or a user id the workspace made a bot admin."""
        return await self._service.is_admin(team_id, await self.actor(user_id))


def _user_id(word: str) -> str:
    match = _USER.match(word)
    if not match:
        raise InvalidRequest(f"{word!r} is not a user: mention them, like @someone.")
    return match.group(1) or match.group(2)


def _channel_id(word: str) -> str:
    match = _CHANNEL.match(word)
    if not match:
        raise InvalidRequest(f"{word!r} is not a channel: mention it, like #general.")
    return match.group(1) or match.group(2)


def _switch(word: str) -> bool:
    if word.lower() not in _ON:
        raise InvalidRequest(f"Say on or off, not {word!r}.")
    return _ON[word.lower()]


def _count(word: str, what: str) -> int:
    if word.lower() == "unlimited":
        return UNLIMITED
    if not word.isdigit():
        raise InvalidRequest(f"{what} is a whole number or unlimited, not {word!r}.")
    return int(word)


def parse_limits(words: list[str]) -> Limits:
    """``rate 5/minute burst 2 daily 50 in-flight 3`` in any order and subset."""
    if not words or len(words) % 2:
        raise InvalidRequest("Give limits as pairs, like: limits rate 5/minute daily 50.")
    values: dict[str, int | float | None] = {}
    for name, value in zip(words[::2], words[1::2], strict=True):
        name = name.lower()
        if name == "rate":
            if value.lower() == "unlimited":
                values.update(rate=UNLIMITED)
                continue
            try:
                parsed = parse_rate(value)
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from None
            if parsed is None:
                values.update(rate=UNLIMITED)
            else:
                values.update(rate=parsed[0], period=parsed[1])
        elif name == "burst":
            values["burst"] = _count(value, "The burst")
        elif name == "daily":
            values["daily"] = _count(value, "The daily quota")
        elif name in ("in-flight", "inflight", "max-in-flight"):
            values["max_in_flight"] = _count(value, "The in-progress cap")
        else:
            raise InvalidRequest(f"Unknown limit {name!r}: use rate, burst, daily or in-flight.")
    return Limits(**values)  # type: ignore[arg-type]


def parse_change(text: str, catalog: Catalog) -> c.SettingsChange:
    """One ``/imagine-admin`` line as a typed settings change; raises InvalidRequest."""
    words = text.split()
    verb = words[0].lower() if words else ""
    rest = words[1:]
    sub = rest[0].lower() if rest else ""
    arg = " ".join(rest[1:])

    def need(count: int) -> None:
        if len(rest) < count:
            raise InvalidRequest(f"`{verb}` needs more: see `/imagine-admin help`.")

    if verb == "safety":
        need(1)
        return c.SetSafetyLevel(rest[0])
    if verb == "channel-safety":
        need(2)
        level = None if rest[1].lower() in ("clear", "default") else rest[1]
        return c.SetChannelSafety(_channel_id(rest[0]), level)
    if verb == "channels":
        if sub == "all":
            return c.AllowAllChannels()
        need(2)
        if sub == "allow":
            return c.AllowChannel(_channel_id(rest[1]))
        if sub == "disallow":
            return c.DisallowChannel(_channel_id(rest[1]))
    if verb == "terms" and sub in ("add", "remove"):
        if not arg.strip():
            raise InvalidRequest("Give the term, like: terms add some words.")
        return c.BlockTerm(arg) if sub == "add" else c.UnblockTerm(arg)
    if verb in ("ban", "unban"):
        need(1)
        user = _user_id(rest[0])
        return c.BanUser(user) if verb == "ban" else c.UnbanUser(user)
    if verb == "limits":
        if sub == "reset":
            return c.ClearUserLimits()
        return c.SetUserLimits(parse_limits(rest))
    if verb in ("workspace-daily", "server-daily"):
        need(1)
        return c.SetCommunityDaily(None if sub == "default" else _count(rest[0], "The quota"))
    if verb == "budget":
        need(1)
        if sub in ("default", "unlimited"):
            return c.SetBudget(None if sub == "default" else UNLIMITED)
        try:
            return c.SetBudget(float(rest[0].lstrip("$")))
        except ValueError:
            raise InvalidRequest(
                f"The budget is US dollars, like 5 or 2.50, not {rest[0]!r}."
            ) from None
    if verb == "admins-exempt":
        need(1)
        return c.SetAdminsExempt(_switch(rest[0]))
    if verb == "model":
        need(1)
        return c.SetDefaultModel(None if sub == "default" else catalog.resolve(rest[0]).name)
    if verb == "images":
        need(1)
        return c.SetInputImages(_switch(rest[0]))
    if verb == "cache":
        need(1)
        return c.SetCache(_switch(rest[0]))
    if verb == "admins" and sub in ("add", "remove"):
        need(2)
        user = _user_id(rest[1])
        return c.AddAdminUser(user) if sub == "add" else c.RemoveAdminUser(user)
    raise InvalidRequest(f"Unknown setting {text.strip()!r}.\n{ADMIN_HELP}")


class AdminCommands:
    def __init__(self, service: ImagineService, gate: AdminGate) -> None:
        self._service = service
        self._gate = gate

    async def run(self, team: str, user: str, text: str) -> str:
        """Answer one ``/imagine-admin`` command (as mrkdwn for an ephemeral reply)."""
        words = text.split()
        verb = words[0].lower() if words else "show"
        actor = await self._gate.actor(user)
        try:
            if verb == "help":
                return ADMIN_HELP
            if verb == "show":
                await self._service.require_admin(team, actor, "show_settings")
                settings = await self._service.get_settings(team)
                return "*Workspace settings*\n" + "\n".join(
                    messages.escape(line) for line in c.describe_settings(settings)
                )
            if verb == "audit":
                limit = int(words[1]) if len(words) > 1 and words[1].isdigit() else AUDIT_LINES
                entries = await self._service.audit_log(team, actor, limit)
                if not entries:
                    return "The audit log is empty."
                return "*Audit log* (newest first)\n" + "\n".join(
                    f"<!date^{int(e.at)}^{{date_short_pretty}} {{time}}|{int(e.at)}> <@{e.actor_id}> "
                    f"{e.kind} {e.action}: {messages.escape(e.detail)}"
                    for e in entries
                )
            if verb == "terms" and (len(words) < 2 or words[1].lower() == "list"):
                terms = await self._service.blocked_terms(team, actor)
                listed = ", ".join(f"`{messages.escape(t)}`" for t in terms)
                return f"Blocked terms ({len(terms)}): {listed or 'none'}"
            change = parse_change(text, self._service.catalog)
            changed = await self._service.update_settings(team, actor, change)
            return messages.escape(changed.message)
        except RequestRejected as exc:
            return f":no_entry_sign: {messages.escape(exc.user_message)}"
