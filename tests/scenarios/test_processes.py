"""Crash, restart, durability (RELIABILITY.md 21-23) with the real ``imagine-bot`` process: killed
with SIGKILL at each step of a job, stopped with SIGTERM mid-generation, and several processes on one
database. The provider is the fake BFL API on 127.0.0.1, which charges for every task it creates,
so "no provider job paid for twice" is counted where it would cost money."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import bot_env, free_port, wait_healthy
from tests.fakes.bfl import FakeBfl
from tests.fakes.provider_common import Fault
from tests.fakes.slack import FakeSlack, form_body, signed_headers
from tests.store_helpers import enqueue_job

pytestmark = pytest.mark.slow

DONE = re.compile(r"job (\w+): done -> (\S+\.(?:png|jpg|webp)) ")
FAILED = re.compile(r"job (\w+): (failed|moderated|expired): ")
PROMPTS = [f"a paper lantern number {n}" for n in range(3)]
# klein: the shortest usual time, so the first poll comes soon after the submit.
COMMANDS = "".join(
    f"/imagine {p} --model klein --size 256x256 --seed {n}\n" for n, p in enumerate(PROMPTS)
)


@pytest.fixture
async def bfl() -> AsyncIterator[FakeBfl]:
    fake = FakeBfl()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.aclose()


def provider_env(fake: FakeBfl) -> dict[str, str]:
    return {
        "IMAGINE_PROVIDERS": "bfl",
        "BFL_API_KEY": fake.key,
        "BFL_API_BASE": fake.base_url,
        "IMAGINE_LOG_LEVEL": "INFO",
    }


async def run_bot(
    data: Path, *, stdin: bytes = b"", timeout: float = 90, **env: str
) -> tuple[int, str, str]:
    """``imagine-bot run`` in console mode until it exits (stdin closed: it finishes its jobs)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=bot_env(data, **env),
        cwd=data.parent,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await process.communicate(stdin)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def stored_jobs(data: Path) -> list[sqlite3.Row]:
    with contextlib.closing(sqlite3.connect(data / "imagine.db")) as db:
        db.row_factory = sqlite3.Row
        return db.execute(
            "SELECT id, status, outcome_sent, lease_owner, provider_task_json, error_code, "
            "json_extract(request_json, '$.prompt') AS prompt FROM jobs"
        ).fetchall()


def tasks_per_prompt(fake: FakeBfl) -> Counter[str]:
    return Counter(str(task.body.get("prompt")) for task in fake.tasks.values())


@pytest.mark.parametrize("point", ["after_submit"])
async def test_s21_killed_at_a_step_and_restarted_delivers_once_and_pays_once(
    tmp_path: Path, bfl: FakeBfl, point: str
) -> None:
    """SIGKILL at a step of a job, then a restart: each job is delivered exactly once, and a job
    whose BFL task id was stored is polled again, never submitted (paid) again. (Every step with the
    offline provider: ``tests/e2e/test_crash_recovery.py``.)"""
    data = tmp_path / "data"
    bfl.generation_seconds = 0.2
    env = provider_env(bfl)
    code, out1, err1 = await run_bot(
        data, stdin=COMMANDS.encode(), IMAGINE_TEST_CRASH_AT=point, **env
    )
    assert code == -signal.SIGKILL, err1[-2000:]
    paid_before_restart = bfl.paid_tasks

    code, out2, err2 = await run_bot(data, **env)
    assert code == 0, err2[-2000:]

    # The kill may come before every command was read: the stored ones are the accepted ones.
    rows = stored_jobs(data)
    assert rows
    # Another job's submit may have been on the wire at the kill: its answer was never stored, so it
    # fails with a clear message rather than risking a second paid task.
    unsure = {row["id"] for row in rows if row["status"] == "failed"}
    assert {row["error_code"] for row in rows if row["id"] in unsure} <= {"submit_unknown"}
    assert {row["status"] for row in rows} - {"failed"} == {"delivered"}, [dict(r) for r in rows]
    posted = Counter(job for job, _ in DONE.findall(out1 + out2))
    told = Counter(job for job, _ in FAILED.findall(out1 + out2))
    assert posted + told == Counter({row["id"]: 1 for row in rows})
    assert set(told) == unsure
    # One paid task per delivered command, whichever process made it; none for a failed one twice.
    paid = tasks_per_prompt(bfl)
    for row in rows:
        assert paid[row["prompt"]] == 1 or (row["id"] in unsure and paid[row["prompt"]] == 0)
    assert set(paid) <= {row["prompt"] for row in rows}
    assert paid_before_restart >= 1  # the killed process had paid for at least one task


