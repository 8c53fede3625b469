"""Whole jobs through the real providers against their fakes: failover with exactly one paid
task, unknown submit outcomes, 402, Retry-After, moderation and webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.domain.clock import Clock, ManualClock, SystemClock
from bot.domain.models import Job, JobStatus
from bot.runtime.app import App, open_app
from bot.runtime.config import load_settings
from tests.factories import make_request
from tests.fakes.bfl import FakeBfl
from tests.fakes.fal import FakeFal
from tests.fakes.provider_common import Fault
from tests.fakes.together import FakeTogether
from tests.scenarios.test_job_flow import RecordingPort


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, Any]]:
    servers: dict[str, Any] = {"bfl": FakeBfl(), "fal": FakeFal(), "together": FakeTogether()}
    for server in servers.values():
        await server.start()
    yield servers
    for server in servers.values():
        await server.aclose()


def env_for(fakes: dict[str, Any], order: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "IMAGINE_DATA_DIR": str(data_dir),
        "IMAGINE_PROVIDERS": order,
        "BFL_API_KEY": fakes["bfl"].key,
        "BFL_API_BASE": fakes["bfl"].base_url,
        "FAL_KEY": fakes["fal"].key,
        "FAL_QUEUE_BASE": fakes["fal"].base_url,
        "TOGETHER_API_KEY": fakes["together"].key,
        "TOGETHER_API_BASE": fakes["together"].base_url,
        **extra,
    }


async def run_job(
    fakes: dict[str, Any],
    order: str,
    data_dir: Path,
    *,
    clock: Clock | None = None,
    **request: Any,
) -> tuple[Job, RecordingPort]:
    settings = load_settings(env_for(fakes, order, data_dir), env_file=None)
    port = RecordingPort()
    async with open_app(settings, clock=clock or ManualClock(time.time())) as app:
        app.add_delivery("console", port)
        await app.start_workers()
        accepted = await app.service.imagine(make_request(**request))
        job = await asyncio.wait_for(app.service.wait(accepted.job.id), 30)
    return job, port


async def test_failover_after_a_refusal_pays_exactly_one_task(
    fakes: dict[str, Any], data_dir: Path
) -> None:
    fakes["bfl"].fail("submit", Fault(status=503))
    job, port = await run_job(fakes, "bfl,fal,together", data_dir)
    assert job.status is JobStatus.DELIVERED
    assert (job.provider, job.model_id) == ("fal", "fal-ai/flux-2-pro")
    assert [f.paid_tasks for f in fakes.values()] == [0, 1, 0]
    assert len(port.delivered) == 1


async def test_the_estimate_and_the_recorded_cost_follow_the_size(
    fakes: dict[str, Any], data_dir: Path
) -> None:
    settings = load_settings(env_for(fakes, "bfl", data_dir), env_file=None)
    async with open_app(settings, clock=ManualClock(time.time())) as app:
        app.add_delivery("console", RecordingPort())
        await app.start_workers()
        accepted = await app.service.imagine(make_request(variant="flex", width=2048, height=1536))
        estimate = accepted.job.cost_usd
        job = await asyncio.wait_for(app.service.wait(accepted.job.id), 30)
    # BFL flex: 5 c for the first megapixel (1024 x 1024) and 5 c for each further one.
    assert (job.width, job.height) == (2048, 1536)
    assert estimate == pytest.approx(0.15)
    assert job.status is JobStatus.DELIVERED and job.cost_usd == pytest.approx(0.15)


async def test_no_credits_fails_over(fakes: dict[str, Any], data_dir: Path) -> None:
    fakes["bfl"].credits = 0
    job, _ = await run_job(fakes, "bfl,together", data_dir)
    assert job.status is JobStatus.DELIVERED
    assert job.provider == "together"
    assert job.model_id == "black-forest-labs/FLUX.2-pro"
    assert fakes["together"].paid_tasks == 1


async def test_a_bfl_task_not_yet_known_after_an_answer_without_polling_url_is_delivered(
    fakes: dict[str, Any], data_dir: Path
) -> None:
    fakes["bfl"].polling_url_in_answer = False
    fakes["bfl"].unknown_reads = 2
    job, port = await run_job(fakes, "bfl,fal", data_dir)
    assert (job.status, job.provider) == (JobStatus.DELIVERED, "bfl")
    assert len(port.delivered) == 1
    assert [fakes["bfl"].paid_tasks, fakes["fal"].paid_tasks] == [1, 0]


async def test_unknown_submit_outcome_fails_clearly_and_is_never_resubmitted(
    fakes: dict[str, Any], data_dir: Path
) -> None:
    fakes["bfl"].fail("submit", Fault(drop=True, after_accept=True))
    job, port = await run_job(fakes, "bfl,fal,together", data_dir)
    assert job.status is JobStatus.FAILED
    assert job.error_code == "submit_unknown"
    assert (
        job.error_message and job.id in job.error_message and "not sent again" in job.error_message
    )
    assert [f.paid_tasks for f in fakes.values()] == [1, 0, 0]
    assert len(fakes["bfl"].recorded("POST")) == 1
    assert port.failures and port.failures[0].id == job.id


async def test_a_stored_task_is_polled_not_resubmitted(
    fakes: dict[str, Any], data_dir: Path
) -> None:
    fakes["bfl"].fail("poll", Fault(status=502, html=True), Fault(status=500))
    job, _ = await run_job(fakes, "bfl,fal", data_dir)
    assert job.status is JobStatus.DELIVERED
    assert job.provider == "bfl"
    assert [fakes["bfl"].paid_tasks, fakes["fal"].paid_tasks] == [1, 0]


async def test_retry_after_on_submit_is_honoured(fakes: dict[str, Any], data_dir: Path) -> None:
    fakes["bfl"].fail("submit", Fault(status=429, retry_after=40))
    clock = ManualClock(time.time())
    settings = load_settings(env_for(fakes, "bfl", data_dir), env_file=None)
    port = RecordingPort()
    async with open_app(settings, clock=clock) as app:
        app.add_delivery("console", port)
        accepted = await app.service.imagine(make_request())
        await app.start_workers()
        for _ in range(200):
            stored = await app.store.get_job(accepted.job.id)
            assert stored is not None
            if stored.attempts:
                break
            await asyncio.sleep(0.02)
        assert stored.status is JobStatus.QUEUED
        assert stored.not_before - clock.now() >= 40
        assert fakes["bfl"].paid_tasks == 0
        clock.advance(45)
        app.events.work_available()
        job = await asyncio.wait_for(app.service.wait(accepted.job.id), 30)
    assert job.status is JobStatus.DELIVERED
    # The second try was the one that went through: one job, posted once, one paid task.
    assert job.attempts == 1
    assert [delivered.id for delivered, _ in port.delivered] == [job.id]
    assert len(fakes["bfl"].recorded("POST")) == 2
    assert fakes["bfl"].paid_tasks == 1


@pytest.mark.parametrize("outcome", ["Request Moderated", "Content Moderated"])
async def test_moderation_is_terminal_with_a_policy_message(
    fakes: dict[str, Any], data_dir: Path, outcome: str
) -> None:
    fakes["bfl"].next_outcomes(outcome)
    job, port = await run_job(fakes, "bfl,fal", data_dir)
    assert job.status is JobStatus.MODERATED
    assert job.error_message and "safety filter" in job.error_message
    assert port.delivered == []
    assert fakes["fal"].paid_tasks == 0


async def test_a_bfl_error_shows_its_details_in_the_failure_reason(
    fakes: dict[str, Any], data_dir: Path
) -> None:
    fakes["bfl"].next_outcomes("Error")
    fakes[
        "bfl"
    ].error_details = (
        "Prompt too long for upsampling; see https://x.example/r?token=abcdef0123456789"
    )
    job, port = await run_job(fakes, "bfl,fal", data_dir)
    assert job.status is JobStatus.FAILED and job.error_code == "provider_failed"
    assert job.error_message and "Prompt too long for upsampling" in job.error_message
    assert "abcdef0123456789" not in job.error_message
    assert port.failures and fakes["fal"].paid_tasks == 0


async def test_a_flagged_black_image_is_never_posted(fakes: dict[str, Any], data_dir: Path) -> None:
    fakes["fal"].nsfw_next.append(True)
    job, port = await run_job(fakes, "fal", data_dir)
    assert job.status is JobStatus.MODERATED
    assert port.delivered == []


@pytest.mark.parametrize("stage", ["submit", "status", "result"])
async def test_fal_content_policy_moderates_refunds_and_is_not_shopped_around(
    fakes: dict[str, Any], data_dir: Path, stage: str
) -> None:
    fakes["fal"].content_policy_next.append(stage)
    settings = load_settings(env_for(fakes, "fal,together", data_dir), env_file=None)
    port = RecordingPort()
    async with open_app(settings, clock=ManualClock(time.time())) as app:
        app.add_delivery("console", port)
        await app.start_workers()
        accepted = await app.service.imagine(make_request())
        job = await asyncio.wait_for(app.service.wait(accepted.job.id), 30)
        quota = await app.service.quota("c1", "u1")
    assert job.status is JobStatus.MODERATED
    assert job.error_message and "safety filter" in job.error_message
    assert port.delivered == [] and port.failures and port.failures[0].id == job.id
    assert fakes["together"].paid_tasks == 0
    assert quota.used_today == 0


async def test_fal_exhausted_balance_fails_over_opens_its_circuit_and_shows_in_readyz(
    fakes: dict[str, Any], data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fakes["fal"].exhaust_balance()
    settings = load_settings(
        env_for(fakes, "fal,together", data_dir, IMAGINE_HTTP_PORT="0"), env_file=None
    )
    async with open_app(settings, clock=ManualClock(time.time())) as app:
        app.add_delivery("console", RecordingPort())
        await app.start_workers()
        first = await app.service.imagine(make_request(prompt="a quiet pond"))
        job = await asyncio.wait_for(app.service.wait(first.job.id), 30)
        second = await app.service.imagine(make_request(prompt="a quiet lake"))
        other = await asyncio.wait_for(app.service.wait(second.job.id), 30)
        port = await app.http_server.start()
        async with httpx.AsyncClient() as http:
            ready = await http.get(f"http://127.0.0.1:{port}/readyz")
    assert (job.status, job.provider) == (JobStatus.DELIVERED, "together")
    assert (other.status, other.provider) == (JobStatus.DELIVERED, "together")
    # The circuit opened at the first refusal: the second job never asked fal.
    assert len(fakes["fal"].recorded("POST")) == 1
    assert ready.status_code == 503
    assert "balance is exhausted" in ready.json()["problems"]["providers"]
    assert any("balance is exhausted" in r.getMessage() for r in caplog.records)


async def test_together_safety_refusal_moderates_the_job(
    fakes: dict[str, Any], data_dir: Path
) -> None:
    job, port = await run_job(fakes, "together", data_dir, prompt="a forbidden thing")
    assert job.status is JobStatus.MODERATED
    assert port.delivered == []


async def test_each_provider_delivers_the_aspect_asked_for(
    fakes: dict[str, Any], data_dir: Path
) -> None:
    for name in ("bfl", "fal", "together"):
        job, port = await run_job(fakes, name, data_dir / name, aspect_ratio="16:9")
        assert job.status is JobStatus.DELIVERED, (name, job.error_message)
        [(_, images)] = port.delivered
        assert images[0].width * 9 == images[0].height * 16, name
        assert job.cost_usd > 0


# Webhooks ---------------------------------------------------------------------------------------


async def open_with_webhooks(
    fakes: dict[str, Any], order: str, data_dir: Path
) -> tuple[Any, App, str]:
    settings = load_settings(
        env_for(
            fakes,
            order,
            data_dir,
            IMAGINE_PUBLIC_URL="http://127.0.0.1:9",
            IMAGINE_HTTP_PORT="0",
            FAL_JWKS_URL=fakes["fal"].jwks_url,
        ),
        env_file=None,
    )
    context = open_app(settings, clock=SystemClock())
    app = await context.__aenter__()
    port = await app.http_server.start()
    public = f"http://127.0.0.1:{port}"
    for provider in app.router.providers():
        provider.public_url = public  # type: ignore[attr-defined]
    return context, app, public


@pytest.mark.parametrize("name", ["bfl", "fal"])
async def test_a_verified_webhook_wakes_the_worker_at_once(
    fakes: dict[str, Any], data_dir: Path, name: str
) -> None:
    fakes[name].generation_seconds = 0.3
    context, app, _ = await open_with_webhooks(fakes, name, data_dir)
    try:
        port = RecordingPort()
        app.add_delivery("console", port)
        await app.start_workers()
        accepted = await app.service.imagine(make_request())
        job = await asyncio.wait_for(app.service.wait(accepted.job.id), 30)
    finally:
        await context.__aexit__(None, None, None)
    assert job.status is JobStatus.DELIVERED
    assert fakes[name].webhook_calls and fakes[name].webhook_calls[0][1] == 200
    # BFL answers a webhook submit without a polling URL: its task is read at get_result.
    polls = fakes[name].recorded("GET", "/v1/get_result" if name == "bfl" else "/fal-ai/")
    # The safety poll comes only after 16 s; the webhook made the single status poll happen.
    assert len([p for p in polls if not p.path.startswith("/results/")]) <= 2


async def test_forged_unknown_and_duplicate_webhooks_change_nothing(
    fakes: dict[str, Any], data_dir: Path
) -> None:
    fakes["bfl"].generation_seconds = 60  # the job stays submitted while webhooks arrive
    context, app, public = await open_with_webhooks(fakes, "bfl", data_dir)
    try:
        app.add_delivery("console", RecordingPort())
        await app.start_workers()
        accepted = await app.service.imagine(make_request())
        for _ in range(200):
            job = await app.store.get_job(accepted.job.id)
            assert job is not None
            if job.status is JobStatus.SUBMITTED:
                break
            await asyncio.sleep(0.02)
        task_id = job.provider_task_id
        body = json.dumps(
            {"id": task_id, "status": "Ready", "result": {"sample": "http://169.254.169.254/x"}}
        ).encode()
        url = f"{public}/webhooks/bfl/{job.id}"
        async with httpx.AsyncClient() as http:
            forged = await http.post(
                url, content=body, headers={"X-BFL-Signature": "sha256=" + "0" * 64}
            )
            unsigned = await http.post(url, content=body)
            secret = app.router.get("bfl").webhook_secret("someone-else")  # type: ignore[attr-defined]
            other = await http.post(
                f"{public}/webhooks/bfl/nosuchjob",
                content=body,
                headers={
                    "X-BFL-Signature": "sha256="
                    + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                },
            )
            fal_forged = await http.post(f"{public}/webhooks/fal/{job.id}", content=b"{}")
        assert (forged.status_code, unsigned.status_code) == (401, 401)
        assert other.status_code == 401  # the secret is per job
        assert fal_forged.status_code == 404  # fal is not configured in this bot
        after = await app.store.get_job(job.id)
        assert after is not None and after.status is JobStatus.SUBMITTED
        assert app.router.webhooks.accepted == 0
        # A genuine webhook delivered twice while the task still runs: the worker polls, sees
        # Pending, and nothing else happens (no second task, no status change).
        good = app.router.get("bfl").webhook_secret(job.id)  # type: ignore[attr-defined]
        signature = "sha256=" + hmac.new(good.encode(), body, hashlib.sha256).hexdigest()
        async with httpx.AsyncClient() as http:
            first = await http.post(url, content=body, headers={"X-BFL-Signature": signature})
            second = await http.post(url, content=body, headers={"X-BFL-Signature": signature})
        assert (first.status_code, second.status_code) == (200, 200)
        await asyncio.sleep(0.2)
        after = await app.store.get_job(job.id)
        assert after is not None and after.status is JobStatus.SUBMITTED
        assert fakes["bfl"].paid_tasks == 1
        assert fakes["bfl"].recorded("GET", "/v1/get_result")  # woken: it polled at once
        assert not fakes["bfl"].recorded("GET", "/results/")  # never fetched the forged URL
    finally:
        await context.__aexit__(None, None, None)


async def test_a_provider_that_keeps_refusing_is_skipped_by_its_circuit(
    fakes: dict[str, Any], data_dir: Path
) -> None:
    fakes["bfl"].fail("submit", Fault(status=503, times=20))
    settings = load_settings(env_for(fakes, "bfl,fal", data_dir), env_file=None)
    port = RecordingPort()
    async with open_app(settings, clock=ManualClock(time.time())) as app:
        app.add_delivery("console", port)
        await app.start_workers()
        jobs = []
        for index in range(8):
            accepted = await app.service.imagine(make_request(user_id=f"u{index}"))
            jobs.append(await asyncio.wait_for(app.service.wait(accepted.job.id), 30))
        assert app.router.breaker.state("bfl") == "open"
    assert [job.provider for job in jobs] == ["fal"] * 8
    assert all(job.status is JobStatus.DELIVERED for job in jobs)
    # Five refusals open the circuit; the later jobs go straight to fal.
    assert len(fakes["bfl"].recorded("POST")) == 5
    assert fakes["bfl"].paid_tasks == 0
