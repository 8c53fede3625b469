"""The usage report: the window of UTC days it covers, charged images per day and per user, the
refusals, the queue and the budget in effect; for admins only."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.community import Actor, AuditEntry, SetValue
from bot.domain.community_settings import BUDGET
from bot.domain.errors import PolicyRefusal
from bot.domain.limits import UNLIMITED, LimitDefaults
from bot.domain.policy import Policy, PolicyDefaults
from bot.jobs.admin import Admin
from bot.jobs.usage import Usage, daily_budget
from bot.store.base import JobCounts
from tests import store_helpers
from tests.factories import make_job, make_request

OWNER = Actor("owner", is_platform_admin=True)
MEMBER = Actor("member")


def _usage(parts: dict[str, Any], policy: Policy | None = None) -> tuple[Usage, Admin]:
    policy = policy or parts["policy"]
    admin = Admin(
        store=parts["store"], catalog=parts["catalog"], clock=parts["clock"], policy=policy
    )
    return Usage(store=parts["store"], clock=parts["clock"], policy=policy, admin=admin), admin


async def test_the_report_covers_the_last_days_up_to_today(service_parts: dict[str, Any]) -> None:
    usage, _ = _usage(service_parts)
    store, now = service_parts["store"], service_parts["clock"].now()
    today = int(now // 86_400)
    for user, count, at in [("u1", 2, now), ("u2", 1, now - 86_400), ("u1", 4, now - 3 * 86_400)]:
        request = make_request(community_id="g1", user_id=user, count=count)
        await store_helpers.enqueue_job(store, make_job(request=request, created_at=at))
    await store.add_audit(AuditEntry("g1", now, "u3", "refusal", "banned", "refused"))

    report = await usage.usage_report("g1", OWNER, days=3)
    assert report.first_day == today - 2
    assert [(d.day, d.images) for d in report.days] == [(today - 1, 1), (today, 2)]
    assert [(u.user_id, u.images) for u in report.top_users] == [("u1", 2), ("u2", 1)]
    assert report.refusals == {"banned": 1}
    assert report.queue == JobCounts(queued=3, running=0)
    assert report.budget_usd is None
    longer = await usage.usage_report("g1", OWNER, days=30)
    assert [u.images for u in longer.top_users] == [6, 1]


async def test_the_report_is_for_admins_only(service_parts: dict[str, Any]) -> None:
    usage, admin = _usage(service_parts)
    with pytest.raises(PolicyRefusal):
        await usage.usage_report("g1", MEMBER, origin="dashboard")
    [entry] = await admin.audit_log("g1", OWNER)
    assert (entry.kind, entry.action, entry.origin) == ("denied", "read_usage", "dashboard")


async def test_the_budget_is_the_communitys_else_the_bots(service_parts: dict[str, Any]) -> None:
    bot_wide = Policy(PolicyDefaults(limits=LimitDefaults(community_budget_usd=20.0)))
    usage, admin = _usage(service_parts, bot_wide)
    assert (await usage.usage_report("g1", OWNER)).budget_usd == 20.0
    await admin.update_settings("g1", OWNER, SetValue(BUDGET, 5.0))
    assert (await usage.usage_report("g1", OWNER)).budget_usd == 5.0
    settings = await admin.get_settings("g1")
    assert daily_budget(settings.evolve(community_budget_usd=UNLIMITED), bot_wide) is None
    assert daily_budget(settings.evolve(community_budget_usd=None), Policy()) is None
