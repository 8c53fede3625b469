"""Bounds that keep a job from hanging: a trickling answer is cut, and a job its user cancels
while it waits in fal's queue is cancelled there too."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import httpx
import pytest

from bot.domain.clock import ManualClock, SystemClock
from bot.domain.errors import ProviderUnavailable, SubmitOutcomeUnknown
from bot.domain.models import JobStatus
from bot.net.httpclient import open_http_client
from bot.providers.bfl import BflProvider
from bot.runtime.app import open_app
from bot.runtime.config import load_settings
from tests.contract.test_provider_contract import Rig
from tests.factories import make_request
from tests.fakes.bfl import FakeBfl
from tests.fakes.fal import FakeFal
from tests.fakes.provider_common import Fault
from tests.scenarios.test_job_flow import RecordingPort


async def test_a_trickling_answer_is_cut_at_its_time_cap() -> None:
    fake = await FakeBfl().start()
    try:
        async with open_http_client() as http:
            provider = BflProvider(
                http,
                api_key=fake.key,
                base_url=fake.base_url,
                clock=ManualClock(),
                rng=random.Random(1),
            )
            provider.poll_timeout = httpx.Timeout(0.5)
            provider.submit_timeout = httpx.Timeout(0.5)
            spec = Rig("bfl", fake, provider, http, ManualClock()).spec()
            submission = await provider.submit(spec)
            fake.fail("poll", Fault(trickle=0.2))
            started = time.monotonic()
            with pytest.raises(ProviderUnavailable):
                await provider.poll(submission.task)
            fake.fail("submit", Fault(trickle=0.2, after_accept=True))
            with pytest.raises(SubmitOutcomeUnknown):
                await provider.submit(spec)
            assert time.monotonic() - started < 30  # bounded, not the minutes a trickle takes
    finally:
        await fake.aclose()


@pytest.mark.parametrize("where", ["this process", "another process"])
async def test_cancelling_a_queued_fal_job_cancels_it_at_fal(data_dir: Path, where: str) -> None:
    """A cancel in this process wakes the waiting job at once; one made by another process (only
    the store knows of it) is seen after the job's next poll."""
    fake = await FakeFal().start()
    fake.queue_seconds = 120
    try:
        env = {
            "IMAGINE_DATA_DIR": str(data_dir),
            "IMAGINE_PROVIDERS": "fal",
            "FAL_KEY": fake.key,
            "FAL_QUEUE_BASE": fake.base_url,
        }
        settings = load_settings(env, env_file=None)
        async with open_app(settings, clock=SystemClock()) as app:
            app.add_delivery("console", RecordingPort())
            await app.start_workers()
            accepted = await app.service.imagine(make_request())
            for _ in range(500):
                job = await app.store.get_job(accepted.job.id)
                assert job is not None
                if job.status is JobStatus.SUBMITTED:
                    break
                await asyncio.sleep(0.02)
            polls = len(fake.recorded("GET"))
            if where == "this process":
                await app.service.cancel(job.id, user_id=job.user_id)
            else:
                await app.store.cancel_job(job.id, time.time())
            for _ in range(1000):
                if fake.recorded("PUT"):
                    break
                await asyncio.sleep(0.02)
            [request] = fake.requests_by_id.values()
            assert request.cancelled
            if where == "another process":
                assert len(fake.recorded("GET")) > polls  # seen at a poll, not by an event
            final = await app.store.get_job(job.id)
            assert final is not None and final.status is JobStatus.CANCELLED
    finally:
        await fake.aclose()
