"""Each change names its audit action and line exactly as the 21 former change classes did, and
applies its setting's checks."""

from __future__ import annotations

import pytest

from bot.domain.catalog import load_catalog
from bot.domain.community import AddItem, Clear, RemoveItem, SettingsChange, SetValue
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
    DEFAULT_MODEL,
    INPUT_IMAGES,
    LIMITS,
    MAX_BLOCKED_TERMS,
    SAFETY,
    SERVER_DAILY,
)
from bot.domain.errors import InvalidRequest
from bot.domain.limits import UNLIMITED
from bot.domain.models import CommunitySettings, Limits

CATALOG = load_catalog()


@pytest.mark.parametrize(
    ("change", "action", "line", "platform_admin"),
    [
        (SetValue(SAFETY, "0"), "safety_level", "safety level set to strict", False),
        (
            SetValue(CHANNEL_SAFETY, "relaxed", key="C1"),
            "channel_safety",
            "channel C1: safety level set to relaxed",
            False,
        ),
        (
            SetValue(CHANNEL_SAFETY, None, key="C1"),
            "channel_safety",
            "channel C1: own safety level cleared",
            False,
        ),
        (AddItem(CHANNELS, "C1"), "allow_channel", "channel C1 allowed", False),
        (RemoveItem(CHANNELS, "C1"), "disallow_channel", "channel C1 no longer allowed", False),
        (Clear(CHANNELS), "allow_all_channels", "every channel allowed", False),
        (AddItem(BLOCKED_TERMS, " a  b "), "block_term", "blocked term added: 'a b'", False),
        (RemoveItem(BLOCKED_TERMS, "a b"), "unblock_term", "blocked term removed: 'a b'", False),
        (AddItem(BANNED_USERS, "U1"), "ban", "user U1 banned from /imagine", False),
        (RemoveItem(BANNED_USERS, "U1"), "unban", "user U1 unbanned", False),
        (
            SetValue(LIMITS, Limits(rate=2, period=3600.0, daily=UNLIMITED), key="R1"),
            "user_limits",
            "limits for role R1: rate 2/hour, daily unlimited",
            False,
        ),
        (Clear(LIMITS), "clear_user_limits", "user limits back to the bot defaults", False),
        (
            Clear(LIMITS, "R1"),
            "clear_user_limits",
            "limit override of role R1 removed",
            False,
        ),
        (
            SetValue(SERVER_DAILY, None),
            "community_daily",
            "server daily quota set to the bot default",
            False,
        ),
        (
            SetValue(SERVER_DAILY, 40),
            "community_daily",
            "server daily quota set to 40 images",
            False,
        ),
        (
            SetValue(BUDGET, float(UNLIMITED)),
            "budget",
            "server daily budget set to unlimited",
            False,
        ),
        (SetValue(BUDGET, 2.5), "budget", "server daily budget set to $2.50", False),
        (SetValue(ADMINS_EXEMPT, True), "admins_exempt", "admins skip user limits", False),
        (
            SetValue(DEFAULT_MODEL, None),
            "default_model",
            "default model set to the bot default",
            False,
        ),
        (SetValue(INPUT_IMAGES, True), "input_images", "input images on", False),
        (SetValue(CACHE, False), "cache", "cache off", False),
        (AddItem(ADMIN_ROLES, "R1"), "add_admin_role", "role R1 made bot admin", True),
        (RemoveItem(ADMIN_ROLES, "R1"), "remove_admin_role", "role R1 no longer bot admin", True),
        (AddItem(ADMIN_USERS, "U1"), "add_admin_user", "user U1 made bot admin", True),
        (RemoveItem(ADMIN_USERS, "U1"), "remove_admin_user", "user U1 no longer bot admin", True),
    ],
)
def test_audit_action_and_line(
    change: SettingsChange, action: str, line: str, platform_admin: bool
) -> None:
    assert (change.action, change.describe(), change.needs_platform_admin) == (
        action,
        line,
        platform_admin,
    )


def test_values_are_checked_and_normalized() -> None:
    start = CommunitySettings("c")
    assert SetValue(SAFETY, "4").apply(start, CATALOG).safety_level == "relaxed"
    assert SetValue(DEFAULT_MODEL, "max").apply(start, CATALOG).default_variant == "max"
    for bad in (
        SetValue(SERVER_DAILY, 2_000_000),
        SetValue(BUDGET, -1.5),
        SetValue(LIMITS, Limits(burst=0)),
        SetValue(LIMITS, Limits(rate=5, period=2 * 86_400.0)),
        SetValue(CHANNEL_SAFETY, "9", key="C1"),
        AddItem(BANNED_USERS, "  "),
        AddItem(BLOCKED_TERMS, "x" * 101),
    ):
        with pytest.raises(InvalidRequest):
            bad.apply(start, CATALOG)


def test_lists_keep_one_of_each_and_know_their_own_rules() -> None:
    settings = CommunitySettings("c")
    for change in (AddItem(BLOCKED_TERMS, "Dragon"), AddItem(BLOCKED_TERMS, "dragon")):
        settings = change.apply(settings, CATALOG)
    assert settings.blocked_terms == ("Dragon",)
    with pytest.raises(InvalidRequest, match="not on this community's word list"):
        RemoveItem(BLOCKED_TERMS, "fox").apply(settings, CATALOG)
    full = CommunitySettings("c", blocked_terms=tuple(f"t{i}" for i in range(MAX_BLOCKED_TERMS)))
    with pytest.raises(InvalidRequest, match="at most"):
        AddItem(BLOCKED_TERMS, "one more").apply(full, CATALOG)

    with pytest.raises(InvalidRequest, match="Every channel is allowed now"):
        RemoveItem(CHANNELS, "C1").apply(settings, CATALOG)
    settings = AddItem(CHANNELS, "C1").apply(settings, CATALOG)
    with pytest.raises(InvalidRequest, match="last allowed channel"):
        RemoveItem(CHANNELS, "C1").apply(settings, CATALOG)
    assert Clear(CHANNELS).apply(settings, CATALOG).allowed_channels == ()


def test_limits_merge_and_clear_per_role() -> None:
    settings = SetValue(LIMITS, Limits(rate=3, period=60.0)).apply(CommunitySettings("c"), CATALOG)
    settings = SetValue(LIMITS, Limits(daily=9)).apply(settings, CATALOG)
    assert settings.user_limits == Limits(rate=3, period=60.0, daily=9)
    settings = SetValue(LIMITS, Limits(daily=50), key="R1").apply(settings, CATALOG)
    assert settings.role_limits == {"R1": Limits(daily=50)}
    settings = Clear(LIMITS, "R1").apply(settings, CATALOG)
    assert settings.role_limits == {} and settings.user_limits.daily == 9
    assert Clear(LIMITS).apply(settings, CATALOG).user_limits == Limits()
