"""What only the SQLite store has to show: its connections live on threads of their own."""

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
from bot.store.base import job_row_values, load_migrations
from bot.store.sqlite import SqliteStore
from bot.store.sqlite_thread import commit_group
from tests.factories import make_job, make_request

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
    await store.enqueue_job(job)
    threads = set(threading.enumerate()) - before
    assert {t.name.split("_")[0] for t in threads} == {"sqlite-writer", "sqlite-reader"}
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
        await store.enqueue_job(job)
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
            await store.enqueue_job(job)
        now, held = NOW, []
        for step in range(220):
            now += rng.choice([0, 0, 1, 5, 20])
            platforms = rng.choice([{"console"}, {"discord"}, {"console", "discord"}])
            params = {"now": now, "platforms": json.dumps(sorted(platforms))}
            expected = reference.execute(FAIR_ORDER_BY_ONE_SORT, params).fetchone()
            claimed = await store.claim_next_job(f"w{step}", now, 30, platforms)
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


def _table(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE t (name TEXT PRIMARY KEY)")
    return db


def _insert(name: str, calls: list[str] | None = None) -> Callable[[sqlite3.Connection], str]:
    def work(db: sqlite3.Connection) -> str:
        if calls is not None:
            calls.append(name)
        db.execute("INSERT INTO t VALUES (?)", (name,))
        return name

    return work


def test_a_failing_write_in_a_shared_commit_undoes_only_its_own_part(tmp_path: Path) -> None:
    def insert_then_fail(db: sqlite3.Connection) -> str:
        db.execute("INSERT INTO t VALUES ('b')")
        raise ValueError("refused")

    with contextlib.closing(_table(tmp_path / "t.db")) as db:
        outcomes = commit_group(db, [_insert("a"), insert_then_fail, _insert("a"), _insert("c")])
        assert [o.result for o in outcomes] == ["a", None, None, "c"]
        assert isinstance(outcomes[1].error, ValueError)
        assert isinstance(outcomes[2].error, sqlite3.IntegrityError)  # "a" was already there
        assert sorted(r[0] for r in db.execute("SELECT name FROM t")) == ["a", "c"]
        assert not db.in_transaction


def test_writes_of_a_lost_shared_transaction_are_run_again(tmp_path: Path) -> None:
    def lose_the_transaction(db: sqlite3.Connection) -> str:
        db.execute("ROLLBACK")  # as SQLite does itself on a full disk or an I/O error
        raise sqlite3.OperationalError("database or disk is full")

    calls: list[str] = []
    with contextlib.closing(_table(tmp_path / "t.db")) as db:
        works = [_insert("a", calls), lose_the_transaction, _insert("c", calls)]
        outcomes = commit_group(db, works)
        assert [o.result for o in outcomes] == ["a", None, "c"]
        assert isinstance(outcomes[1].error, sqlite3.OperationalError)
        assert calls == ["a", "a", "c"]
        assert sorted(r[0] for r in db.execute("SELECT name FROM t")) == ["a", "c"]


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
            *(store.enqueue_job(make_job()) for _ in range(10)),
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