async def test_s21_a_submit_whose_answer_was_lost_is_never_sent_again(
    tmp_path: Path, bfl: FakeBfl
) -> None:
    """Killed after BFL created the task but before its id was stored (the submit was on the wire):
    the restarted bot cannot know whether it was paid for, so it tells the user instead of
    submitting a second time."""
    data = tmp_path / "data"
    bfl.generation_seconds = 600  # the first process never sees an answer it could store
    bfl.fail("submit", Fault(hang=5, after_accept=True, times=len(PROMPTS)))
    env = provider_env(bfl)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=bot_env(data, **env),
        cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    process.stdin.write(COMMANDS.encode())
    await process.stdin.drain()
    async with asyncio.timeout(60):
        while bfl.paid_tasks < len(PROMPTS):
            await asyncio.sleep(0.05)
    process.kill()
    await process.communicate()

    code, out, err = await run_bot(data, **env)
    assert code == 0, err[-2000:]
    rows = stored_jobs(data)
    assert {row["error_code"] for row in rows} == {"submit_unknown"}
    told = Counter(job for job, _ in FAILED.findall(out))
    assert told == Counter({row["id"]: 1 for row in rows})
    assert "to avoid paying twice" in out
    assert tasks_per_prompt(bfl) == Counter(row["prompt"] for row in rows)


SIGNING_SECRET = "reliability-sigterm-secret-93b1"
SLACK_TOKEN = "xoxb-reliability-sigterm-0000"


async def _start_slack_bot(
    data: Path, slack: FakeSlack, bfl: FakeBfl, port: int, **env: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=bot_env(
            data,
            SLACK_BOT_TOKEN=SLACK_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.api_url,
            IMAGINE_HTTP_PORT=str(port),
            **{**provider_env(bfl), **env},
        ),
        cwd=data.parent,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_s22_sigterm_finishes_or_hands_back_running_jobs_and_nothing_stays_stuck(
    tmp_path: Path, bfl: FakeBfl
) -> None:
    """The Slack bot process gets SIGTERM with two generations running at BFL: the one that is
    ready finishes and is posted within the grace period, the one that is not is handed back (its
    lease released, its task id kept); the process exits 0. A restarted bot picks the handed-back
    job up at once, polls the same task and posts it: one post and one paid task per command."""
    data = tmp_path / "data"
    slack = await FakeSlack(SLACK_TOKEN).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    lease = "20"  # the grace period is a quarter of the lease: 5 s
    bfl.generation_seconds = 3600
    process = await _start_slack_bot(data, slack, bfl, port, IMAGINE_LEASE_SECONDS=lease)
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, base, process)
            for n, prompt in enumerate(("a quick sketch", "a slow oil painting")):
                body = form_body(
                    {
                        "team_id": "T1",
                        "channel_id": "C1",
                        "user_id": f"U{n}",
                        "command": "/imagine",
                        "text": f"{prompt} --model klein --size 256x256",
                        "response_url": slack.response_url(f"sigterm-{n}"),
                        "trigger_id": f"sigterm.{n}.trigger",
                    }
                )
                headers = signed_headers(SIGNING_SECRET, body)
                async with http.post(f"{base}/slack/events", data=body, headers=headers) as reply:
                    assert reply.status == 200
            async with asyncio.timeout(60):
                while bfl.paid_tasks < 2:
                    await asyncio.sleep(0.05)
        quick = next(t for t in bfl.tasks.values() if t.body["prompt"] == "a quick sketch")
        quick.ready_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            _, err = await process.communicate()
        assert process.returncode == 0, err.decode()[-3000:]

        rows = {row["status"]: row for row in stored_jobs(data)}
        assert set(rows) == {"delivered", "submitted"}, rows
        handed_back = rows["submitted"]
        assert handed_back["lease_owner"] is None and handed_back["outcome_sent"] == 0
        assert handed_back["provider_task_json"] is not None
        assert len(slack.shared_files()) == 1

        for task in bfl.tasks.values():
            task.ready_at = time.monotonic()
        process = await _start_slack_bot(data, slack, bfl, port, IMAGINE_LEASE_SECONDS=lease)
        async with asyncio.timeout(60):
            while len(slack.shared_files()) < 2:
                await asyncio.sleep(0.1)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                await process.communicate()
        await slack.aclose()
    assert process.returncode == 0
    assert {row["status"] for row in stored_jobs(data)} == {"delivered"}
    assert len(slack.shared_files()) == 2
    assert bfl.paid_tasks == 2


