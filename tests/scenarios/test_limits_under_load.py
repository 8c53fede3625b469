"""Limits decided in the store on every backend: clock jumps (RELIABILITY 9), refunds (8)."""

from __future__ import annotations

import asyncio

from bot.domain.limits import DAY, LimitPlan, day_start
from bot.domain.models import JobStatus
from bot.store import Store
from tests.factories import make_job, make_plan, make_request
from tests.store_helpers import claim_next_job

NOW = 1_790_000_000.0


async def _try(store: Store, plan: LimitPlan, at: float, **request: object) -> bool:
    job = make_job(request=make_request(**request), created_at=at, updated_at=at)
    return (await store.admit_job(job, plan)).decision.admitted


async def test_a_clock_jump_back_delays_by_one_interval_at_most(store: Store) -> None:
    plan = make_plan()
    assert [await _try(store, plan, NOW) for _ in range(6)] == [True] * 5 + [False]
    back = NOW - 3600
    refused = await store.admit_job(make_job(created_at=back), plan)
    assert not refused.decision.admitted
    assert refused.decision.retry_at is not None and refused.decision.retry_at - back <= 12.0
    assert await _try(store, plan, back + 12.0)
    assert not await _try(store, plan, back + 12.0)


async def test_a_clock_jump_forward_grants_one_bucket_not_more(store: Store) -> None:
    plan = make_plan()
    assert all([await _try(store, plan, NOW) for _ in range(5)])
    ahead = NOW + 3600
    results = [await _try(store, plan, ahead) for _ in range(20)]
    assert results.count(True) == 5


async def test_a_clock_jump_back_over_midnight_hands_out_no_fresh_quota(store: Store) -> None:
    plan = make_plan(rate=None, period=None, daily=2)
    just_after_midnight = day_start(NOW) + DAY + 60
    assert await _try(store, plan, just_after_midnight)
    assert await _try(store, plan, just_after_midnight)
    assert not await _try(store, plan, just_after_midnight)
    # The clock goes back an hour, into "yesterday": today's jobs still count.
    assert not await _try(store, plan, just_after_midnight - 3600)
    # And the next real day gives the quota back.
    assert await _try(store, plan, just_after_midnight + DAY)


async def test_moderated_and_expired_jobs_refund_and_retries_are_charged_once(
    store: Store,
) -> None:
    plan = make_plan(rate=None, period=None, daily=3, community_budget_usd=1.0)
    jobs = [make_job(created_at=NOW + i, cost_usd=0.25) for i in range(3)]
    for job in jobs:
        assert (await store.admit_job(job, plan)).decision.admitted
    assert not await _try(store, plan, NOW + 5)
    usage = await store.read_usage(plan, NOW + 5)
    assert (usage.user_images_today, usage.community_spent_usd) == (3, 0.75)

    first = await claim_next_job(store, "w1", NOW + 10, 30, {"console"})
    assert first is not None
    # Retried three times: the same row, charged once.
    for attempt in range(1, 4):
        retried = first.evolve(attempts=attempt, lease_owner="w1")
        assert await store.save_job_step(retried, worker_id="w1", expected=JobStatus.QUEUED)
    usage = await store.read_usage(plan, NOW + 11)
    assert usage.user_images_today == 3

    moderated = first.evolve(status=JobStatus.MODERATED, attempts=3, outcome_sent=True)
    assert await store.save_job_step(moderated, worker_id="w1", expected=JobStatus.QUEUED)
    second = await claim_next_job(store, "w2", NOW + 12, 30, {"console"})
    assert second is not None
    expired = second.evolve(status=JobStatus.EXPIRED, outcome_sent=True)
    assert await store.save_job_step(expired, worker_id="w2", expected=JobStatus.QUEUED)

    usage = await store.read_usage(plan, NOW + 13)
    assert (usage.user_images_today, usage.community_spent_usd) == (1, 0.25)
    assert await _try(store, plan, NOW + 14)


async def test_a_job_cancelled_before_submit_is_refunded_after_submit_is_not(
    store: Store,
) -> None:
    plan = make_plan(rate=None, period=None, daily=10)
    before = make_job(created_at=NOW)
    after = make_job(created_at=NOW + 1, submit_started_at=NOW + 2)
    await store.admit_job(before, plan)
    await store.admit_job(after, plan)
    await store.cancel_job(before.id, NOW + 3)
    await store.cancel_job(after.id, NOW + 3)
    usage = await store.read_usage(plan, NOW + 4)
    assert usage.user_images_today == 1 and usage.user_in_flight == 0


async def test_two_processes_on_postgresql_admit_exactly_five_of_fifty() -> None:
    """RELIABILITY 7 with two bot processes: two stores, each with its own connection pool."""
    from bot.store import open_store
    from tests.pg import private_schema

    plan = make_plan(rate=5, period=60.0)
    async with (
        private_schema() as url,
        open_store(url) as first,
        open_store(url) as second,
    ):
        jobs = [make_job(created_at=NOW, updated_at=NOW) for _ in range(50)]
        results = await asyncio.gather(
            *((first if i % 2 else second).admit_job(job, plan) for i, job in enumerate(jobs))
        )
        assert sum(r.decision.admitted for r in results) == 5
        assert (await first.read_usage(plan, NOW)).user_in_flight == 5
