"""What only the SQLite store has to show: its connections live on threads of their own."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.errors import StoreError
from bot.limits import LimitPlan
from bot.store.base import job_row_values, load_migrations
from bot.store.sqlite import SqliteStore
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
