"""What only the SQLite store has to show: aiosqlite connections (each on a thread of its own),
one writer taking one transaction at a time, and errors that fail only the call that met them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.domain.community import AuditEntry
from bot.domain.errors import StoreError
from bot.domain.limits import LimitPlan
from bot.domain.models import CommunitySettings, JobStatus
from bot.store.rows import job_row_values
from bot.store.sql import load_migrations
from bot.store.sqlite import SqliteStore
from tests.factories import make_job, make_request
from tests.store_helpers import claim_next_job, enqueue_job, save_settings

NOW = 1_700_000_000.0


async def test_a_path_that_cannot_hold_a_database_is_a_clear_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    before = set(threading.enumerate())
    with pytest.raises(StoreError) as caught:
        await SqliteStore.open(f"sqlite:///{blocker}/imagine.db")
    assert "cannot open the SQLite database at" in str(caught.value)
    assert str(blocker) in str(caught.value)
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=10)
        assert not thread.is_alive(), thread.name


async def test_a_database_file_that_is_not_sqlite_is_a_clear_store_error(tmp_path: Path) -> None:
    path = tmp_path / "imagine.db"
    path.write_bytes(b"this is not a database file, just some text long enough" * 100)
    with pytest.raises(StoreError) as caught:
        await SqliteStore.open(f"sqlite:///{path}")
    assert "file is not a database" in str(caught.value)


async def test_a_closed_store_refuses_calls_and_leaves_no_thread_behind(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    store = await SqliteStore.open(f"sqlite:///{tmp_path / 'imagine.db'}")
    job = make_job()
    await enqueue_job(store, job)
    threads = set(threading.enumerate()) - before
    assert len(threads) == 2  # aiosqlite's threads of the writer and the reader connection
    await store.aclose()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive(), thread.name
    with pytest.raises(StoreError, match="closed"):
        await store.get_job(job.id)
    await store.aclose()  # closing twice is harmless


async def test_the_memory_database_serves_reads_and_writes_on_one_connection() -> None:
    store = await SqliteStore.open("sqlite:///:memory:")
    try:
        job = make_job()
        await enqueue_job(store, job)
        assert await store.get_job(job.id) == job
    finally:
        await store.aclose()


async def test_jobs_stored_before_the_image_count_column_are_counted_by_their_request(
    tmp_path: Path,
) -> None:
    path = tmp_path / "imagine.db"
    job = make_job(request=make_request(count=3), created_at=NOW)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
        for version, sql in load_migrations("sqlite")[:2]:
            db.executescript(sql)
            db.execute("INSERT INTO schema_migrations VALUES (?, 0)", (version,))
        values = {k: v for k, v in job_row_values(job).items() if k != "image_count"}
        names = ", ".join(values)
        db.execute(f"INSERT INTO jobs ({names}) VALUES (:{', :'.join(values)})", values)
    store = await SqliteStore.open(f"sqlite:///{path}")
    try:
        plan = LimitPlan("c1", "u1", None, None, None, None, None, None, None)
        usage = await store.read_usage(plan, NOW + 1)
        assert (usage.user_images_today, usage.community_images_today) == (3, 3)
        assert await store.get_job(job.id) == job
    finally:
        await store.aclose()


# The claim order as one sort of every claimable job (the query the store used before it learnt
# to pick the community, then the user, then the job through jobs_claim).
FAIR_ORDER_BY_ONE_SORT = """
SELECT j.id FROM jobs AS j
LEFT JOIN dispatch AS dc ON dc.key = 'c:' || j.community_id
LEFT JOIN dispatch AS du ON du.key = 'u:' || j.community_id || ':' || j.user_id
WHERE j.outcome_sent = 0
  AND j.platform IN (SELECT value FROM json_each(:platforms))
  AND j.not_before <= :now
  AND (j.lease_expires_at IS NULL OR j.lease_expires_at < :now)
