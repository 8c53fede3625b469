"""The usage page (30 days of images and spend as server-drawn SVG, refusals by reason, top users,
the queue now) and the stores' report queries behind it, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from bot.domain.errors import PolicyRefusal
from tests.factories import make_request
from tests.store_helpers import save_settings
from tests.web.conftest import ADMIN, GUILD, MEMBER, Site


async def _imagine(site: Site, user: str, n: int) -> None:
    for i in range(n):
        await site.app.service.imagine(
            make_request(
                platform="discord", community_id=GUILD, user_id=user, dedupe_key=f"{user}-{i}"
            )
        )


async def test_usage_shows_images_spend_refusals_top_users_and_the_queue(site: Site) -> None:
    await _imagine(site, ADMIN, 3)
    await _imagine(site, MEMBER, 1)
    settings = await site.app.service.get_settings(GUILD)
    await save_settings(
        site.app.store,
        settings.evolve(banned_users=("1500000000000000077",), community_budget_usd=5.0),
        0.0,
    )
    with pytest.raises(PolicyRefusal):
        await _imagine(site, "1500000000000000077", 1)
    await site.sign_in("discord", ADMIN)
    response = await site.client.get(f"/dashboard/c/{GUILD}/usage")
    page = await response.text()
    assert response.status == 200
    assert page.count("<svg") == 2 and page.count('class="bar"') == 60
    assert "4 images" in page and "4 waiting" in page
    assert "budget $5.00" in page  # the budget line of the spend chart
    top = page.split('id="top-users"')[1]
    assert top.index(ADMIN) < top.index(MEMBER)
    assert "<td>banned</td><td>1</td>" in page.split('id="refusals"')[1]


async def test_report_queries_count_only_this_community_and_window(site: Site) -> None:
    await _imagine(site, ADMIN, 2)
    await site.app.service.imagine(make_request(community_id="elsewhere", dedupe_key="x"))
    store = site.app.store
    now = site.app.clock.now()
    days = await store.usage_by_day(GUILD, now - 86_400)
    assert [(d.day, d.images) for d in days] == [(int(now // 86_400), 2)]
    assert await store.usage_by_day(GUILD, now + 60) == []
    top = await store.top_users(GUILD, now - 86_400, 10)
    assert [(u.user_id, u.images) for u in top] == [(ADMIN, 2)]
    counts = await store.community_job_counts(GUILD)
    assert (counts.queued, counts.running) == (2, 0)
    assert await store.refusals_by_reason(GUILD, now - 86_400) == {}
    assert await store.spend_by_provider(now - 86_400) == []  # nothing submitted yet
