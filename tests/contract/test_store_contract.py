"""One contract for every store backend: the same tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from bot.domain.community import AuditEntry
from bot.domain.errors import StoreError
from bot.domain.models import CommunitySettings, Job, JobStatus
from bot.domain.preferences import Preferences
from bot.store import Store
from bot.store.base import AuditQuery, DayUsage, JobCounts, ProviderError, UserUsage
from tests.factories import make_job, make_plan, make_request
from tests.store_helpers import claim_next_job, enqueue_job, save_settings

NOW = 1_700_000_000.0
CONSOLE = {"console"}


async def test_enqueue_then_get_returns_the_same_job(store: Store) -> None:
    job = make_job()
    stored, created = await enqueue_job(store, job)
    assert created
    assert await store.get_job(job.id) == stored == job


async def test_the_same_event_twice_makes_one_job(store: Store) -> None:
    first = make_job(request=make_request(dedupe_key="console:evt-1"))
    second = make_job(request=make_request(dedupe_key="console:evt-1"))
    _, created_first = await enqueue_job(store, first)
    again, created_second = await enqueue_job(store, second)
    assert created_first and not created_second
    assert again.id == first.id
    assert await store.get_job(second.id) is None


async def test_concurrent_duplicates_make_one_job(store: Store) -> None:
    jobs = [make_job(request=make_request(dedupe_key="console:same")) for _ in range(20)]
    results = await asyncio.gather(*(enqueue_job(store, j) for j in jobs))
    assert sum(created for _, created in results) == 1
    assert len({stored.id for stored, _ in results}) == 1


async def test_a_claimed_job_is_not_claimed_again_until_its_lease_expires(store: Store) -> None:
    job = make_job()
    await enqueue_job(store, job)
    claimed = await claim_next_job(store, "w1", NOW, 30, CONSOLE)
    assert claimed is not None and claimed.lease_owner == "w1"
    assert await claim_next_job(store, "w2", NOW + 10, 30, CONSOLE) is None
    taken = await claim_next_job(store, "w2", NOW + 31, 30, CONSOLE)
    assert taken is not None and taken.id == job.id and taken.lease_owner == "w2"


async def test_claims_only_jobs_of_the_given_platforms(store: Store) -> None:
    await enqueue_job(store, make_job(request=make_request(platform="discord")))
    assert await claim_next_job(store, "w1", NOW, 30, CONSOLE) is None
    assert await claim_next_job(store, "w1", NOW, 30, {"discord"}) is not None


async def test_concurrent_claims_never_share_a_job(store: Store) -> None:
    for _ in range(30):
        await enqueue_job(store, make_job())
    claims = await asyncio.gather(
        *(claim_next_job(store, f"w{i}", NOW, 30, CONSOLE) for i in range(40))
    )
    ids = [c.id for c in claims if c is not None]
    assert len(ids) == 30 == len(set(ids))


async def test_a_batch_claim_takes_jobs_in_the_order_single_claims_would(
    store: Store, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Three communities, two users in one of them, several jobs each: a batch of 5 leases the
    same jobs, in the same order, as 5 claims one after the other on a copy of the queue."""
    layout = [("c1", "alice"), ("c1", "alice"), ("c1", "bob"), ("c2", "carol"), ("c3", "dan")]
    layout += [("c2", "carol"), ("c1", "bob"), ("c3", "dan")]

    async def fill(target: Store) -> None:
        for n, (community, user) in enumerate(layout):
            request = make_request(community_id=community, user_id=user)
            await enqueue_job(target, make_job(id=f"j{n}", request=request, created_at=NOW + n))

    await fill(store)
    batch = await store.claim_jobs("w1", NOW + 100, 30, CONSOLE, 5)
    assert len(batch) == 5 and all(job.lease_owner == "w1" for job in batch)

    from bot.store import open_store

    path = tmp_path_factory.mktemp("single") / "single.db"
    async with open_store(f"sqlite:///{path}") as single:
        await fill(single)
        one_by_one = [await claim_next_job(single, "w1", NOW + 100, 30, CONSOLE) for _ in range(5)]
    assert [job.id for job in batch] == [job.id for job in one_by_one if job is not None]
    rest = await store.claim_jobs("w2", NOW + 101, 30, CONSOLE, 10)
    assert sorted(job.id for job in rest) == sorted(
        {f"j{n}" for n in range(len(layout))} - {job.id for job in batch}
    )
    assert await store.claim_jobs("w3", NOW + 102, 30, CONSOLE, 10) == []


