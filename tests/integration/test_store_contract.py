"""One contract for every store backend: the same tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from bot.models import CommunitySettings, JobStatus
from bot.store import Store
from tests.factories import make_job, make_request

NOW = 1_700_000_000.0
CONSOLE = {"console"}


async def test_enqueue_then_get_returns_the_same_job(store: Store) -> None:
    job = make_job()
    stored, created = await store.enqueue_job(job)
    assert created
    assert await store.get_job(job.id) == stored == job


async def test_the_same_event_twice_makes_one_job(store: Store) -> None:
    first = make_job(request=make_request(dedupe_key="console:evt-1"))
    second = make_job(request=make_request(dedupe_key="console:evt-1"))
    _, created_first = await store.enqueue_job(first)
    again, created_second = await store.enqueue_job(second)
    assert created_first and not created_second
    assert again.id == first.id
    assert await store.get_job(second.id) is None


async def test_concurrent_duplicates_make_one_job(store: Store) -> None:
    jobs = [make_job(request=make_request(dedupe_key="console:same")) for _ in range(20)]
    results = await asyncio.gather(*(store.enqueue_job(j) for j in jobs))
    assert sum(created for _, created in results) == 1
    assert len({stored.id for stored, _ in results}) == 1


async def test_a_claimed_job_is_not_claimed_again_until_its_lease_expires(store: Store) -> None:
    job = make_job()
    await store.enqueue_job(job)
    claimed = await store.claim_next_job("w1", NOW, 30, CONSOLE)
    assert claimed is not None and claimed.lease_owner == "w1"
    assert await store.claim_next_job("w2", NOW + 10, 30, CONSOLE) is None
    taken = await store.claim_next_job("w2", NOW + 31, 30, CONSOLE)
    assert taken is not None and taken.id == job.id and taken.lease_owner == "w2"


async def test_claims_only_jobs_of_the_given_platforms(store: Store) -> None:
    await store.enqueue_job(make_job(request=make_request(platform="discord")))
    assert await store.claim_next_job("w1", NOW, 30, CONSOLE) is None
    assert await store.claim_next_job("w1", NOW, 30, {"discord"}) is not None


async def test_concurrent_claims_never_share_a_job(store: Store) -> None:
    for _ in range(30):
        await store.enqueue_job(make_job())
    claims = await asyncio.gather(
        *(store.claim_next_job(f"w{i}", NOW, 30, CONSOLE) for i in range(40))
    )
    ids = [c.id for c in claims if c is not None]
    assert len(ids) == 30 == len(set(ids))


async def test_save_job_step_needs_the_lease_and_the_expected_status(store: Store) -> None:
    job = make_job()
    await store.enqueue_job(job)
    claimed = await store.claim_next_job("w1", NOW, 30, CONSOLE)
    assert claimed is not None
    submitted = claimed.evolve(status=JobStatus.SUBMITTED, provider_task={"id": "t1"})
    assert not await store.save_job_step(submitted, worker_id="w2", expected=JobStatus.QUEUED)
    assert not await store.save_job_step(submitted, worker_id="w1", expected=JobStatus.FETCHED)
    assert await store.save_job_step(submitted, worker_id="w1", expected=JobStatus.QUEUED)
    stored = await store.get_job(job.id)
    assert stored is not None and stored.provider_task_id == "t1"
    assert stored.status is JobStatus.SUBMITTED


async def test_a_cancelled_job_cannot_be_saved_by_its_worker(store: Store) -> None:
    job = make_job()
    await store.enqueue_job(job)
    claimed = await store.claim_next_job("w1", NOW, 30, CONSOLE)
    assert claimed is not None
    cancelled = await store.cancel_job(job.id, NOW)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    assert cancelled.outcome_sent
    later = claimed.evolve(status=JobStatus.SUBMITTED)
    assert not await store.save_job_step(later, worker_id="w1", expected=JobStatus.QUEUED)
    assert await store.claim_next_job("w1", NOW + 100, 30, CONSOLE) is None


async def test_released_job_waits_for_not_before(store: Store) -> None:
    job = make_job()
    await store.enqueue_job(job)
    await store.claim_next_job("w1", NOW, 30, CONSOLE)
    await store.release_job(job.id, "w1", NOW + 20)
    assert await store.claim_next_job("w1", NOW + 5, 30, CONSOLE) is None
    assert await store.claim_next_job("w1", NOW + 21, 30, CONSOLE) is not None


async def test_leases_are_renewed_only_for_their_holder(store: Store) -> None:
    job = make_job()
    await store.enqueue_job(job)
    await store.claim_next_job("w1", NOW, 30, CONSOLE)
    assert await store.renew_leases("w2", [job.id], NOW + 10, 30) == set()
    assert await store.renew_leases("w1", [job.id], NOW + 10, 30) == {job.id}
    assert await store.claim_next_job("w2", NOW + 35, 30, CONSOLE) is None
    assert await store.lease_owners() == {"w1"}
    assert await store.release_leases_of("w1") == 1
    assert await store.claim_next_job("w2", NOW + 35, 30, CONSOLE) is not None


async def test_claims_alternate_between_communities(store: Store) -> None:
    for _ in range(6):
        await store.enqueue_job(make_job(request=make_request(community_id="busy")))
    for _ in range(2):
        await store.enqueue_job(make_job(request=make_request(community_id="quiet")))
    order = []
    for i in range(4):
        claimed = await store.claim_next_job(f"w{i}", NOW, 30, CONSOLE)
        assert claimed is not None
        order.append(claimed.community_id)
    assert sorted(order[:2]) == ["busy", "quiet"]
    assert order.count("quiet") == 2


async def test_queue_position_counts_the_jobs_ahead(store: Store) -> None:
    jobs = [make_job() for _ in range(3)]
    for job in jobs:
        await store.enqueue_job(job)
    assert [await store.queue_position(j) for j in jobs] == [0, 1, 2]
    assert await store.count_pending(CONSOLE) == 3
    counts = await store.job_counts()
    assert counts.queued == 3 and counts.running == 0


async def test_settings_round_trip(store: Store) -> None:
    assert await store.get_settings("c1") is None
    settings = CommunitySettings("c1", safety_level="strict", banned_users=("u9",))
    await store.save_settings(settings, NOW)
    assert await store.get_settings("c1") == settings
    await store.save_settings(settings.evolve(banned_users=()), NOW + 1)
    stored = await store.get_settings("c1")
    assert stored is not None and stored.banned_users == ()
