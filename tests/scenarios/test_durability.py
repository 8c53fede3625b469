"""Crash, restart, durability (RELIABILITY.md 21-25), the parts that run inside one process:
SQLite under concurrent commands (24) and a deep queue (25). The process-level ones (21-23) are in
``test_processes.py``."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import aiohttp

from adapters.slack import create_adapter
from bot.domain.clock import ManualClock
from bot.domain.models import JobStatus, ReplyTarget, dumps
from bot.providers.offline import OfflineProvider
from bot.providers.router import Router
from bot.store.rows import job_row_values
from bot.store.sql import load_queries
from bot.store.sqlite import SqliteStore
from tests.factories import make_job, make_request
from tests.fakes.slack import FakeSlack, form_body, signed_headers
from tests.scenarios.conftest import LogCapture, RecordingPort, opened_app, settle
from tests.store_helpers import enqueue_job

SECRET = "reliability-signing-secret-7d1e"
TOKEN = "xoxb-reliability-000000000000"
GENEROUS = {
    "IMAGINE_USER_RATE": "1000/minute",
    "IMAGINE_USER_MAX_IN_FLIGHT": "1000",
    "IMAGINE_USER_DAILY": "off",
}


def _command(fake: FakeSlack, n: int) -> bytes:
    trigger = f"{n}.1790000000.s24{n:04d}"
    return form_body(
        {
            "token": "legacy",
            "team_id": "T1",
            "team_domain": "fake",
            "channel_id": "C1",
            "channel_name": "general",
            "user_id": f"U{n % 7}",
            "user_name": "someone",
            "command": "/imagine",
            "text": f"a lighthouse number {n} --size 64x64",
            "api_app_id": "A1",
            "response_url": fake.response_url(trigger),
            "trigger_id": trigger,
        }
    )


async def test_s24_sqlite_under_50_concurrent_commands_is_never_locked(
    data_dir: Path, bot_logs: LogCapture
) -> None:
    """50 signed Slack commands at once on the bot's own server, workers running, and a second
    connection to the same file (another process, e.g. ``imagine-bot imagine``) queueing 20 more:
    every command gets its job and its image, and no "database is locked" anywhere."""
    fake = await FakeSlack(TOKEN).start()
    clock = ManualClock(start=1_790_000_000.0)
    try:
        async with opened_app(
            data_dir,
            clock=clock,
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=fake.api_url,
            IMAGINE_HTTP_PORT="0",
            IMAGINE_WORKERS="8",
            **GENEROUS,
        ) as app:
            adapter = create_adapter(app, gateway=True)
            adapter.attach()
            console = RecordingPort()
            app.add_delivery("console", console)
            port = await app.http_server.start()
            await app.start_workers()
            url = f"http://127.0.0.1:{port}/slack/events"
            other = await SqliteStore.open(f"sqlite:///{data_dir / 'imagine.db'}")

            async def command(n: int) -> int:
                body = _command(fake, n)
                headers = signed_headers(SECRET, body, timestamp=clock.now())
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                    return response.status

            async def other_process(n: int) -> None:
                request = make_request(
                    community_id="cli", user_id=f"op{n}", dedupe_key=f"console:other-{n}"
                )
                await enqueue_job(
                    other, make_job(now=clock.now(), request=request, seed=n, width=64, height=64)
                )

            try:
                async with aiohttp.ClientSession() as http:
                    results = await asyncio.gather(
                        *(command(n) for n in range(50)), *(other_process(n) for n in range(20))
                    )
                app.events.work_available()
                await adapter.drain()
                await settle(app, {"slack", "console"}, timeout=60)
            finally:
                await other.aclose()
                await adapter.aclose()
            statuses = [s for s in results if s is not None]
            assert statuses == [200] * 50
            with contextlib.closing(sqlite3.connect(data_dir / "imagine.db")) as db:
                rows = db.execute("SELECT platform, status FROM jobs").fetchall()
    finally:
        await fake.aclose()
    assert sorted(rows) == sorted([("slack", "delivered")] * 50 + [("console", "delivered")] * 20)
    assert len(console.delivered) == 20
    uploads = [c for c in fake.calls if c.method == "files.completeUploadExternal"]
    assert len(uploads) == 50
    assert "locked" not in bot_logs.text.lower()
    assert "busy" not in bot_logs.text.lower()


QUEUED = 10_000


def _fill_queue(path: Path, now: float) -> None:
    """10,000 queued jobs of one busy community, written straight into the file (setup only)."""
    query = load_queries("sqlite")["insert_job"]
    template = dict(job_row_values(make_job(now=now, width=64, height=64)))
    rows = []
    for n in range(QUEUED):
        request = make_request(community_id="busy", user_id=f"u{n % 50}", dedupe_key=f"q-{n}")
        row = dict(template, id=f"backlog{n:05d}", dedupe_key=request.dedupe_key)
        row.update(community_id="busy", user_id=request.user_id, seed=n)
        row.update(request_json=dumps(request.to_json()), created_at=now - 60 + n / 1000)
        rows.append(row)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executemany(query, rows)


async def test_s25_ten_thousand_queued_jobs_keep_admission_indexed_and_intake_bounded(
    data_dir: Path,
) -> None:
    """With 10,000 jobs queued: a new command is admitted at once with its true position, the
    queries admission runs stay on indexes (no scan of the queue per command), a quiet community
    is served next instead of after the backlog, and workers hold at most their concurrency."""
    clock = ManualClock(start=1_790_000_000.0)
    async with opened_app(data_dir, clock=clock, IMAGINE_WORKERS="3") as app:
        _fill_queue(data_dir / "imagine.db", clock.now())
        accepted = await app.service.imagine(
            make_request(community_id="quiet", user_id="newcomer", dedupe_key="fresh")
        )
        assert not accepted.duplicate and accepted.position == QUEUED

        with contextlib.closing(sqlite3.connect(data_dir / "imagine.db")) as db:
            queries = load_queries("sqlite")
            params = {
                "community_id": "busy",
                "user_id": "u1",
                "day_start": 0.0,
                "key": "k",
                "dedupe_key": "q-1",
                "created_at": clock.now(),
            }
            for name in ("get_job_by_dedupe", "user_usage", "community_usage", "queue_position"):
                plan = " | ".join(
                    str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {queries[name]}", params)
                )
                assert "USING" in plan and "SCAN jobs" not in plan.replace("USING", ""), (
                    name,
                    plan,
                )

        blocked = asyncio.Event()

        class Stuck(RecordingPort):
            async def deliver(self, job, images):  # type: ignore[no-untyped-def]
                await blocked.wait()
                return await super().deliver(job, images)

        port = Stuck()
        app.add_delivery("console", port)
        worker = await app.start_workers()
        async with asyncio.timeout(30):
            while (await app.store.job_counts()).running < 3:
                await app.events.wait_for_change(0.1)
        # The quiet community's job went first; the backlog waits in the table, not in memory.
        first = await app.store.get_job(accepted.job.id)
        assert first is not None and first.lease_owner == worker.worker_id
        counts = await app.store.job_counts()
        assert counts.running == 3 and worker.busy == 3
        assert counts.queued == QUEUED + 1 - 3
        blocked.set()
        await worker.stop(grace=5)


async def test_s25_a_job_that_waited_past_its_window_tells_its_user(data_dir: Path) -> None:
    """A job still queued when its reply window is about to close is not run silently late: its
    user is told the bot was too busy, no provider is called and nothing is charged."""
    clock = ManualClock(start=1_790_000_000.0)
    async with opened_app(data_dir, clock=clock) as app:
        port = RecordingPort()
        app.add_delivery("console", port)
        accepted = await app.service.imagine(
            make_request(reply=ReplyTarget(platform="console", channel_id="ch1"))
        )
        clock.advance(11 * 60)  # ten minutes is the queue deadline (Discord's token lasts 15)
        await app.start_workers()
        await settle(app, {"console"})
        job = await app.service.job(accepted.job.id)
    assert job.status is JobStatus.EXPIRED and job.provider is None
    assert port.delivered == []
    [told] = port.failures
    assert told.id == job.id and "too busy" in (told.error_message or "")


async def test_s22_stopping_with_every_slot_busy_hands_back_within_the_grace(
    data_dir: Path,
) -> None:
    """Every worker slot holds a generation that will not finish: stopping returns after the grace
    period (it does not wait for a slot to free up) and each job is handed back with its provider
    task kept, so the next process polls the same task instead of paying for a new one."""
    async with opened_app(data_dir, IMAGINE_WORKERS="2") as app:
        app.router = Router([OfflineProvider(latency=3600)], clock=app.clock)
        app.add_delivery("console", RecordingPort())
        ids = [(await app.service.imagine(make_request(user_id=f"u{n}"))).job.id for n in (1, 2)]
        worker = await app.start_workers()
        async with asyncio.timeout(30):
            while [(await app.service.job(i)).status for i in ids] != [JobStatus.SUBMITTED] * 2:
                await app.events.wait_for_change(0.1)
        async with asyncio.timeout(20):  # a hang guard: the grace is half a second
            await worker.stop(grace=0.5)
        jobs = [await app.service.job(i) for i in ids]
    assert [j.status for j in jobs] == [JobStatus.SUBMITTED] * 2
    assert all(j.lease_owner is None and j.provider_task_id for j in jobs)