async def test_save_job_step_needs_the_lease_and_the_expected_status(store: Store) -> None:
    job = make_job()
    await enqueue_job(store, job)
    claimed = await claim_next_job(store, "w1", NOW, 30, CONSOLE)
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
    await enqueue_job(store, job)
    claimed = await claim_next_job(store, "w1", NOW, 30, CONSOLE)
    assert claimed is not None
    cancelled = await store.cancel_job(job.id, NOW)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    assert cancelled.outcome_sent
    later = claimed.evolve(status=JobStatus.SUBMITTED)
    assert not await store.save_job_step(later, worker_id="w1", expected=JobStatus.QUEUED)
    assert await claim_next_job(store, "w1", NOW + 100, 30, CONSOLE) is None


async def test_delivery_keys_merge_into_the_job_and_none_removes_one(store: Store) -> None:
    job = make_job()
    await enqueue_job(store, job)
    assert await store.merge_job_delivery(job.id, {"progress_ts": "1.5", "note": "x"})
    assert await store.merge_job_delivery(job.id, {"note": None, "files": ["F1", "F2"]})
    stored = await store.get_job(job.id)
    assert stored is not None
    assert stored.delivery == {"progress_ts": "1.5", "files": ["F1", "F2"]}
    assert not await store.merge_job_delivery("no-such-job", {"progress_ts": "2.5"})


async def test_a_merged_delivery_key_survives_a_save_of_an_older_copy(store: Store) -> None:
    job = make_job()
    await enqueue_job(store, job)
    claimed = await claim_next_job(store, "w1", NOW, 30, CONSOLE)
    assert claimed is not None and claimed.delivery == {}
    # Another process records the progress message after the worker read the job.
    assert await store.merge_job_delivery(job.id, {"progress_ts": "1.5"})
    submitted = claimed.evolve(status=JobStatus.SUBMITTED, provider_task={"id": "t1"})
    assert await store.save_job_step(submitted, worker_id="w1", expected=JobStatus.QUEUED)
    delivered = submitted.evolve(
        status=JobStatus.DELIVERED, delivery={"ts": "2.5", "thread_ts": None}, outcome_sent=True
    )
    assert await store.save_job_step(delivered, worker_id="w1", expected=JobStatus.SUBMITTED)
    stored = await store.get_job(job.id)
    assert stored is not None and stored.delivery == {"progress_ts": "1.5", "ts": "2.5"}


async def test_released_job_waits_for_not_before(store: Store) -> None:
    job = make_job()
    await enqueue_job(store, job)
    await claim_next_job(store, "w1", NOW, 30, CONSOLE)
    await store.release_job(job.id, "w1", NOW + 20)
    assert await claim_next_job(store, "w1", NOW + 5, 30, CONSOLE) is None
    assert await claim_next_job(store, "w1", NOW + 21, 30, CONSOLE) is not None


async def test_leases_are_renewed_only_for_their_holder(store: Store) -> None:
    job = make_job()
    await enqueue_job(store, job)
    await claim_next_job(store, "w1", NOW, 30, CONSOLE)
    assert await store.renew_leases("w2", [job.id], NOW + 10, 30) == set()
    assert await store.renew_leases("w1", [job.id], NOW + 10, 30) == {job.id}
    assert await claim_next_job(store, "w2", NOW + 35, 30, CONSOLE) is None
    assert await store.lease_owners() == {"w1"}
    assert await store.release_leases_of("w1") == 1
    assert await claim_next_job(store, "w2", NOW + 35, 30, CONSOLE) is not None


async def test_claims_alternate_between_communities(store: Store) -> None:
    for _ in range(6):
        await enqueue_job(store, make_job(request=make_request(community_id="busy")))
    for _ in range(2):
        await enqueue_job(store, make_job(request=make_request(community_id="quiet")))
    order = []
    for i in range(4):
        claimed = await claim_next_job(store, f"w{i}", NOW, 30, CONSOLE)
        assert claimed is not None
        order.append(claimed.community_id)
    assert sorted(order[:2]) == ["busy", "quiet"]
    assert order.count("quiet") == 2


async def test_claims_alternate_between_users_of_a_community(store: Store) -> None:
    for _ in range(4):
        await enqueue_job(store, make_job(request=make_request(user_id="heavy")))
    await enqueue_job(store, make_job(request=make_request(user_id="light")))
    order = []
    for i in range(5):
        claimed = await claim_next_job(store, f"w{i}", NOW, 30, CONSOLE)
        assert claimed is not None
        order.append(claimed.request.user_id)
    assert order == ["heavy", "light", "heavy", "heavy", "heavy"]


