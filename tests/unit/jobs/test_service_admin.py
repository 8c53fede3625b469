"""The admin API of the service: permissions re-checked, changes and refusals audited, /quota."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.domain.clock import ManualClock
from bot.domain.community import Actor, AddItem, SetValue
from bot.domain.community_settings import (
    ADMIN_ROLES,
    BANNED_USERS,
    BLOCKED_TERMS,
    BUDGET,
    CHANNEL_SAFETY,
    CHANNELS,
    LIMITS,
    SAFETY,
)
from bot.domain.errors import InvalidRequest, PolicyRefusal
from bot.domain.limits import parse_rate
from bot.domain.models import Limits
from bot.jobs.service import ImagineService
from bot.runtime.app import App, open_app
from bot.runtime.config import Settings
from bot.text.replies import quota_lines
from tests.factories import make_request

START = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC
OWNER = Actor("owner", is_platform_admin=True)
MOD = Actor("mod", role_ids=("r-mod",))
MEMBER = Actor("member", role_ids=("r-fan",))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def policy_app(settings: Settings, clock: ManualClock) -> AsyncIterator[App]:
    async with open_app(settings, clock=clock) as opened:
        yield opened


async def test_a_non_admin_is_refused_and_the_attempt_is_audited(policy_app: App) -> None:
    service = policy_app.service
    with pytest.raises(PolicyRefusal) as refused:
        await service.update_settings("g1", MEMBER, SetValue(SAFETY, "adult"))
    assert refused.value.code == "not_admin"
    assert (await service.get_settings("g1")).safety_level == "standard"
    log = await service.audit_log("g1", OWNER)
    assert [(e.kind, e.actor_id, e.action) for e in log] == [("denied", "member", "safety_level")]


async def test_admin_roles_grant_changes_but_not_admin_management(policy_app: App) -> None:
    service = policy_app.service
    changed = await service.update_settings("g1", OWNER, AddItem(ADMIN_ROLES, "r-mod"))
    assert changed.settings.admin_roles == ("r-mod",)
    done = await service.update_settings("g1", MOD, AddItem(BANNED_USERS, "troll"))
    assert "troll" in done.settings.banned_users and done.message.startswith("Done")
    with pytest.raises(PolicyRefusal):
        await service.update_settings("g1", MOD, AddItem(ADMIN_ROLES, "r-fan"))
    log = await service.audit_log("g1", MOD, limit=10)
    assert [(e.kind, e.action) for e in log] == [
        ("denied", "add_admin_role"),
        ("change", "ban"),
        ("change", "add_admin_role"),
    ]
    with pytest.raises(PolicyRefusal):
        await service.audit_log("g1", MEMBER)


async def test_invalid_changes_explain_and_store_nothing(policy_app: App) -> None:
    service = policy_app.service
    with pytest.raises(InvalidRequest, match="Unknown safety level"):
        await service.update_settings("g1", OWNER, SetValue(SAFETY, "spicy"))
    with pytest.raises(InvalidRequest):
        await service.update_settings("g1", OWNER, SetValue(CHANNEL_SAFETY, "9", key="ch"))
    assert await service.audit_log("g1", OWNER) == []


async def test_a_banned_user_is_refused_and_audited(policy_app: App) -> None:
    service = policy_app.service
    await service.update_settings("c1", OWNER, AddItem(BANNED_USERS, "u1"))
    with pytest.raises(PolicyRefusal) as refused:
        await service.imagine(make_request())
    assert refused.value.code == "banned"
    entry = (await service.audit_log("c1", OWNER, limit=1))[0]
    assert (entry.kind, entry.action, entry.actor_id, entry.channel_id) == (
        "refusal",
        "banned",
        "u1",
        "ch1",
    )


async def test_channel_list_and_word_list_refuse_in_order(policy_app: App) -> None:
    service = policy_app.service
    await service.update_settings("c1", OWNER, AddItem(CHANNELS, "art"))
    await service.update_settings("c1", OWNER, AddItem(BLOCKED_TERMS, "clown"))
    with pytest.raises(PolicyRefusal) as wrong_channel:
        await service.imagine(make_request(prompt="a sad clown"))
    assert wrong_channel.value.code == "channel_not_allowed"
    with pytest.raises(PolicyRefusal) as blocked:
        await service.imagine(make_request(channel_id="art", prompt="a sad cl\u200bown"))
    assert blocked.value.code == "blocked_term"
    assert "clown" not in blocked.value.user_message
    assert "word list" in blocked.value.user_message
    accepted = await service.imagine(make_request(channel_id="art", prompt="a clownfish reef"))
    assert accepted.job.request.prompt == "a clownfish reef"
    assert await service.blocked_terms("c1", OWNER) == ("clown",)


async def test_rate_refusal_says_when_to_try_again(policy_app: App, clock: ManualClock) -> None:
    service = policy_app.service
    rate, period = parse_rate("2/minute") or (0, 0.0)
    await service.update_settings(
        "c1", OWNER, SetValue(LIMITS, Limits(rate=rate, period=period, burst=1))
    )
    await service.imagine(make_request())
    clock.advance(18)
    with pytest.raises(PolicyRefusal) as refused:
        await service.imagine(make_request())
    assert refused.value.code == "user_rate"
    assert refused.value.user_message == "You can imagine again in 12 s."
    assert refused.value.retry_after == pytest.approx(12.0)
    clock.advance(12)
    await service.imagine(make_request())


async def test_budget_refusal_names_the_reset(policy_app: App, clock: ManualClock) -> None:
    # Priced as on BFL (flux-2-pro at $0.03 an image), the first configured provider.
    service = ImagineService(
        store=policy_app.store,
        catalog=policy_app.catalog,
        clock=clock,
        events=policy_app.events,
        providers=("bfl", "offline"),
        policy=policy_app.policy,
    )
    await service.update_settings("c1", OWNER, SetValue(BUDGET, 0.10))
    first = await service.imagine(make_request(count=3))
    assert first.job.cost_usd == pytest.approx(0.09)
    with pytest.raises(PolicyRefusal) as refused:
        await service.imagine(make_request(user_id="u2"))
    assert refused.value.code == "community_budget"
    assert refused.value.user_message.startswith(
        "This server's daily budget is spent; it resets at 00:00 UTC"
    )
    report = await service.quota("c1", "u2")
    assert report.budget_remaining_usd == pytest.approx(0.01)


async def test_quota_reports_what_is_left(policy_app: App) -> None:
    service = policy_app.service
    await service.update_settings(
        "c1", OWNER, SetValue(LIMITS, Limits(rate=3, period=60.0, daily=10, max_in_flight=4))
    )
    before = await service.quota("c1", "u1")
    assert (before.rate_available, before.remaining_today, before.in_flight) == (3, 10, 0)
    await service.imagine(make_request(count=2))
    after = await service.quota("c1", "u1")
    assert (after.rate_available, after.remaining_today, after.in_flight) == (1, 8, 1)
    text = "\n".join(quota_lines(after))
    assert "8 of 10 images left" in text and "resets at 00:00 UTC" in text
    owner = await service.quota("c1", "owner", is_platform_admin=True)
    assert owner.exempt and "admin" in quota_lines(owner)[0]
