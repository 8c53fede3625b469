"""The same setting changed through the console, Slack and Discord: the same stored value, the same
audit line and the same answer, because all three read it with one grammar and one set of checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.domain.community import AuditEntry
from bot.domain.models import CommunitySettings, Limits
from bot.runtime.app import App
from tests.discord.conftest import Bot, bot, fake_discord  # noqa: F401 (fixtures)
from tests.discord.test_admin import admin_command, answer
from tests.fakes.discord import GUILD_ID, user_payload
from tests.scenarios.test_console_settings import console
from tests.slack.conftest import TEAM, SlackBot, fake_slack, slack_bot  # noqa: F401 (fixtures)
from tests.slack.test_admin import _admin as slack_admin

# Each platform's ids, as its users would give them (Slack as escaped mentions).
IDS = {
    "console": {"user": "U9", "user_ref": "U9", "channel": "C5", "channel_ref": "C5", "role": "R1"},
    "slack": {
        "user": "U9",
        "user_ref": "<@U9|bob>",
        "channel": "C5",
        "channel_ref": "<#C5|art>",
        "role": "<!subteam^S1|mods>",
    },
    "discord": {
        "user": "1400000000000000099",
        "channel": "1300000000000000033",
        "role": "1500000000000000055",
    },
}


@dataclass(frozen=True)
class Case:
    text: str  # console and Slack, ids as {user_ref} / {channel_ref} / {role}
    discord: tuple[list[str], list[dict[str, Any]]]  # subcommand path and options
    field: str
    value: Any  # ids as {user} / {channel} / {role}
    action: str
    detail: str
    # Platforms that refuse the setting, with a fragment of the message they give.
    refused_on: dict[str, str] = field(default_factory=dict)


def _opt(name: str, value: Any, kind: int = 3) -> dict[str, Any]:
    return {"name": name, "type": kind, "value": value}


CASES = {
    "safety": Case(
        "safety strict",
        (["safety"], [_opt("level", "strict")]),
        "safety_level",
        "strict",
        "safety_level",
        "safety level set to strict",
    ),
    "limits": Case(
        "limits rate=2/minute daily=3 in-flight=1",
        (["limits"], [_opt("rate", "2/minute"), _opt("daily", "3"), _opt("in-flight", "1")]),
        "user_limits",
        Limits(rate=2, period=60.0, daily=3, max_in_flight=1),
        "user_limits",
        "limits for every user: rate 2/minute, daily 3, in progress 1",
    ),
    "server-daily": Case(
        "server-daily 40",
        (["server-daily"], [_opt("images", "40")]),
        "community_daily",
        40,
        "community_daily",
        "server daily quota set to 40 images",
    ),
    "budget": Case(
        "budget 2.50",
        (["budget"], [_opt("dollars", "2.50")]),
        "community_budget_usd",
        2.5,
        "budget",
        "server daily budget set to $2.50",
    ),
    "model": Case(
        "model max",
        (["model"], [_opt("model", "max")]),
        "default_variant",
        "max",
        "default_model",
        "default model set to max",
    ),
    "input-images": Case(
        "input-images off",
        (["input-images"], [_opt("value", "off")]),
        "allow_input_images",
        False,
        "input_images",
        "input images off",
    ),
    "cache": Case(
        "cache off",
        (["cache"], [_opt("value", "off")]),
        "allow_cache",
        False,
        "cache",
        "cache off",
    ),
    "admins-exempt": Case(
        "admins-exempt off",
        (["admins-exempt"], [_opt("value", "off")]),
        "admins_exempt",
        False,
        "admins_exempt",
        "admins follow user limits",
    ),
    "private": Case(
        "private off",
        (["private"], [_opt("value", "off")]),
        "allow_private",
        False,
        "private",
        "private images off",
    ),
    "blocked": Case(
        "blocked add dragon fire",
        (["blocked", "add"], [_opt("term", "dragon fire")]),
        "blocked_terms",
        ("dragon fire",),
        "block_term",
        "blocked term added: 'dragon fire'",
    ),
    "channels": Case(
        "channels allow {channel_ref}",
        (["channels", "allow"], [_opt("channel", "{channel}", 7)]),
        "allowed_channels",
        ("{channel}",),
        "allow_channel",
        "channel {channel} allowed",
    ),
    "ban": Case(
        "ban {user_ref}",
        (["ban"], [_opt("user", "{user}", 6)]),
        "banned_users",
        ("{user}",),
        "ban",
        "user {user} banned from /imagine",
    ),
    "admin-users": Case(
        "admin-users add {user_ref}",
        (["admin-users", "add"], [_opt("user", "{user}", 6)]),
        "admin_users",
        ("{user}",),
        "add_admin_user",
        "user {user} made bot admin",
    ),
    # Slack shows the bot no roles: there it is refused with a message naming the alternative.
    "admin-roles": Case(
        "admin-roles add {role}",
        (["admin-roles", "add"], [_opt("role", "{role}", 8)]),
        "admin_roles",
        ("{role}",),
        "add_admin_role",
        "role {role} made bot admin",
        refused_on={"slack": "no roles the bot can see"},
    ),
}


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, tuple):
        return tuple(_fill(v, ids) for v in value)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@dataclass
class Platform:
    """One adapter under test: send a settings command as its admin, read what it stored."""

    name: str
    app: App
    community: str
    send: Callable[[Case], Awaitable[str]]

    async def stored(self) -> tuple[CommunitySettings, AuditEntry]:
        settings = await self.app.service.get_settings(self.community)
        [entry] = await self.app.store.list_audit(self.community, 1)
        return settings, entry


def _console(app: App) -> Platform:
    adapter, lines = console(app)

    async def send(case: Case) -> str:
        lines.clear()
        await adapter.handle("/settings " + _fill(case.text, IDS["console"]))
        return "\n".join(lines)

    return Platform("console", app, "console", send)


def _slack(slack: SlackBot) -> Platform:
    slack.fake.users["UADMIN"] = {"id": "UADMIN", "is_admin": True, "is_owner": False}

    async def send(case: Case) -> str:
        return await slack_admin(slack, _fill(case.text, IDS["slack"]), user="UADMIN")

    return Platform("slack", slack.app, TEAM, send)


def _discord(discord_bot: Bot) -> Platform:
    ids = IDS["discord"]
    role = {"id": ids["role"], "name": "mods", "color": 0, "hoist": False, "position": 1}
    role |= {"permissions": "0", "managed": False, "mentionable": False, "flags": 0}
    channel = {"id": ids["channel"], "type": 0, "name": "art", "permissions": "0"}
    resolved = {
        "users": {ids["user"]: user_payload(ids["user"])},
        "channels": {ids["channel"]: {**channel, "parent_id": None}},
        "roles": {ids["role"]: role},
    }

    async def send(case: Case) -> str:
        path, options = case.discord
        payload = admin_command(discord_bot, path, _fill(options, ids))
        payload["data"]["resolved"] = resolved
        return await answer(discord_bot, discord_bot.feed(payload))

    return Platform("discord", discord_bot.app, GUILD_ID, send)


@pytest.fixture(params=["console", "slack", "discord"])
def platform(request: pytest.FixtureRequest) -> Platform:
    if request.param == "console":
        return _console(request.getfixturevalue("app"))
    if request.param == "slack":
        return _slack(request.getfixturevalue("slack_bot"))
    return _discord(request.getfixturevalue("bot"))


@pytest.mark.parametrize("setting", list(CASES))
async def test_a_setting_is_stored_and_audited_alike_on_every_platform(
    platform: Platform, setting: str
) -> None:
    case = CASES[setting]
    ids = IDS[platform.name]
    reply = await platform.send(case)
    if platform.name in case.refused_on:
        assert case.refused_on[platform.name] in reply and "admin-users add" in reply
        settings = await platform.app.service.get_settings(platform.community)
        assert getattr(settings, case.field) == ()
        assert await platform.app.store.list_audit(platform.community, 1) == []
        return
    detail = _fill(case.detail, ids)
    assert reply == f"Done: {detail}."
    settings, entry = await platform.stored()
    assert getattr(settings, case.field) == _fill(case.value, ids)
    assert (entry.kind, entry.action, entry.detail) == ("change", case.action, detail)