async def test_queue_position_counts_the_jobs_ahead(store: Store) -> None:
    jobs = [make_job() for _ in range(3)]
    for job in jobs:
        await enqueue_job(store, job)
    assert [await store.queue_position(j) for j in jobs] == [0, 1, 2]
    assert await store.count_pending(CONSOLE) == 3
    counts = await store.job_counts()
    assert counts.queued == 3 and counts.running == 0


async def test_settings_round_trip(store: Store) -> None:
    assert await store.get_settings("c1") is None
    settings = CommunitySettings("c1", safety_level="strict", banned_users=("u9",))
    await save_settings(store, settings, NOW)
    assert await store.get_settings("c1") == settings
    await save_settings(store, settings.evolve(banned_users=()), NOW + 1)
    stored = await store.get_settings("c1")
    assert stored is not None and stored.banned_users == ()


# Limits, settings changes, cache and audit (issue 6) ----------------------------------------------


async def test_fifty_concurrent_requests_with_a_limit_of_five_admit_exactly_five(
    store: Store,
) -> None:
    plan = make_plan(rate=5, period=60.0)
    jobs = [make_job(now=NOW, created_at=NOW, updated_at=NOW) for _ in range(50)]
    results = await asyncio.gather(*(store.admit_job(job, plan) for job in jobs))
    admitted = [r for r in results if r.decision.admitted]
    assert len(admitted) == 5
    assert all(r.created for r in admitted)
    refused = [r for r in results if not r.decision.admitted]
    assert {r.decision.limit for r in refused} == {"user_rate"}
    assert all(r.decision.retry_at == NOW + 12.0 for r in refused)
    stored = [await store.get_job(job.id) for job in jobs]
    assert sum(job is not None for job in stored) == 5


async def test_the_daily_quota_counts_images_and_refunds_failed_jobs(store: Store) -> None:
    plan = make_plan(rate=None, period=None, daily=3)
    first = make_job(request=make_request(count=2), created_at=NOW)
    second = make_job(request=make_request(count=2), created_at=NOW + 1)
    assert (await store.admit_job(first, plan)).decision.admitted
    refused = await store.admit_job(second, plan)
    assert not refused.decision.admitted and refused.decision.limit == "user_daily"
    # The first job fails at the provider: its images are given back.
    claimed = await claim_next_job(store, "w1", NOW + 2, 30, CONSOLE)
    assert claimed is not None and claimed.id == first.id
    failed = claimed.evolve(status=JobStatus.FAILED, outcome_sent=True)
    assert await store.save_job_step(failed, worker_id="w1", expected=JobStatus.QUEUED)
    again = make_job(request=make_request(count=2), created_at=NOW + 3)
    assert (await store.admit_job(again, plan)).decision.admitted
    usage = await store.read_usage(plan, NOW + 3)
    assert usage.user_images_today == 2 and usage.user_in_flight == 1


async def test_a_replayed_event_is_neither_charged_nor_refused(store: Store) -> None:
    plan = make_plan(rate=1, period=3600.0)
    first = make_job(request=make_request(dedupe_key="console:evt-9"), created_at=NOW)
    again = make_job(request=make_request(dedupe_key="console:evt-9"), created_at=NOW + 1)
    assert (await store.admit_job(first, plan)).created
    replay = await store.admit_job(again, plan)
    assert replay.decision.admitted and not replay.created and replay.job.id == first.id


async def test_community_budget_is_summed_from_job_costs(store: Store) -> None:
    plan = make_plan(rate=None, period=None, community_budget_usd=0.10)
    for i in range(3):
        job = make_job(request=make_request(user_id=f"u{i}"), created_at=NOW + i, cost_usd=0.03)
        assert (await store.admit_job(job, plan)).decision.admitted
    over = make_job(request=make_request(user_id="u9"), created_at=NOW + 5, cost_usd=0.03)
    decision = (await store.admit_job(over, plan)).decision
    assert not decision.admitted and decision.limit == "community_budget"
    usage = await store.read_usage(plan, NOW + 5)
    assert abs(usage.community_spent_usd - 0.09) < 1e-9


async def test_max_in_flight_counts_unfinished_jobs(store: Store) -> None:
    plan = make_plan(rate=None, period=None, max_in_flight=2)
    assert (await store.admit_job(make_job(created_at=NOW), plan)).decision.admitted
    assert (await store.admit_job(make_job(created_at=NOW + 1), plan)).decision.admitted
    third = await store.admit_job(make_job(created_at=NOW + 2), plan)
    assert third.decision.limit == "user_in_flight"