ORDER BY COALESCE(dc.last_claim, 0), COALESCE(du.last_claim, 0), j.created_at
LIMIT 1
"""


@pytest.mark.parametrize("seed", range(4))
async def test_claims_follow_the_fair_order_of_one_sort_of_all_pending_jobs(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    path = tmp_path / "imagine.db"
    store = await SqliteStore.open(f"sqlite:///{path}")
    reference = sqlite3.connect(path)
    try:
        ages = list(range(160))
        rng.shuffle(ages)
        for age in ages:
            request = make_request(
                community_id=rng.choice(["c1", "c2", "c10", "b", "z:9"]),
                user_id=rng.choice([f"u{n}" for n in range(7)]),
                platform=rng.choice(["console", "console", "discord"]),
            )
            job = make_job(
                request=request, created_at=NOW - 1000 + age, not_before=NOW + rng.randint(-5, 40)
            )
            await enqueue_job(store, job)
        now, held = NOW, []
        for step in range(220):
            now += rng.choice([0, 0, 1, 5, 20])
            platforms = rng.choice([{"console"}, {"discord"}, {"console", "discord"}])
            params = {"now": now, "platforms": json.dumps(sorted(platforms))}
            expected = reference.execute(FAIR_ORDER_BY_ONE_SORT, params).fetchone()
            claimed = await claim_next_job(store, f"w{step}", now, 30, platforms)
            assert (claimed.id if claimed else None) == (expected[0] if expected else None)
            if claimed is not None:
                held.append(claimed)
            if held and rng.random() < 0.5:
                job = held.pop(rng.randrange(len(held)))
                if rng.random() < 0.5:
                    await store.release_job(job.id, job.lease_owner or "", now + rng.randint(0, 10))
                else:
                    done = job.evolve(status=JobStatus.DELIVERED, outcome_sent=True)
                    await store.save_job_step(
                        done, worker_id=job.lease_owner or "", expected=job.status
                    )
        assert await store.count_pending({"console", "discord"}) < 160
    finally:
        reference.close()
        await store.aclose()


@pytest.mark.parametrize("seed", range(4))
async def test_batch_claims_take_what_as_many_single_claims_would(
    tmp_path: Path, seed: int
) -> None:
    """Two copies of one queue (communities, users, platforms, not-before times drawn at random):
    one claimed in batches of random sizes, the other one job at a time; the same jobs come out
    in the same order, batch after batch, with the dispatch order left the same."""
    rng = random.Random(seed)
    stores = [await SqliteStore.open(f"sqlite:///{tmp_path / f'{n}.db'}") for n in (1, 2)]
    batched, single = stores
    try:
        for n in range(120):
            request = make_request(
                community_id=rng.choice(["c1", "c2", "c3"]),
                user_id=rng.choice([f"u{n}" for n in range(6)]),
                platform=rng.choice(["console", "console", "discord"]),
            )
            job = make_job(
                id=f"j{n}",
                request=request,
                created_at=NOW - 1000 + rng.random() * 100,
                not_before=NOW + rng.randint(-5, 30),
            )
            for store in stores:
                await enqueue_job(store, job)
        now = NOW
        for step in range(40):
            now += rng.choice([0, 1, 5])
            size = rng.randint(1, 12)
            platforms = rng.choice([{"console"}, {"console", "discord"}])
            batch = await batched.claim_jobs(f"w{step}", now, 300, platforms, size)
            one_by_one = []
            for _ in range(size):
                job = await claim_next_job(single, f"w{step}", now, 300, platforms)
                if job is None:
                    break
                one_by_one.append(job)
            assert [job.id for job in batch] == [job.id for job in one_by_one]
            assert all(job.lease_owner == f"w{step}" for job in batch)
            for job in batch[: rng.randint(0, len(batch))]:  # some finish, on both copies
                done = job.evolve(status=JobStatus.DELIVERED, outcome_sent=True)
                for store in stores:
                    assert await store.save_job_step(
                        done, worker_id=f"w{step}", expected=job.status
                    )
        orders = []
        for store in stores:
            async with store._reading() as sql:
                rows = await sql.raw("SELECT key FROM dispatch ORDER BY last_claim")
            orders.append([row[0] for row in rows])
        assert orders[0] == orders[1] and len(orders[0]) > 3
    finally:
        for store in stores:
            await store.aclose()


async def test_a_write_that_fills_the_disk_fails_alone_and_the_store_carries_on(
    tmp_path: Path,
) -> None:
    """SQLite may roll a whole transaction back itself (disk full, I/O error): that write fails
    with a StoreError, the writes around it are kept, and the next write starts cleanly."""
    store = await SqliteStore.open(f"sqlite:///{tmp_path / 'imagine.db'}")
    try:
        before = make_job()
        await enqueue_job(store, before)
        writer = store._writer
        [(pages,)] = await writer.execute_fetchall("PRAGMA page_count")
        await writer.execute(f"PRAGMA max_page_count = {pages}")
        huge = CommunitySettings("c1", blocked_terms=tuple(f"term{n:06d}" for n in range(20_000)))
        with pytest.raises(StoreError, match="full"):
            await save_settings(store, huge, NOW)
        await writer.execute("PRAGMA max_page_count = 1073741823")
        after = make_job()
        assert await enqueue_job(store, after) == (after, True)
        await save_settings(store, huge, NOW)
        assert await store.get_job(before.id) == before
        stored = await store.get_settings("c1")
        assert stored is not None and len(stored.blocked_terms) == 20_000
    finally:
        await store.aclose()


async def test_a_cancelled_write_leaves_no_transaction_open(tmp_path: Path) -> None:
    store = await SqliteStore.open(f"sqlite:///{tmp_path / 'imagine.db'}")
    try:
        jobs = [make_job() for _ in range(20)]
        tasks = [asyncio.ensure_future(enqueue_job(store, job)) for job in jobs]
        await asyncio.sleep(0)
        for task in tasks[::2]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stored = [await store.get_job(job.id) for job in jobs]
        # Each job is stored whole or not at all, and the writer takes new work afterwards.
        assert all(s is None or s == j for s, j in zip(stored, jobs, strict=True))
        late = make_job()
        assert await enqueue_job(store, late) == (late, True)
    finally:
        await store.aclose()


async def test_concurrent_changes_that_fail_leave_the_others_committed(tmp_path: Path) -> None:
    def add_term(term: str) -> Callable[[CommunitySettings | None], CommunitySettings]:
        def change(current: CommunitySettings | None) -> CommunitySettings:
            if term.endswith("!"):
                raise ValueError(term)
            base = current or CommunitySettings("c1")
            return base.evolve(blocked_terms=(*base.blocked_terms, term))

        return change

    terms = [f"t{i}!" if i % 3 == 0 else f"t{i}" for i in range(30)]
    store = await SqliteStore.open(f"sqlite:///{tmp_path / 'imagine.db'}")
    try:
        results = await asyncio.gather(
            *(
                store.change_settings(
                    "c1", add_term(term), AuditEntry("c1", NOW, "admin", "change", "block", term)
                )
                for term in terms
            ),
            *(enqueue_job(store, make_job()) for _ in range(10)),
            return_exceptions=True,
        )
        assert [isinstance(r, ValueError) for r in results[:30]] == [t.endswith("!") for t in terms]
        assert all(isinstance(r, tuple) and r[1] for r in results[30:])
        stored = await store.get_settings("c1")
        kept = sorted(t for t in terms if not t.endswith("!"))
        assert stored is not None and sorted(stored.blocked_terms) == kept
        audit = await store.list_audit("c1", 100)
        assert sorted(entry.detail for entry in audit) == kept
        assert (await store.job_counts()).queued == 10
    finally:
        await store.aclose()
