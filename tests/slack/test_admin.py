"""/imagine-admin: workspace admins and owners (users.info) or bot admins; the rest refused and audited."""

from __future__ import annotations

import json

import pytest

from adapters.slack.admin import parse_command
from bot.domain import community as c
from bot.domain.community_settings import BANNED_USERS, BUDGET, CHANNELS, LIMITS, SERVER_DAILY
from bot.domain.errors import InvalidRequest
from bot.domain.limits import UNLIMITED
from tests.slack.conftest import TEAM, SlackBot


@pytest.fixture
def admins(slack_bot: SlackBot) -> SlackBot:
    slack_bot.fake.users["UADMIN"] = {"id": "UADMIN", "is_admin": True, "is_owner": False}
    slack_bot.fake.users["UOWNER"] = {"id": "UOWNER", "is_admin": False, "is_primary_owner": True}
    return slack_bot


async def _admin(slack_bot: SlackBot, text: str, user: str) -> str:
    key = f"admin-{len(slack_bot.fake.responses)}"
    reply = await slack_bot.command(text, user=user, command="/imagine-admin", response_key=key)
    assert reply.status == 200
    await slack_bot.settle()
    answers = [body for k, body in slack_bot.fake.responses if k == key]
    assert len(answers) == 1
    assert answers[0]["response_type"] == "ephemeral"
    return str(answers[0]["text"])


async def _audit(slack_bot: SlackBot) -> list[c.AuditEntry]:
    return await slack_bot.app.store.list_audit(TEAM, 50)


async def test_a_member_cannot_change_settings_and_the_attempt_is_audited(
    admins: SlackBot,
) -> None:
    answer = await _admin(admins, "ban <@U7|bob>", user="U2")
    assert "Only" in answer and "admins" in answer
    settings = await admins.app.service.get_settings(TEAM)
    assert "U7" not in settings.banned_users
    [entry] = await _audit(admins)
    assert (entry.kind, entry.action, entry.actor_id) == ("denied", "ban", "U2")
    assert [call.args["user"] for call in admins.fake.calls_to("users.info")] == ["U2"]


async def test_a_member_cannot_read_the_settings_or_the_audit_log(admins: SlackBot) -> None:
    for text in ("show", "audit", "terms list"):
        assert "Only" in await _admin(admins, text, user="U2")
    actions = sorted(e.action for e in await _audit(admins))
    assert actions == ["list_blocked_terms", "read_audit_log", "show_settings"]


async def test_a_workspace_admin_bans_and_the_ban_applies(admins: SlackBot) -> None:
    answer = await _admin(admins, "ban <@U7|bob>", user="UADMIN")
    assert answer.startswith("Done") and "U7" in answer
    await admins.command("a fox", user="U7", response_key="u7")
    await admins.settle()
    assert await admins.jobs() == []
    [(_, refusal)] = [r for r in admins.fake.responses if r[0] == "u7"]
    assert "not allowed" in refusal["text"]
    assert await _admin(admins, "unban U7", user="UOWNER") == "Done: user U7 unbanned."


async def test_settings_change_through_slack_mentions_and_are_shown(admins: SlackBot) -> None:
    for text in (
        "safety strict",
        "channels allow <#C5|art>",
        "terms add dragon fire",
        "limits rate 2/minute daily 3 in-flight 1",
        "workspace-daily 40",
        "budget 2.50",
        "model max",
        "images off",
        "cache off",
        "admins-exempt off",
        "channel-safety <#C5|art> relaxed",
    ):
        answer = await _admin(admins, text, user="UADMIN")
        assert answer.startswith("Done"), (text, answer)
    settings = await admins.app.service.get_settings(TEAM)
    assert settings.safety_level == "strict"
    assert settings.allowed_channels == ("C5",)
    assert settings.blocked_terms == ("dragon fire",)
    assert (settings.user_limits.rate, settings.user_limits.period) == (2, 60.0)
    assert (settings.user_limits.daily, settings.user_limits.max_in_flight) == (3, 1)
    assert settings.community_daily == 40 and settings.community_budget_usd == 2.5
    assert settings.default_variant == "max"
    assert not settings.allow_input_images and not settings.allow_cache
    assert settings.channel_safety == {"C5": "relaxed"}

    shown = await _admin(admins, "show", user="UADMIN")
    assert "Safety level: strict" in shown and "Allowed channels: C5" in shown
    assert "dragon" not in shown  # counted, not listed
    assert "dragon fire" in await _admin(admins, "terms list", user="UADMIN")
    audit = await _admin(admins, "audit 3", user="UADMIN")
    assert audit.count("<@UADMIN>") == 3 and "channel_safety" in audit


async def test_bot_admins_change_settings_but_only_workspace_admins_name_them(
    admins: SlackBot,
) -> None:
    assert (await _admin(admins, "admins add <@U3|carol>", user="UOWNER")).startswith("Done")
    assert (await _admin(admins, "safety relaxed", user="U3")).startswith("Done")
    refused = await _admin(admins, "admins add <@U4|dan>", user="U3")
    assert "Only" in refused
    settings = await admins.app.service.get_settings(TEAM)
    assert settings.admin_users == ("U3",) and settings.safety_level == "relaxed"
    denied = [e for e in await _audit(admins) if e.kind == "denied"]
    assert [(e.actor_id, e.action) for e in denied] == [("U3", "add_admin_user")]


async def test_mistakes_are_explained_and_change_nothing(admins: SlackBot) -> None:
    assert "Unknown safety level" in await _admin(admins, "safety extreme", user="UADMIN")
    assert "not a user" in await _admin(admins, "ban @bob", user="UADMIN")
    assert "Unknown setting" in await _admin(admins, "frobnicate", user="UADMIN")
    assert "rate like 5/minute" in await _admin(admins, "limits rate fast", user="UADMIN")
    assert "/imagine-admin" in await _admin(admins, "help", user="U2")
    assert [e for e in await _audit(admins) if e.kind == "change"] == []


async def test_deleting_someone_elses_image_is_refused_and_audited(admins: SlackBot) -> None:
    await admins.command("a red fox")
    await admins.settle()
    [job] = await admins.jobs()
    await admins.action("delete", job, user="U2")
    await admins.settle()
    assert admins.fake.calls_to("files.delete") == []
    assert [(e.actor_id, e.action) for e in await _audit(admins)] == [("U2", "delete_image")]


async def test_app_home_shows_the_users_allowance(admins: SlackBot) -> None:
    body = {
        "team_id": TEAM,
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": "Ev1",
        "event_time": 1790000000,
        "event": {"type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "home"},
    }
    await admins.command("a red fox")
    await admins.signed(json.dumps(body).encode(), content_type="application/json")
    await admins.settle()
    [published] = admins.fake.calls_to("views.publish")
    text = json.dumps(published.args["view"])
    assert "Rate: 5/minute" in text and "of 100 images left" in text


def test_admin_text_becomes_typed_changes() -> None:
    assert parse_command("ban <@W123|x>") == c.AddItem(BANNED_USERS, "W123")
    assert parse_command("channels all") == c.Clear(CHANNELS)
    assert parse_command("budget unlimited") == c.SetValue(BUDGET, UNLIMITED)
    assert parse_command("limits reset") == c.Clear(LIMITS)
    assert parse_command("workspace-daily default") == c.SetValue(SERVER_DAILY, None)
    with pytest.raises(InvalidRequest):
        parse_command("limits rate")
    with pytest.raises(InvalidRequest):
        parse_command("channels allow general")
    with pytest.raises(InvalidRequest, match="no roles"):
        parse_command("admin-roles add R1")