async def test_change_settings_is_atomic_and_audited(store: Store) -> None:
    def add_term(term: str) -> Callable[[CommunitySettings | None], CommunitySettings]:
        def change(current: CommunitySettings | None) -> CommunitySettings:
            base = current or CommunitySettings("c1")
            return base.evolve(blocked_terms=(*base.blocked_terms, term))

        return change

    entries = [
        AuditEntry("c1", NOW + i, "admin", "change", "block_term", f"t{i}") for i in range(10)
    ]
    await asyncio.gather(
        *(store.change_settings("c1", add_term(f"t{i}"), entries[i]) for i in range(10))
    )
    stored = await store.get_settings("c1")
    assert stored is not None and sorted(stored.blocked_terms) == [f"t{i}" for i in range(10)]
    log = await store.list_audit("c1", 5)
    assert len(log) == 5 and all(e.action == "block_term" for e in log)
    ids = [e.id for e in log]
    assert ids == sorted(ids, reverse=True)  # newest first

    def refuse(current: CommunitySettings | None) -> CommunitySettings:
        raise ValueError("no")

    with pytest.raises(ValueError):
        await store.change_settings("c1", refuse, entries[0])
    assert len(await store.list_audit("c1", 100)) == 10


async def test_cached_jobs_are_found_only_when_delivered(store: Store) -> None:
    plan = make_plan(rate=None, period=None)
    job = make_job(created_at=NOW)
    await store.admit_job(job, plan, cache_key="k1")
    assert await store.find_cached_job("c1", "k1") is None
    claimed = await claim_next_job(store, "w1", NOW, 30, CONSOLE)
    assert claimed is not None
    done = claimed.evolve(status=JobStatus.DELIVERED, images=("x/1.png",), outcome_sent=True)
    assert await store.save_job_step(done, worker_id="w1", expected=JobStatus.QUEUED)
    found = await store.find_cached_job("c1", "k1")
    assert found is not None and found.id == job.id and found.images == ("x/1.png",)
    assert await store.find_cached_job("c2", "k1") is None


async def test_an_identical_request_in_flight_becomes_a_follower(store: Store) -> None:
    plan = make_plan(rate=None, period=None)
    leader = make_job(created_at=NOW, cost_usd=0.03)
    assert (await store.admit_job(leader, plan, "k", share_in_flight=True)).job == leader
    second = await store.admit_job(make_job(created_at=NOW + 1, cost_usd=0.03), plan, "k",
                                   share_in_flight=True)  # fmt: skip
    assert second.job.provider == "cache" and second.job.provider_task == {"follows": leader.id}
    assert second.job.cost_usd == 0.0
    stored = await store.get_job(second.job.id)
    assert stored is not None and stored.provider_task == {"follows": leader.id}
    # Without sharing, or with another key, a job stands alone.
    alone = await store.admit_job(make_job(created_at=NOW + 2), plan, "k")
    other = await store.admit_job(make_job(created_at=NOW + 3), plan, "k2", share_in_flight=True)
    assert alone.job.provider is None and other.job.provider is None
    # Once the leader has finished, nothing follows it any more.
    await store.cancel_job(leader.id, NOW + 4)
    third = await store.admit_job(make_job(created_at=NOW + 5), plan, "k", share_in_flight=True)
    assert third.job.provider_task == {"follows": alone.job.id}


async def test_a_second_job_with_a_stored_id_is_a_store_error(store: Store) -> None:
    first = make_job()
    await enqueue_job(store, first)
    again = make_job(id=first.id, request=make_request(user_id="u2"))
    with pytest.raises(StoreError):
        await enqueue_job(store, again)
    assert await store.get_job(first.id) == first
    other = make_job()
    assert await enqueue_job(store, other) == (other, True)


async def test_an_unfinished_job_from_an_earlier_day_is_in_flight_but_not_charged_today(
    store: Store,
) -> None:
    plan = make_plan(rate=None, period=None)
    yesterday = make_job(request=make_request(count=4), created_at=NOW - 86_400)
    assert (await store.admit_job(yesterday, plan)).decision.admitted
    today = make_job(request=make_request(count=3), created_at=NOW)
    assert (await store.admit_job(today, plan)).decision.admitted
    usage = await store.read_usage(plan, NOW)
    assert (usage.user_images_today, usage.user_in_flight) == (3, 2)
    assert usage.community_images_today == 3


