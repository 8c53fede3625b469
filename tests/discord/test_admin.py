"""/imagine-admin and /quota: admins change settings; everyone else is refused by the bot itself."""

from __future__ import annotations

from typing import Any

from tests.discord.conftest import Bot
from tests.discord.test_imagine import USER, final_edit
from tests.fakes.discord import GUILD_ID, MANAGE_GUILD, MEMBER_PERMISSIONS, Recorded, user_payload

ADMIN = "1400000000000000077"


def admin_command(
    bot: Bot, path: list[str], options: list[dict[str, Any]], **kw: Any
) -> dict[str, Any]:
    """``/imagine-admin <path...> options`` as Discord sends it (subcommand groups nest)."""
    inner: list[dict[str, Any]] = options
    for name in reversed(path):
        kind = 1 if inner is options else 2
        inner = [{"name": name, "type": kind, "options": inner}]
    kw.setdefault("user_id", ADMIN)
    kw.setdefault("permissions", MEMBER_PERMISSIONS | MANAGE_GUILD)
    payload = bot.fake.command("imagine-admin", inner, **kw)
    return payload


async def answer(bot: Bot, token: str) -> str:
    def edited() -> Recorded | None:
        calls = bot.fake.calls("update_original_webhook_message", token)
        return calls[-1] if calls else None

    edit = await bot.fake.wait_for(edited, what="the admin answer")
    first = bot.fake.calls("create_interaction_response", token)[0]
    assert first.json["type"] == 5 and first.json["data"]["flags"] & 64  # ephemeral "thinking"
    return str(edit.json["content"])


async def test_a_member_without_manage_server_is_refused_and_audited(bot: Bot) -> None:
    # Discord hides the command from such members, but server admins can re-grant it to anyone.
    payload = admin_command(
        bot,
        ["blocked", "add"],
        [{"name": "term", "type": 3, "value": "dragon"}],
        user_id=USER,
        permissions=MEMBER_PERMISSIONS,
    )
    text = await answer(bot, bot.feed(payload))
    assert "Only this server's admins" in text
    settings = await bot.app.service.get_settings(GUILD_ID)
    assert "dragon" not in settings.blocked_terms
    log = await bot.app.store.list_audit(GUILD_ID, 5)
    assert log[0].kind == "denied" and log[0].actor_id == USER


async def test_an_admin_blocks_a_term_and_imagine_then_refuses_it(bot: Bot) -> None:
    payload = admin_command(
        bot, ["blocked", "add"], [{"name": "term", "type": 3, "value": "dragon"}]
    )
    assert "blocked term added" in await answer(bot, bot.feed(payload))
    listed = await answer(bot, bot.feed(admin_command(bot, ["blocked", "list"], [])))
    assert "`dragon`" in listed

    token = bot.feed(bot.fake.imagine("a red dragon"))
    refusal = await bot.fake.wait_for(
        lambda: bot.fake.calls("execute_webhook", token), what="the refusal"
    )
    assert refusal[0].json["flags"] & 64


async def test_ban_and_unban_a_member(bot: Bot) -> None:
    resolved = {"users": {USER: user_payload(USER)}}
    payload = admin_command(bot, ["ban"], [{"name": "user", "type": 6, "value": USER}])
    payload["data"]["resolved"] = resolved
    assert "banned" in await answer(bot, bot.feed(payload))
    assert USER in (await bot.app.service.get_settings(GUILD_ID)).banned_users

    payload = admin_command(bot, ["unban"], [{"name": "user", "type": 6, "value": USER}])
    payload["data"]["resolved"] = resolved
    assert "unbanned" in await answer(bot, bot.feed(payload))
    assert USER not in (await bot.app.service.get_settings(GUILD_ID)).banned_users


async def test_limits_budget_safety_and_the_audit_log(bot: Bot) -> None:
    limits = admin_command(
        bot,
        ["limits"],
        [
            {"name": "rate", "type": 3, "value": "3/minute"},
            {"name": "daily", "type": 3, "value": "20"},
        ],
    )
    assert "limits for every user" in await answer(bot, bot.feed(limits))
    budget = admin_command(bot, ["budget"], [{"name": "dollars", "type": 3, "value": "2.50"}])
    assert "$2.50" in await answer(bot, bot.feed(budget))
    safety = admin_command(bot, ["safety"], [{"name": "level", "type": 3, "value": "strict"}])
    assert "strict" in await answer(bot, bot.feed(safety))

    settings = await bot.app.service.get_settings(GUILD_ID)
    assert settings.user_limits.rate == 3 and settings.user_limits.daily == 20
    assert settings.community_budget_usd == 2.5 and settings.safety_level == "strict"

    audit = await answer(bot, bot.feed(admin_command(bot, ["audit"], [])))
    assert "safety_level" in audit and "budget" in audit and f"<@{ADMIN}>" in audit

    quota = bot.fake.command("quota", [], user_id=USER)
    text = await answer(bot, bot.feed(quota))
    assert "Today: 20 of 20 images left" in text