async def test_s33_no_secret_reaches_the_debug_logs_of_the_real_process(
    tmp_path: Path, bfl: FakeBfl
) -> None:
    """The Slack bot at DEBUG with the BFL provider: a delivered image, a moderated prompt, a 429
    and a 5xx HTML page. Neither the BFL key, the Slack token, the signing secret nor any
    response_url appears in anything the process wrote."""
    data = tmp_path / "data"
    slack = await FakeSlack(SLACK_TOKEN).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bfl.fail("submit", Fault(status=429, retry_after=0.1), Fault(status=502, html=True))
    bfl.next_outcomes("Ready", "Request Moderated")
    process = await _start_slack_bot(
        data, slack, bfl, port, IMAGINE_LOG_LEVEL="DEBUG", IMAGINE_LOG_FORMAT="json"
    )
    urls = [slack.response_url(f"secret-{n}") for n in range(2)]
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, base, process)
            for n, prompt in enumerate(("a harmless kite", "a moderated thing")):
                body = form_body(
                    {
                        "team_id": "T1",
                        "channel_id": "C1",
                        "user_id": f"U{n}",
                        "command": "/imagine",
                        "text": f"{prompt} --model klein --size 256x256",
                        "response_url": urls[n],
                        "trigger_id": f"secret.{n}.trigger",
                    }
                )
                headers = signed_headers(SIGNING_SECRET, body)
                async with http.post(f"{base}/slack/events", data=body, headers=headers) as reply:
                    assert reply.status == 200
            async with asyncio.timeout(90):
                while (
                    not all(row["outcome_sent"] for row in stored_jobs(data))
                    or len(stored_jobs(data)) < 2
                ):
                    await asyncio.sleep(0.2)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            out, err = await process.communicate()
        await slack.aclose()
    logs = out.decode() + err.decode()
    assert "DEBUG" in logs or '"debug"' in logs.lower()
    for secret in (bfl.key, SLACK_TOKEN, SIGNING_SECRET, *urls):
        assert secret not in logs, [line for line in logs.splitlines() if secret in line][:3]
    assert {row["status"] for row in stored_jobs(data)} == {"delivered", "moderated"}


@pytest.mark.postgres
async def test_s23_two_workers_on_postgresql_one_dies_its_jobs_are_taken_over(
    tmp_path: Path,
) -> None:
    """Two worker processes share a PostgreSQL queue; one is SIGKILLed mid-way. Each job is claimed
    by one worker at a time (one provider task per job at most), the dead worker's jobs are taken
    over once their leases expire, and every job ends with one outcome. (The heavier version with
    three workers and 2,000 jobs: ``tests/e2e/test_workers_on_postgres.py``.)"""
    import asyncpg

    from bot.domain.models import ReplyTarget
    from bot.store import open_store
    from tests.e2e.test_workers_on_postgres import start_worker, wait_until
    from tests.e2e.worker_process import RECORDING_TABLES
    from tests.factories import make_job, make_request
    from tests.pg import private_schema

    jobs = 80
    data = tmp_path / "data"
    data.mkdir()
    async with private_schema() as url:
        async with open_store(url) as store:
            now = time.time()
            for n in range(jobs):
                request = make_request(
                    platform="recorder",
                    community_id=f"c{n % 3}",
                    user_id=f"u{n % 10}",
                    reply=ReplyTarget(platform="recorder", channel_id="ch1"),
                )
                job = make_job(now=now, request=request, width=64, height=64, seed=n)
                await enqueue_job(store, job)
        probe = await asyncpg.connect(url)
        await probe.execute(RECORDING_TABLES)
        logs = [tmp_path / f"worker{i}.log" for i in range(2)]
        workers = [start_worker(url, data, log) for log in logs]
        try:
            posted = await wait_until(probe, "SELECT count(*) FROM platform_posts", 20, 90)
            assert posted >= 20, [log.read_text()[-1500:] for log in logs]
            victim = workers[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            done = await wait_until(
                probe, "SELECT count(*) FROM jobs WHERE outcome_sent", jobs, 120
            )
            assert done == jobs, [log.read_text()[-1500:] for log in logs]
            posts = await probe.fetch("SELECT job_id, pid FROM platform_posts ORDER BY at")
            tasks = await probe.fetch("SELECT job_id, pid FROM provider_tasks")
            rows = await probe.fetch("SELECT id, status, error_code FROM jobs")
        finally:
            await probe.close()
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
            codes = [worker.wait(timeout=30) for worker in workers]
    assert codes[1] == 0
    assert max(Counter(row["job_id"] for row in tasks).values()) == 1
    survivor = workers[1].pid
    by_job: dict[str, list[int]] = {}
    for row in posts:
        by_job.setdefault(row["job_id"], []).append(row["pid"])
    assert set(by_job) == {row["id"] for row in rows}
    # A job is posted twice only when the dead worker posted it and died before storing that.
    assert all(pids[:-1] == [victim.pid] * (len(pids) - 1) for pids in by_job.values())
    assert any(pids[-1] == survivor for pids in by_job.values())
    failed = [row for row in rows if row["status"] != "delivered"]
    assert all(row["error_code"] == "submit_unknown" for row in failed), failed