async def test_preferences_are_stored_per_platform_and_user(store: Store) -> None:
    assert await store.get_preferences("discord", "u1") is None
    prefs = Preferences(model="max", aspect="16:9", count=2, private=True, suffix="in watercolor")
    await store.save_preferences("discord", "u1", prefs, NOW)
    assert await store.get_preferences("discord", "u1") == prefs
    assert await store.get_preferences("slack", "u1") is None
    assert await store.get_preferences("discord", "u2") is None
    changed = prefs.evolve(private=False, suffix=None)
    await store.save_preferences("discord", "u1", changed, NOW + 1)
    assert await store.get_preferences("discord", "u1") == changed
    await store.save_preferences("discord", "u1", Preferences(), NOW + 2)  # /prefer reset
    assert await store.get_preferences("discord", "u1") is None


async def test_a_users_jobs_newest_first_in_every_community_and_only_theirs(store: Store) -> None:
    mine = [
        make_job(request=make_request(platform="discord", user_id="u1", community_id=c))
        for c in ("g1", "personal", "g2")
    ]
    for job in mine:
        await enqueue_job(store, job)
    await enqueue_job(store, make_job(request=make_request(platform="discord", user_id="u2")))
    await enqueue_job(store, make_job(request=make_request(platform="slack", user_id="u1")))
    listed = await store.list_user_jobs("discord", "u1", 10)
    assert [j.id for j in listed] == [j.id for j in reversed(mine)]
    assert [j.id for j in await store.list_user_jobs("discord", "u1", 2)] == [
        mine[2].id,
        mine[1].id,
    ]


# The audit log's pages and the dashboard's reports (issue 21) --------------------------------------