async def test_a_bad_rate_is_explained(bot: Bot) -> None:
    payload = admin_command(bot, ["limits"], [{"name": "rate", "type": 3, "value": "lots"}])
    token = bot.feed(payload)
    reply = await bot.fake.wait_for(
        lambda: bot.fake.calls("create_interaction_response", token), what="the answer"
    )
    assert reply[0].json["type"] == 4 and reply[0].json["data"]["flags"] & 64
    assert "5/minute" in reply[0].json["data"]["content"]


async def test_allowed_channels_close_the_others(bot: Bot) -> None:
    art = "1300000000000000033"
    payload = admin_command(
        bot, ["channels", "allow"], [{"name": "channel", "type": 7, "value": art}]
    )
    payload["data"]["resolved"] = {
        "channels": {
            art: {"id": art, "type": 0, "name": "art", "permissions": "0", "parent_id": None}
        }
    }
    assert f"channel {art} allowed" in await answer(bot, bot.feed(payload))

    token = bot.feed(bot.fake.imagine("a fox"))  # in another channel
    refusal = await bot.fake.wait_for(
        lambda: bot.fake.calls("execute_webhook", token), what="the refusal"
    )
    assert "not enabled in this channel" in refusal[0].json["content"]
    allowed = bot.feed(bot.fake.imagine("a fox", channel_id=art))
    await bot.fake.wait_for(lambda: final_edit(bot, allowed), what="the image in #art")


MEMBER_ROLE = "1500000000000000005"  # every member of the fake's payloads has it


def _role_payload(role_id: str) -> dict[str, Any]:
    return {
        "id": role_id,
        "name": "mods",
        "color": 0,
        "hoist": False,
        "position": 1,
        "permissions": "0",
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


async def test_an_admin_role_makes_its_members_bot_admins_but_not_admin_makers(bot: Bot) -> None:
    grant = admin_command(
        bot, ["admin-roles", "add"], [{"name": "role", "type": 8, "value": MEMBER_ROLE}]
    )
    grant["data"]["resolved"] = {"roles": {MEMBER_ROLE: _role_payload(MEMBER_ROLE)}}
    assert await answer(bot, bot.feed(grant)) == f"Done: role {MEMBER_ROLE} made bot admin."

    # A member without Manage Server, in that role: may change settings...
    as_member = {"user_id": USER, "permissions": MEMBER_PERMISSIONS}
    cache = admin_command(
        bot, ["cache"], [{"name": "value", "type": 3, "value": "off"}], **as_member
    )
    assert await answer(bot, bot.feed(cache)) == "Done: cache off."
    # ...but not name more admins: that stays with the server's own administrators.
    promote = admin_command(
        bot, ["admin-users", "add"], [{"name": "user", "type": 6, "value": USER}], **as_member
    )
    promote["data"]["resolved"] = {"users": {USER: user_payload(USER)}}
    assert "Only the server's own administrators" in await answer(bot, bot.feed(promote))

    settings = await bot.app.service.get_settings(GUILD_ID)
    assert settings.admin_roles == (MEMBER_ROLE,) and settings.admin_users == ()
    assert not settings.allow_cache
    [denied, *_] = await bot.app.store.list_audit(GUILD_ID, 5)
    assert (denied.kind, denied.action, denied.actor_id) == ("denied", "add_admin_user", USER)


async def test_the_settings_screen_shows_the_bot_defaults_that_apply(bot: Bot) -> None:
    shown = await answer(bot, bot.feed(admin_command(bot, ["show"], [])))
    [limits] = [line for line in shown.splitlines() if line.startswith("User limits:")]
    assert limits == (
        "User limits: rate 5/minute (bot default), burst 5 (bot default), "
        "daily 100 (bot default), in progress 5 (bot default)"
    )
