"""What only PostgreSQL has to show: several processes (here: several pools) on one database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.domain.errors import StoreError
from bot.domain.limits import LimitPlan
from bot.domain.models import JobStatus
from bot.store import Store, open_store
from bot.store.rows import job_row_values
from bot.store.sql import load_migrations
from tests.factories import make_job, make_request
from tests.pg import connect, private_schema
from tests.store_helpers import claim_next_job, enqueue_job

pytestmark = pytest.mark.postgres

NOW = 1_700_000_000.0
CONSOLE = {"console"}


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with private_schema() as schema_url:
        yield schema_url


async def test_two_processes_never_claim_the_same_job(url: str) -> None:
    async with open_store(url) as first, open_store(url) as second:
        for n in range(120):
            await enqueue_job(first, make_job(request=make_request(user_id=f"u{n % 7}")))

        async def drain(store: Store, worker: str) -> list[str]:
            claimed: list[str] = []
            while (job := await claim_next_job(store, worker, NOW, 30, CONSOLE)) is not None:
                claimed.append(job.id)
            return claimed

        results = await asyncio.gather(
            *(drain(first, f"a{i}") for i in range(6)),
            *(drain(second, f"b{i}") for i in range(6)),
        )
    ids = [job_id for claimed in results for job_id in claimed]
    assert len(ids) == 120 == len(set(ids))


async def test_a_dead_workers_job_is_taken_over_after_its_lease(url: str) -> None:
    async with open_store(url) as alive, open_store(url) as dying:
        job = make_job()
        await enqueue_job(alive, job)
        held = await claim_next_job(dying, "dead", NOW, 30, CONSOLE)
        assert held is not None
    # The dying process is gone; its lease is still in the table until it expires.
    async with open_store(url) as alive:
        assert await claim_next_job(alive, "live", NOW + 29, 30, CONSOLE) is None
        taken = await claim_next_job(alive, "live", NOW + 31, 30, CONSOLE)
        assert taken is not None and taken.id == job.id and taken.lease_owner == "live"
        late = held.evolve(status=JobStatus.SUBMITTED, provider_task={"id": "t"})
        assert not await alive.save_job_step(late, worker_id="dead", expected=JobStatus.QUEUED)
        assert await alive.renew_leases("dead", [job.id], NOW + 32, 30) == set()


async def test_processes_starting_together_apply_each_migration_once(url: str) -> None:
    async def start() -> None:
        async with open_store(url) as store:
            await store.ping()

    await asyncio.gather(*(start() for _ in range(5)))
    conn = await connect(url)
    try:
        versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")]
    finally:
        await conn.close()
    assert versions == sorted(set(versions)) and versions[0] == 1


async def test_a_job_queued_by_one_process_wakes_the_other(url: str) -> None:
    wakeups: list[int] = []
    woken = asyncio.Event()

    def wake() -> None:
        wakeups.append(1)
        woken.set()

    async with private_schema() as other_url, open_store(url) as worker_side:
        assert await worker_side.listen_for_work(wake)
        async with open_store(other_url) as unrelated:
            await enqueue_job(unrelated, make_job())
        async with open_store(url) as gateway_side:
            await enqueue_job(gateway_side, make_job())
        await asyncio.wait_for(woken.wait(), timeout=10)
    # Notifications arrive in commit order: the other schema's would have come first.
    assert len(wakeups) == 1, "a job of another bot sharing the database woke this one"


async def test_a_lost_listen_connection_comes_back(url: str) -> None:
    woken = asyncio.Event()
    async with open_store(url) as store, open_store(url) as other:
        assert await store.listen_for_work(woken.set)
        conn = await connect(url)
        try:
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1",
                f"imagine-bot listen {url.rsplit('=', 1)[1]}",
            )
        finally:
            await conn.close()
        assert killed == 1
        # The reconnect itself wakes the workers: something may have been queued meanwhile.
        await asyncio.wait_for(woken.wait(), timeout=15)
        woken.clear()
        await enqueue_job(other, make_job())
        await asyncio.wait_for(woken.wait(), timeout=10)


async def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        async with open_store("postgresql://bot:s3cret-pw@127.0.0.1:1/imagine"):
            pass
    assert "cannot connect to PostgreSQL" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)


async def test_jobs_stored_before_the_image_count_column_are_counted_by_their_request(
    url: str,
) -> None:
    job = make_job(request=make_request(count=3), created_at=NOW)
    conn = await connect(url)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at FLOAT8)"
        )
        for version, sql in load_migrations("postgres")[:2]:
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations VALUES ($1, 0)", version)
        values = {k: v for k, v in job_row_values(job).items() if k != "image_count"}
        names = ", ".join(values)
        numbers = ", ".join(f"${n}" for n in range(1, len(values) + 1))
        await conn.execute(f"INSERT INTO jobs ({names}) VALUES ({numbers})", *values.values())
    finally:
        await conn.close()
    async with open_store(url) as store:
        plan = LimitPlan("c1", "u1", None, None, None, None, None, None, None)
        usage = await store.read_usage(plan, NOW + 1)
        assert (usage.user_images_today, usage.community_images_today) == (3, 3)
        assert await store.get_job(job.id) == job
