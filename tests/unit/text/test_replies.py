"""The settings screen shows what applies: the bot's defaults with their values, marked."""

from __future__ import annotations

from bot.domain.limits import UNLIMITED, LimitDefaults
from bot.domain.models import CommunitySettings, Limits
from bot.text.replies import blocked_terms_text, effective_limits, settings_lines

DEFAULTS = LimitDefaults(
    user=Limits(rate=5, period=60.0, daily=100, max_in_flight=5),
    community_daily=None,
    community_budget_usd=3.0,
)


def test_limits_left_at_the_bot_default_show_its_value() -> None:
    lines = settings_lines(CommunitySettings("c"), DEFAULTS, "pro")
    assert (
        "User limits: rate 5/minute (bot default), burst 5 (bot default), "
        "daily 100 (bot default), in progress 5 (bot default)"
    ) in lines
    assert "Server daily quota: unlimited (bot default)" in lines
    assert "Server daily budget: $3.00 (bot default)" in lines
    assert "Default model: pro (bot default)" in lines


def test_the_communitys_own_values_replace_the_defaults() -> None:
    settings = CommunitySettings(
        "c",
        user_limits=Limits(rate=UNLIMITED, daily=20),
        community_daily=40,
        community_budget_usd=float(UNLIMITED),
        default_variant="max",
    )
    lines = settings_lines(settings, DEFAULTS, "pro")
    assert (
        "User limits: rate unlimited, burst unlimited (bot default), daily 20, "
        "in progress 5 (bot default)"
    ) in lines
    assert "Server daily quota: 40 images" in lines
    assert "Server daily budget: unlimited" in lines
    assert "Default model: max" in lines


def test_a_rate_without_its_period_uses_the_default_period() -> None:
    assert effective_limits(Limits(rate=2), Limits(rate=5, period=3600.0)).startswith(
        "rate 2/hour, burst 2 (bot default)"
    )


def test_blocked_terms() -> None:
    assert blocked_terms_text([]).startswith("The word list is empty")
    assert blocked_terms_text(["a", "b"], quote="`") == "Blocked terms (2): `a`, `b`"
