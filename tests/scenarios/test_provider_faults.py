"""Provider faults (RELIABILITY.md 12-20): the whole core (service, store, worker, the real provider
classes) against the fake BFL, fal and Together APIs on 127.0.0.1, told to misbehave. Time is a
ManualClock: waits cost nothing and "how long" is read off the clock."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.domain.clock import ManualClock
from bot.domain.models import Job, JobStatus
from bot.providers.base import PollResult
from bot.providers.download import AllowList, HostRule
from bot.providers.offline import OfflineProvider
from bot.providers.router import Router
from bot.runtime.app import App
from tests.discord.conftest import Bot
from tests.factories import make_request
from tests.fakes.bfl import FakeBfl
from tests.fakes.fal import FakeFal
from tests.fakes.provider_common import FakeServer, Fault, Sink
from tests.fakes.rawhttp import RawServer, trickle
from tests.fakes.together import FakeTogether
from tests.scenarios.conftest import LogCapture, RecordingPort, opened_app

KEYS = {"bfl": "BFL_API_KEY", "fal": "FAL_KEY", "together": "TOGETHER_API_KEY"}
BASES = {"bfl": "BFL_API_BASE", "fal": "FAL_QUEUE_BASE", "together": "TOGETHER_API_BASE"}
DISCORD_TOKEN_LIFETIME = 15 * 60


def new_fake(name: str) -> Any:
    return {"bfl": FakeBfl, "fal": FakeFal, "together": FakeTogether}[name]()


class Rig:
    def __init__(self, app: App, fake: Any, clock: ManualClock, port: RecordingPort) -> None:
        self.app, self.fake, self.clock, self.port = app, fake, clock, port
        # klein polls soonest; Together does not offer it.
        self.variant = "pro" if fake.__class__ is FakeTogether else "klein"

    async def run(self, timeout: float = 30, **request: Any) -> Job:
        """One command to its end, moving the clock on while the job waits (retries, polls)."""
        request.setdefault("variant", self.variant)
        accepted = await self.app.service.imagine(make_request(**request))
        async with asyncio.timeout(timeout):
            while not (job := await self.app.service.job(accepted.job.id)).outcome_sent:
                self.clock.advance(1.0)
                self.app.events.work_available()
                await self.app.events.wait_for_change(0.02)
        return job

    def told(self, job: Job) -> list[Job]:
        return [j for j in self.port.failures if j.id == job.id]


@asynccontextmanager
async def rig_for(name: str, data_dir: Path, **worker: Any) -> AsyncIterator[Rig]:
    fake = new_fake(name)
    await fake.start()
    clock = ManualClock()
    try:
        async with opened_app(
            data_dir,
            clock=clock,
            IMAGINE_PROVIDERS=name,
            **{KEYS[name]: fake.key, BASES[name]: fake.base_url},
        ) as app:
            port = RecordingPort()
            app.add_delivery("console", port)
            # The test moves the clock faster than the heartbeat renews leases in real time.
            await app.start_workers(**{"lease_seconds": 3600.0, **worker})
            yield Rig(app, fake, clock, port)
    finally:
        await fake.aclose()


def submits(fake: FakeServer, name: str) -> int:
    path = {"bfl": "/v1/flux", "fal": "/fal-ai", "together": "/v1/images"}[name]
    return len([r for r in fake.requests if r.method == "POST" and r.path.startswith(path)])


async def test_s12_429_with_retry_after_is_waited_out_bounded_and_explained(
    data_dir: Path,
) -> None:
    async with rig_for("bfl", data_dir, max_attempts=4) as rig:
        rig.fake.fail("submit", Fault(status=429, retry_after=30, times=2))
        accepted = await rig.app.service.imagine(make_request(variant="klein"))
        async with asyncio.timeout(20):
            while (job := await rig.app.service.job(accepted.job.id)).attempts < 1:
                await rig.app.events.wait_for_change(0.02)
        # Handed back until at least Retry-After from now (plus jitter), not hammered again.
        assert job.status is JobStatus.QUEUED and job.not_before >= rig.clock.now() + 30
        delivered = await rig.run(prompt="after the rush")
        job = await rig.app.service.job(accepted.job.id)
        assert job.status is JobStatus.DELIVERED and delivered.status is JobStatus.DELIVERED

        rig.fake.fail("submit", Fault(status=429, retry_after=5, times=100))
        refused = await rig.run(prompt="during a long rush")
    assert refused.status is JobStatus.FAILED and refused.error_code == "providers_unavailable"
    assert "busy" in (refused.error_message or "")
    assert [j.id for j in rig.told(refused)] == [refused.id]
    assert submits(rig.fake, "bfl") == 2 + 2 + 4  # bounded: one try per attempt


async def test_s13_submit_accepted_then_connection_drops(data_dir: Path) -> None:
    """BFL creates (and charges) the task, then the connection drops before the answer: the job
    fails with a clear message and is never sent again, even after a restart: one paid task."""
    async with rig_for("bfl", data_dir) as rig:
        rig.fake.fail("submit", Fault(drop=True, after_accept=True))
        job = await rig.run()
        assert rig.fake.paid_tasks == 1
    assert job.status is JobStatus.FAILED and job.error_code == "submit_unknown"
    assert "paying twice" in (job.error_message or "")
    assert len(rig.told(job)) == 1
    async with rig_for("bfl", data_dir) as again:
        await again.app.events.wait_for_change(0.3)
        assert again.port.failures == [] and again.port.delivered == []
        assert again.fake.paid_tasks == 0


async def test_s13_the_task_id_is_stored_before_the_first_poll(data_dir: Path) -> None:
    async with rig_for("bfl", data_dir) as rig:
        rig.fake.fail("poll", Fault(hang=1.0))
        accepted = await rig.app.service.imagine(make_request(variant="klein"))
        async with asyncio.timeout(20):
            while not rig.fake.recorded("GET", "/"):
                rig.clock.advance(1.0)
                await asyncio.sleep(0.01)
        # The first poll is on the wire: the task it asks about is already in the row.
        stored = await rig.app.service.job(accepted.job.id)
        assert stored.status is JobStatus.SUBMITTED
        assert stored.provider_task_id in rig.fake.tasks
        [poll] = rig.fake.recorded("GET", "/")
        assert stored.provider_task_id == poll.query["id"]


async def test_s14_a_poll_that_never_becomes_ready_ends_well_before_the_token_expires(
    data_dir: Path,
) -> None:
    async with rig_for("bfl", data_dir) as rig:
        rig.fake.generation_seconds = 10_000_000
        job = await rig.run()
    assert job.status is JobStatus.FAILED and job.error_code == "provider_failed"
    assert len(rig.told(job)) == 1
    assert job.finished_at is not None
    assert job.finished_at - job.created_at < DISCORD_TOKEN_LIFETIME


async def test_s14_polls_that_time_out_are_retried_within_the_job_deadline(
    data_dir: Path,
) -> None:
    async with rig_for("bfl", data_dir, generation_timeout=120) as rig:
        rig.app.router.get("bfl").poll_timeout = httpx.Timeout(0.2)  # type: ignore[attr-defined]
        rig.fake.fail("poll", Fault(hang=1.0, times=10_000))
        job = await rig.run(timeout=60)
    assert job.status is JobStatus.FAILED and len(rig.told(job)) == 1
    assert job.finished_at is not None
    assert job.finished_at - job.created_at <= 120 + 30
    assert rig.fake.paid_tasks == 1


async def test_s14_nothing_listening_fails_clearly_without_a_task(data_dir: Path) -> None:
    async with rig_for("bfl", data_dir, max_attempts=2) as rig:
        await rig.fake.aclose()  # connection refused from now on
        job = await rig.run()
    assert job.status is JobStatus.FAILED and job.error_code == "providers_unavailable"
    assert len(rig.told(job)) == 1


async def test_s14_a_trickling_result_is_cut_at_the_time_cap(data_dir: Path) -> None:
    slow = await RawServer(trickle(0.2)).start()
    try:
        async with rig_for("bfl", data_dir) as rig:
            provider: Any = rig.app.router.get("bfl")
            provider.downloader.seconds = 1.0
            rule = HostRule("127.0.0.1", port=slow.port, schemes=frozenset({"http"}))
            provider.downloader.allow = AllowList((*provider.downloader.allow.rules, rule))
            rig.fake.result_base = f"http://127.0.0.1:{slow.port}"
            job = await rig.run(timeout=60)
    finally:
        await slow.aclose()
    assert job.status is JobStatus.FAILED and job.error_code == "download_failed"
    assert rig.port.delivered == [] and len(rig.told(job)) == 1


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=502, html=True, times=50),
        Fault(malformed=True, times=50),
        Fault(status=200, body={"id": "x"}, times=50),  # missing status
        Fault(status=200, body={"id": "x", "status": "Ready", "result": {}}, times=50),
    ],
    ids=["html page", "truncated json", "missing fields", "ready without image"],
)
async def test_s15_broken_poll_answers_fail_cleanly_without_secrets(
    data_dir: Path, fault: Fault, bot_logs: LogCapture
) -> None:
    async with rig_for("bfl", data_dir, generation_timeout=60) as rig:
        rig.fake.fail("poll", fault)
        job = await rig.run(timeout=60)
        key = rig.fake.key
    assert job.status is JobStatus.FAILED and len(rig.told(job)) == 1
    assert job.error_message and "Traceback" not in job.error_message
    assert "unexpected error" not in bot_logs.text
    assert key not in bot_logs.text


@pytest.mark.parametrize(
    ("name", "script"),
    [
        ("bfl", "Request Moderated"),
        ("bfl", "Content Moderated"),
        ("fal", "nsfw"),
        ("together", "422"),
    ],
)
async def test_s16_moderation_is_terminal_at_once_and_never_posts_a_flagged_image(
    data_dir: Path, name: str, script: str
) -> None:
    async with rig_for(name, data_dir) as rig:
        prompt = "a castle at night"
        if name == "bfl":
            rig.fake.next_outcomes(script)
        elif name == "fal":
            rig.fake.nsfw_next.append(True)
        else:
            prompt = "a forbidden castle"
        job = await rig.run(prompt=prompt)
        paid = rig.fake.paid_tasks
    assert job.status is JobStatus.MODERATED and job.attempts == 0
    assert "safety filter" in (job.error_message or "")
    assert rig.port.delivered == [] and len(rig.told(job)) == 1
    assert submits(rig.fake, name) == 1 and paid <= 1  # no retry


async def test_s17_an_expiring_result_is_fetched_at_once_after_ready(data_dir: Path) -> None:
    async with rig_for("bfl", data_dir) as rig:
        rig.fake.result_ttl = 5.0
        job = await rig.run()
    assert job.status is JobStatus.DELIVERED
    assert sum(image.fetches for image in rig.fake.images.values()) == 1


async def test_s17_an_expired_result_is_refetched_once_then_fails_cleanly(data_dir: Path) -> None:
    async with rig_for("bfl", data_dir) as rig:
        rig.fake.result_ttl = 0.0  # already expired when fetched
        job = await rig.run()
        gets = [r for r in rig.fake.requests if r.path.startswith("/results/")]
    assert job.status is JobStatus.FAILED and job.error_code == "download_failed"
    assert len(rig.told(job)) == 1
    assert 1 <= len(gets) <= 2


async def test_s19_result_bytes_that_are_not_an_image_are_rejected_before_upload(
    data_dir: Path,
) -> None:
    async with rig_for("bfl", data_dir) as rig:
        rig.fake.fail("result", Fault(status=200, body={"not": "an image"}, times=10))
        job = await rig.run()
    assert job.status is JobStatus.FAILED and job.error_code == "bad_result"
    assert rig.port.delivered == [] and len(rig.told(job)) == 1


@pytest.mark.parametrize(
    "host", ["http://127.0.0.1:{port}", "http://169.254.169.254", "https://evil.example"]
)
async def test_s20_a_result_pointing_elsewhere_is_never_fetched(data_dir: Path, host: str) -> None:
    sink = await Sink().start()
    try:
        async with rig_for("bfl", data_dir) as rig:
            rig.fake.result_base = host.format(port=sink.port)
            job = await rig.run()
    finally:
        await sink.aclose()
    assert job.status is JobStatus.FAILED and job.error_code == "bad_result"
    assert sink.connections == 0
    assert rig.port.delivered == [] and len(rig.told(job)) == 1


class NoisyOffline(OfflineProvider):
    """Results of pure noise: large PNGs, as a detailed 4 MP image can be."""

    async def fetch(self, task: Mapping[str, Any], result: PollResult) -> list[bytes]:
        out = io.BytesIO()
        Image.effect_noise((768, 768), 100).convert("RGB").save(out, format="PNG")
        return [out.getvalue()]


async def test_s18_a_result_over_the_upload_limit_is_fitted_not_refused(bot: Bot) -> None:
    """The server's upload limit (Discord sends it with each interaction) is smaller than the
    finished image: the adapter re-encodes it to fit instead of letting Discord refuse the upload."""
    assert bot.app.worker is not None
    await bot.app.worker.stop(grace=1)
    bot.app.router = Router([NoisyOffline()], clock=bot.app.clock)
    await bot.app.start_workers()
    limit = 400_000
    payload = bot.fake.imagine("a detailed city skyline at night", aspect="1:1")
    payload["attachment_size_limit"] = limit
    token = bot.feed(payload)

    def uploaded() -> Any:
        for r in bot.fake.calls("update_original_webhook_message", token):
            if r.files:
                return r
        return None

    edit = await bot.fake.wait_for(uploaded, what="the image")
    ((_, data, _),) = edit.files.values()
    job_id = edit.json["embeds"][0]["footer"]["text"].removeprefix("job ")
    job = await bot.app.service.job(job_id)
    stored = await bot.app.blobs.get(job.images[0])
    assert len(stored) > limit >= len(data)
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert img.width >= 256
