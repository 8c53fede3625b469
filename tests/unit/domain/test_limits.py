"""The arithmetic of limits: plans from defaults, settings and roles; messages; the quota report."""

from __future__ import annotations

import pytest

from bot.domain.limits import (
    UNLIMITED,
    Decision,
    LimitDefaults,
    Usage,
    decide,
    format_rate,
    parse_rate,
    quota_report,
    refusal_message,
    resolve_plan,
)
from bot.domain.models import CommunitySettings, Limits
from bot.text.replies import quota_lines

NOW = 1_790_000_000.0
DEFAULTS = LimitDefaults(user=Limits(rate=5, period=60.0, daily=100, max_in_flight=5))


def test_parse_rate_accepts_the_documented_forms() -> None:
    assert parse_rate("5/minute") == (5, 60.0)
    assert parse_rate("20 per hour") == (20, 3600.0)
    assert parse_rate("3/30s") == (3, 30.0)
    assert parse_rate("100/day") == (100, 86400.0)
    assert parse_rate("off") is None
    for bad in ("five/minute", "5/fortnight", "0/minute", ""):
        with pytest.raises(ValueError):
            parse_rate(bad)
    assert format_rate(5, 60.0) == "5/minute"
    assert format_rate(3, 30.0) == "3/30s"


def test_role_overrides_beat_community_settings_which_beat_defaults() -> None:
    settings = CommunitySettings(
        "c1",
        user_limits=Limits(daily=20),
        role_limits={
            "supporter": Limits(rate=30, period=60.0, daily=200),
            "vip": Limits(daily=UNLIMITED, max_in_flight=10),
        },
    )
    member = resolve_plan(settings, DEFAULTS, user_id="u1")
    assert (member.rate, member.daily, member.max_in_flight) == (5, 20, 5)
    supporter = resolve_plan(settings, DEFAULTS, user_id="u1", roles=("supporter",))
    assert (supporter.rate, supporter.daily) == (30, 200)
    both = resolve_plan(settings, DEFAULTS, user_id="u1", roles=("supporter", "vip"))
    assert (both.rate, both.daily, both.max_in_flight) == (30, None, 10)


def test_admins_skip_user_limits_but_not_the_community_budget() -> None:
    settings = CommunitySettings("c1", community_budget_usd=5.0)
    admin = resolve_plan(settings, DEFAULTS, user_id="a", is_admin=True)
    assert admin.exempt and admin.rate is None and admin.daily is None
    assert admin.community_budget_usd == 5.0
    strict = resolve_plan(
        settings.evolve(admins_exempt=False), DEFAULTS, user_id="a", is_admin=True
    )
    assert not strict.exempt and strict.rate == 5


def test_a_request_larger_than_the_burst_needs_a_full_bucket_not_forever() -> None:
    plan = resolve_plan(
        CommunitySettings("c1", user_limits=Limits(rate=2, period=60.0)), DEFAULTS, user_id="u"
    )
    first = decide(plan, Usage(), now=NOW, images=4, cost_usd=0)
    assert first.admitted and first.new_tat == NOW + 60
    second = decide(plan, Usage(rate_tat=first.new_tat), now=NOW + 1, images=1, cost_usd=0)
    assert not second.admitted and second.retry_at == pytest.approx(NOW + 30)


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("user_rate", "You can imagine again in 42 s."),
        ("user_daily", "You have used your 100 images for today; your quota resets at 00:00 UTC"),
        ("user_in_flight", "You already have 5 images in progress"),
        ("community_daily", "This server's daily image quota is used up; it resets at 00:00 UTC"),
        ("community_budget", "This server's daily budget is spent; it resets at 00:00 UTC"),
    ],
)
def test_refusals_name_the_limit_and_when(limit: str, expected: str) -> None:
    plan = resolve_plan(CommunitySettings("c1"), DEFAULTS, user_id="u")
    message = refusal_message(Decision(False, limit, retry_at=NOW + 41.2), plan, NOW)
    assert message.startswith(expected)


def test_quota_report_counts_down_and_says_when_the_next_image_frees_up() -> None:
    plan = resolve_plan(CommunitySettings("c1"), DEFAULTS, user_id="u")
    fresh = quota_report(plan, Usage(), NOW)
    assert fresh.rate_available == 5 and fresh.remaining_today == 100
    spent = quota_report(plan, Usage(rate_tat=NOW + 60, user_images_today=5), NOW)
    assert spent.rate_available == 0 and spent.rate_next_at == NOW + 12
    assert any("next in 12 s" in line for line in quota_lines(spent))
    assert spent.remaining_today == 95
