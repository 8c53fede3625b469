"""Limits and fairness (RELIABILITY.md 7-11): the real service, store and worker on SQLite and
PostgreSQL; time is a ManualClock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bot.domain.clock import ManualClock
from bot.domain.errors import PolicyRefusal
from bot.domain.models import JobStatus
from bot.providers.base import GenerationSpec, PollResult, Submission
from bot.providers.offline import OfflineProvider
from bot.providers.router import Router
from bot.runtime.app import App
from tests.factories import make_request
from tests.pg import private_schema
from tests.scenarios.conftest import RecordingPort, opened_app, settle


@contextlib.asynccontextmanager
async def database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "postgres":
        async with private_schema() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'limits.db'}"


async def _fifty_at_once(apps: list[App]) -> int:
    async def one(n: int) -> bool:
        app = apps[n % len(apps)]
        try:
            await app.service.imagine(make_request(user_id="eager", dedupe_key=f"evt-{n}"))
        except PolicyRefusal:
            return False
        return True

    return sum(await asyncio.gather(*(one(n) for n in range(50))))


@pytest.mark.parametrize(
    ("backend", "instances"), [("sqlite", 1), ("postgres", 1), ("postgres", 2)]
)
async def test_s07_fifty_simultaneous_commands_with_five_per_minute_admit_exactly_five(
    tmp_path: Path, backend: str, instances: int
) -> None:
    clock = ManualClock()
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(database(backend, tmp_path))
        apps = [
            await stack.enter_async_context(
                opened_app(
                    tmp_path / f"data{n}",
                    clock=clock,
                    IMAGINE_DATABASE_URL=url,
                    IMAGINE_USER_RATE="5/minute",
                    IMAGINE_USER_MAX_IN_FLIGHT="100",
                )
            )
            for n in range(instances)
        ]
        assert await _fifty_at_once(apps) == 5
        counts = await apps[0].store.job_counts()
        assert counts.queued == 5


class Counting(OfflineProvider):
    """The offline renderer, counting tasks between submit and fetch (in flight at the provider)."""

    def __init__(self, cap: int, clock: Any) -> None:
        super().__init__(latency=2.0, clock=clock, concurrency=cap)
        self.in_flight = 0
        self.most = 0
        self.fetched = 0

    async def submit(self, spec: GenerationSpec) -> Submission:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        return await super().submit(spec)

    async def fetch(self, task: Mapping[str, Any], result: PollResult) -> list[bytes]:
        data = await super().fetch(task, result)
        self.in_flight -= 1
        self.fetched += 1
        return data


async def test_s10_with_500_queued_a_provider_never_has_more_than_its_cap(data_dir: Path) -> None:
    clock = ManualClock()
    async with opened_app(
        data_dir, clock=clock, IMAGINE_WORKERS="16", IMAGINE_USER_RATE="10000/minute"
    ) as app:
        provider = Counting(3, clock)
        app.router = Router([provider], clock=clock)
        for n in range(500):
            await app.service.imagine(
                make_request(user_id=f"u{n % 100}", community_id=f"c{n % 7}", width=64, height=64)
            )
        app.add_delivery("console", RecordingPort())
        worker = await app.start_workers(lease_seconds=3600.0)
        async with asyncio.timeout(60):
            while provider.fetched < 40:
                await app.events.wait_for_change(0.05)
        await worker.stop(grace=5)
    assert 1 <= provider.most <= 3


async def test_s11_a_busy_community_cannot_starve_the_others(data_dir: Path) -> None:
    clock = ManualClock()
    async with opened_app(
        data_dir, clock=clock, IMAGINE_USER_RATE="10000/minute", IMAGINE_USER_MAX_IN_FLIGHT="1000"
    ) as app:
        for n in range(60):
            await app.service.imagine(
                make_request(community_id="busy", user_id=f"u{n % 3}", width=64, height=64)
            )
        for n in range(3):
            await app.service.imagine(
                make_request(community_id="quiet", user_id=f"q{n}", width=64, height=64)
            )
        port = RecordingPort()
        app.add_delivery("console", port)
        worker = await app.start_workers(concurrency=1, lease_seconds=3600.0)
        async with asyncio.timeout(60):
            while len(port.delivered) < 8:
                await app.events.wait_for_change(0.05)
        await worker.stop(grace=5)
    order = [job.community_id for job, _ in port.delivered]
    # Alternating between communities: the quiet one's three jobs are among the first six.
    assert order[:6].count("quiet") == 3, order


async def test_s08_moderated_jobs_refund_and_a_retried_job_is_charged_once(
    data_dir: Path,
) -> None:
    clock = ManualClock()
    async with opened_app(data_dir, clock=clock, IMAGINE_USER_DAILY="3") as app:

        class Flaky(OfflineProvider):
            calls = 0

            async def submit(self, spec: GenerationSpec) -> Submission:
                Flaky.calls += 1
                if spec.prompt == "moderate me":
                    from bot.domain.errors import ProviderModerated

                    raise ProviderModerated("Request Moderated", provider="offline")
                if Flaky.calls <= 3:
                    from bot.domain.errors import ProviderUnavailable

                    raise ProviderUnavailable("busy", provider="offline", status=503)
                return await super().submit(spec)

        app.router = Router([Flaky(clock=clock)], clock=clock)
        port = RecordingPort()
        app.add_delivery("console", port)
        await app.start_workers(lease_seconds=3600.0)
        moderated = await app.service.imagine(make_request(prompt="moderate me"))
        retried = await app.service.imagine(make_request(prompt="a patient heron"))
        async with asyncio.timeout(30):
            while not (
                (await app.service.job(moderated.job.id)).outcome_sent
                and (await app.service.job(retried.job.id)).outcome_sent
            ):
                clock.advance(5)
                app.events.work_available()
                await app.events.wait_for_change(0.02)
        done = await app.service.job(retried.job.id)
        assert (await app.service.job(moderated.job.id)).status is JobStatus.MODERATED
        assert done.status is JobStatus.DELIVERED and done.attempts >= 1
        quota = await app.service.quota("c1", "u1")
    assert quota.used_today == 1  # the moderated one refunded, the retried one charged once


async def test_s09_a_clock_jump_either_way_neither_unlocks_nor_locks_out(data_dir: Path) -> None:
    clock = ManualClock()
    async with opened_app(
        data_dir, clock=clock, IMAGINE_USER_RATE="5/minute", IMAGINE_USER_MAX_IN_FLIGHT="1000"
    ) as app:

        async def admitted(count: int) -> int:
            ok = 0
            for _ in range(count):
                try:
                    await app.service.imagine(make_request(user_id="u1"))
                    ok += 1
                except PolicyRefusal:
                    pass
            return ok

        assert await admitted(10) == 5
        clock.advance(3600)  # forward an hour: one full bucket, not an hour's worth
        assert await admitted(20) == 5
        clock.set(clock.now() - 7200)  # back two hours
        assert await admitted(5) == 0
        clock.advance(60)  # a minute of the new time later the user is served again
        assert await admitted(1) == 1
        await settle(app, set())
