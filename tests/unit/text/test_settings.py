"""The one settings grammar: every documented form, the old spellings of each platform, mistakes."""

from __future__ import annotations

import pytest

from bot.domain.community import AddItem, Clear, RemoveItem, SetValue
from bot.domain.community_settings import (
    ADMIN_ROLES,
    ADMIN_USERS,
    ADMINS_EXEMPT,
    BANNED_USERS,
    BLOCKED_TERMS,
    BUDGET,
    CACHE,
    CHANNEL_SAFETY,
    CHANNELS,
    DEFAULT_ENHANCE,
    DEFAULT_FORMAT,
    DEFAULT_MODEL,
    INPUT_IMAGES,
    LIMITS,
    SAFETY,
    SERVER_DAILY,
    SETTINGS,
)
from bot.domain.errors import InvalidRequest
from bot.domain.limits import UNLIMITED
from bot.domain.models import Limits
from bot.text.settings import (
    USAGE,
    ListBlockedTerms,
    ShowAudit,
    ShowSettings,
    ShowSettingsHelp,
    limits_change,
    parse_settings_command,
    settings_help,
    value_change,
)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("", ShowSettings()),
        ("show", ShowSettings()),
        ("help", ShowSettingsHelp()),
        ("audit", ShowAudit(20)),
        ("audit 5", ShowAudit(5)),
        ("safety strict", SetValue(SAFETY, "strict")),
        ("channel-safety C1 relaxed", SetValue(CHANNEL_SAFETY, "relaxed", key="C1")),
        ("channel-safety C1 clear", SetValue(CHANNEL_SAFETY, None, key="C1")),
        ("channels allow C1", AddItem(CHANNELS, "C1")),
        ("channels disallow C1", RemoveItem(CHANNELS, "C1")),
        ("channels allow-all", Clear(CHANNELS)),
        ("blocked add dragon fire", AddItem(BLOCKED_TERMS, "dragon fire")),
        ("blocked remove dragon", RemoveItem(BLOCKED_TERMS, "dragon")),
        ("blocked list", ListBlockedTerms()),
        ("ban U1", AddItem(BANNED_USERS, "U1")),
        ("unban U1", RemoveItem(BANNED_USERS, "U1")),
        ("limits rate=5/minute daily=off", SetValue(LIMITS, Limits(5, 60.0, daily=UNLIMITED))),
        ("limits rate 5/minute in-flight 2", SetValue(LIMITS, Limits(5, 60.0, max_in_flight=2))),
        ("limits role=vip burst=3", SetValue(LIMITS, Limits(burst=3), key="vip")),
        ("limits rate=off", SetValue(LIMITS, Limits(rate=UNLIMITED))),
        ("limits reset", Clear(LIMITS)),
        ("limits reset vip", Clear(LIMITS, "vip")),
        ("server-daily 40", SetValue(SERVER_DAILY, 40)),
        ("server-daily off", SetValue(SERVER_DAILY, UNLIMITED)),
        ("server-daily default", SetValue(SERVER_DAILY, None)),
        ("budget $2.50", SetValue(BUDGET, 2.5)),
        ("budget unlimited", SetValue(BUDGET, float(UNLIMITED))),
        ("budget default", SetValue(BUDGET, None)),
        ("model max", SetValue(DEFAULT_MODEL, "max")),
        ("model default", SetValue(DEFAULT_MODEL, None)),
        ("format png", SetValue(DEFAULT_FORMAT, "png")),
        ("format JPG", SetValue(DEFAULT_FORMAT, "jpeg")),
        ("format default", SetValue(DEFAULT_FORMAT, None)),
        ("enhance on", SetValue(DEFAULT_ENHANCE, True)),
        ("input-images off", SetValue(INPUT_IMAGES, False)),
        ("cache on", SetValue(CACHE, True)),
        ("admins-exempt no", SetValue(ADMINS_EXEMPT, False)),
        ("admin-roles add R1", AddItem(ADMIN_ROLES, "R1")),
        ("admin-roles remove R1", RemoveItem(ADMIN_ROLES, "R1")),
        ("admin-users add U1", AddItem(ADMIN_USERS, "U1")),
        ("admin-users remove U1", RemoveItem(ADMIN_USERS, "U1")),
    ],
)
def test_every_documented_form(text: str, command: object) -> None:
    assert parse_settings_command(text) == command


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("settings", "show"),  # Discord's old subcommand
        ("allow C1", "channels allow C1"),  # the console's
        ("disallow C1", "channels disallow C1"),
        ("allow-all", "channels allow-all"),
        ("channels all", "channels allow-all"),  # Slack's
        ("block dragon", "blocked add dragon"),
        ("unblock dragon", "blocked remove dragon"),
        ("blocked", "blocked list"),
        ("terms add dragon", "blocked add dragon"),
        ("terms list", "blocked list"),
        ("workspace-daily 40", "server-daily 40"),
        ("images off", "input-images off"),
        ("admins add U1", "admin-users add U1"),
    ],
)
def test_old_spellings_mean_the_same(old: str, new: str) -> None:
    assert parse_settings_command(old) == parse_settings_command(new)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frobnicate", "Unknown setting 'frobnicate'"),
        ("safety", "Usage: safety"),
        ("channel-safety C1", "Usage: channel-safety"),
        ("channels allow", "Usage: channels"),
        ("channels add C1", "Usage: channels"),
        ("blocked add", "Usage: blocked"),
        ("admin-users grant U1", "Usage: admin-users"),
        ("limits", "Usage: limits"),
        ("limits daily=lots", "daily is a whole number or off; got 'lots'."),
        ("limits rate=fast", "is not a rate like 5/minute"),
        ("limits colour=red", "Unknown limit 'colour'"),
        ("limits daily", "'daily' has no value"),
        ("budget lots", "The budget is an amount in US dollars"),
        ("cache maybe", "cache is on or off; got 'maybe'."),
        ("format gif", "is one of jpeg, png, webp; got 'gif'."),
        ("enhance lots", "enhance is on or off; got 'lots'."),
        ("audit many", "Usage: audit"),
    ],
)
def test_mistakes_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_settings_command(text)
    assert message in caught.value.user_message


def test_typed_options_read_like_typed_words() -> None:
    assert value_change("server-daily", "40") == parse_settings_command("server-daily 40")
    assert value_change("cache", "off") == parse_settings_command("cache off")
    assert limits_change({"rate": "2/minute", "daily": "3"}, "vip") == parse_settings_command(
        "limits role=vip rate=2/minute daily=3"
    )
    with pytest.raises(InvalidRequest, match="whole number or off"):
        value_change("server-daily", "lots")


def test_the_help_names_every_setting() -> None:
    text = settings_help("/settings")
    named = {usage.split()[0] for usage, _ in USAGE}
    assert set(SETTINGS) - {"banned"} <= named and "ban" in named
    assert all(line.startswith("/settings ") for line in text.splitlines())