DAY = int(NOW // 86_400)


async def test_audit_entries_keep_their_origin_and_pages_filter_by_actor_and_kind(
    store: Store,
) -> None:
    layout = [("a1", "change", "dashboard"), ("a2", "denied", ""), ("a1", "denied", "dashboard")]
    for i in range(12):
        actor, kind, origin = layout[i % 3]
        entry = AuditEntry("c1", NOW + i, actor, kind, "set_daily", f"e{i}", origin=origin)
        await store.add_audit(entry)
    await store.add_audit(AuditEntry("c2", NOW, "a1", "change", "set_daily", "elsewhere"))
    newest = await store.list_audit("c1", 1)
    assert [(e.detail, e.origin) for e in newest] == [("e11", "dashboard")]

    first = await store.search_audit(AuditQuery("c1", limit=5))
    assert [e.detail for e in first] == ["e11", "e10", "e9", "e8", "e7"]
    second = await store.search_audit(AuditQuery("c1", limit=5, before_id=first[-1].id))
    assert [e.detail for e in second] == ["e6", "e5", "e4", "e3", "e2"]
    last = await store.search_audit(AuditQuery("c1", limit=5, before_id=second[-1].id))
    assert [e.detail for e in last] == ["e1", "e0"]

    mine = await store.search_audit(AuditQuery("c1", limit=50, actor_id="a1"))
    assert len(mine) == 8 and {e.actor_id for e in mine} == {"a1"}
    denied = await store.search_audit(AuditQuery("c1", limit=50, actor_id="a1", kind="denied"))
    assert [e.detail for e in denied] == ["e11", "e8", "e5", "e2"]
    assert all(e.origin == "dashboard" for e in denied)
    assert [e.origin for e in await store.search_audit(AuditQuery("c1", kind="denied",
                                                                  actor_id="a2"))] == [""] * 4  # fmt: skip
    assert [e.detail for e in await store.search_audit(AuditQuery("c2"))] == ["elsewhere"]
    assert await store.search_audit(AuditQuery("c9")) == []


async def test_usage_by_day_and_top_users_count_charged_images_only(store: Store) -> None:
    def job(user: str, count: int, cost: float, at: float, community: str = "c1") -> str:
        request = make_request(user_id=user, count=count, community_id=community)
        made = make_job(request=request, created_at=at, cost_usd=cost)
        jobs.append(made)
        return made.id

    jobs: list[Job] = []
    job("u1", 1, 0.03, NOW - 86_400)  # yesterday
    job("u1", 2, 0.06, NOW)
    job("u3", 1, 0.01, NOW + 60)
    refunded = job("u2", 4, 0.12, NOW + 30)  # cancelled before it was submitted: not charged
    job("u1", 3, 0.09, NOW - 10 * 86_400)  # before the window
    job("u4", 2, 0.06, NOW, community="c2")
    for made in jobs:
        await enqueue_job(store, made)
    await store.cancel_job(refunded, NOW + 31)

    since = (DAY - 1) * 86_400.0
    days = await store.usage_by_day("c1", since)
    assert [(d.day, d.images) for d in days] == [(DAY - 1, 1), (DAY, 3)]
    assert [d.spend_usd for d in days] == pytest.approx([0.03, 0.07])
    assert all(isinstance(d, DayUsage) for d in days)
    assert await store.usage_by_day("c1", NOW + 3600) == []

    top = await store.top_users("c1", since, 10)
    assert [(u.user_id, u.images) for u in top] == [("u1", 3), ("u3", 1)]
    assert top[0].spend_usd == pytest.approx(0.09)
    assert await store.top_users("c1", since, 1) == [top[0]]
    assert await store.top_users("c2", since, 10) == [UserUsage("u4", 2, pytest.approx(0.06))]


async def test_refusals_are_counted_by_reason_since_a_time(store: Store) -> None:
    for action in ("user_daily", "user_daily", "blocked_term"):
        await store.add_audit(AuditEntry("c1", NOW, "u1", "refusal", action, "refused"))
    await store.add_audit(AuditEntry("c1", NOW - 86_400, "u1", "refusal", "banned", "old"))
    await store.add_audit(AuditEntry("c1", NOW, "a1", "change", "set_daily", "not a refusal"))
    await store.add_audit(AuditEntry("c2", NOW, "u2", "refusal", "banned", "elsewhere"))
    counts = await store.refusals_by_reason("c1", NOW - 60)
    assert counts == {"user_daily": 2, "blocked_term": 1}
    assert list(counts) == ["user_daily", "blocked_term"]  # most refusals first
    assert await store.refusals_by_reason("c3", 0.0) == {}


async def test_community_job_counts_split_waiting_from_running(store: Store) -> None:
    assert await store.community_job_counts("c1") == JobCounts(queued=0, running=0)
    for _ in range(3):
        await enqueue_job(store, make_job(created_at=NOW))
    await enqueue_job(store, make_job(request=make_request(community_id="c2"), created_at=NOW))
    done = make_job(created_at=NOW)
    await enqueue_job(store, done)
    await store.cancel_job(done.id, NOW)
    claimed = await claim_next_job(store, "w1", NOW, 30, CONSOLE)
    assert claimed is not None and claimed.community_id == "c1"
    assert await store.community_job_counts("c1") == JobCounts(queued=2, running=1)
    assert await store.community_job_counts("c2") == JobCounts(queued=1, running=0)


async def test_spend_by_provider_and_each_providers_newest_error(store: Store) -> None:
    def stored(**values: object) -> None:
        jobs.append(make_job(**values))

    jobs: list[Job] = []
    stored(provider="bfl", cost_usd=0.03, created_at=NOW, updated_at=NOW)
    stored(provider="bfl", cost_usd=0.03, created_at=NOW, updated_at=NOW,
           error_code="provider_error", error_message="older", status=JobStatus.FAILED)  # fmt: skip
    stored(provider="bfl", cost_usd=0.0, created_at=NOW, updated_at=NOW + 10,
           error_code="timeout", error_message="newest", status=JobStatus.FAILED)  # fmt: skip
    stored(provider="fal", cost_usd=0.10, created_at=NOW, updated_at=NOW,
           request=make_request(community_id="c2"), error_code="moderated",
           status=JobStatus.FAILED)  # fmt: skip
    stored(provider="together", cost_usd=0.02, created_at=NOW - 86_400,
           updated_at=NOW - 86_400, error_code="old", status=JobStatus.FAILED)  # fmt: skip
    stored(provider="cache", created_at=NOW, updated_at=NOW, error_code="follower_failed",
           status=JobStatus.FAILED)  # fmt: skip
    stored(created_at=NOW, updated_at=NOW)  # never submitted: no provider
    for made in jobs:
        await enqueue_job(store, made)

    spend = await store.spend_by_provider(NOW - 60)
    assert [(s.provider, s.images) for s in spend] == [("fal", 1), ("bfl", 3), ("cache", 1)]
    assert [s.spend_usd for s in spend] == pytest.approx([0.10, 0.06, 0.0])

    errors = sorted(await store.last_provider_errors(NOW - 60), key=lambda e: e.provider)
    assert errors == [
        ProviderError("bfl", "timeout", "newest", NOW + 10),
        ProviderError("fal", "moderated", "", NOW),
    ]
