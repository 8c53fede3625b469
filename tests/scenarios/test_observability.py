"""What an operator sees: /healthz, /readyz, /metrics and the per-step log lines of real jobs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.domain.errors import DeliveryError, PolicyRefusal, ProviderUnavailable
from bot.domain.models import CommunitySettings, Job, JobStatus
from bot.ops.logs import JsonFormatter, redaction_filter
from bot.ports import OutImage, Progress
from bot.providers.base import GenerationSpec, Submission
from bot.providers.offline import OfflineProvider
from bot.providers.router import Router
from bot.runtime.app import App, open_app
from bot.runtime.config import load_settings
from tests.factories import make_request
from tests.store_helpers import save_settings


class RecordingDelivery:
    def __init__(self, fail_with: DeliveryError | None = None) -> None:
        self.delivered: list[tuple[str, int]] = []
        self.failures: list[str] = []
        self._fail_with = fail_with

    async def progress(self, job: Job, progress: Progress) -> None:
        return None

    async def deliver(self, job: Job, images: Sequence[OutImage]) -> Mapping[str, Any]:
        if self._fail_with is not None:
            raise self._fail_with
        self.delivered.append((job.id, len(images)))
        return {"message_id": f"m-{job.id}"}

    async def notify_failure(self, job: Job) -> None:
        self.failures.append(job.id)


@pytest.fixture
async def served(data_dir: Path) -> AsyncIterator[tuple[App, httpx.AsyncClient]]:
    settings = load_settings(
        {"IMAGINE_DATA_DIR": str(data_dir), "IMAGINE_HTTP_PORT": "0"}, env_file=None
    )
    async with open_app(settings) as app:
        port = await app.http_server.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield app, client


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Mapping[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def run_job(app: App, **request: Any) -> Job:
    accepted = await app.service.imagine(make_request(**request))
    return await app.service.wait(accepted.job.id, timeout=30)


async def test_healthz_answers_while_the_process_runs(
    served: tuple[App, httpx.AsyncClient],
) -> None:
    _, client = served
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_names_every_check_and_fails_on_a_disconnected_platform(
    served: tuple[App, httpx.AsyncClient],
) -> None:
    app, client = served
    connected = True

    async def discord_ready() -> str | None:
        return None if connected else "gateway disconnected"

    app.http_server.add_readiness_check("discord", discord_ready)
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": ["discord", "store"]}

    connected = False
    not_ready = await client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["problems"] == {"discord": "gateway disconnected"}


async def test_readyz_fails_when_the_store_is_closed(
    served: tuple[App, httpx.AsyncClient],
) -> None:
    app, client = served
    await app.store.aclose()
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert "store" in response.json()["problems"]


async def test_metrics_count_delivered_jobs_queue_depth_and_refusals(
    served: tuple[App, httpx.AsyncClient],
) -> None:
    app, client = served
    before = await scrape(client)
    for _ in range(3):
        await app.service.imagine(make_request(community_id="metrics-c"))
    queued = await scrape(client)
    assert value(queued, "imagine_queue_depth") == 3

    delivery = RecordingDelivery()
    app.add_delivery("console", delivery)
    await app.start_workers()
    job = await run_job(app, community_id="metrics-c")
    assert job.status is JobStatus.DELIVERED
    await save_settings(app.store, CommunitySettings("metrics-c", banned_users=("u-bad",)), 0.0)
    with pytest.raises(PolicyRefusal):
        await app.service.imagine(make_request(community_id="metrics-c", user_id="u-bad"))
    while await app.store.count_pending({"console"}):
        await app.events.wait_for_change(0.5)

    after = await scrape(client)
    delivered = value(after, "imagine_jobs_total", status="delivered", provider="offline")
    assert (
        delivered - value(before, "imagine_jobs_total", status="delivered", provider="offline") == 4
    )
    assert value(after, "imagine_queue_depth") == 0
    refused = value(after, "imagine_requests_refused_total", kind="banned")
    assert refused - value(before, "imagine_requests_refused_total", kind="banned") == 1
    waits = value(after, "imagine_queue_wait_seconds_count")
    assert waits - value(before, "imagine_queue_wait_seconds_count") == 4
    latencies = value(after, "imagine_provider_seconds_count", provider="offline")
    assert latencies - value(before, "imagine_provider_seconds_count", provider="offline") == 4
    polls = value(
        after, "imagine_provider_call_seconds_count", provider="offline", operation="poll"
    )
    assert polls > value(
        before, "imagine_provider_call_seconds_count", provider="offline", operation="poll"
    )
    assert len(delivery.delivered) == 4


class RateLimitedOnce(OfflineProvider):
    """The offline renderer behind a provider that answers 429 to its first submit."""

    name = "bfl"

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def submit(self, spec: GenerationSpec) -> Submission:
        if not self.refused:
            self.refused += 1
            raise ProviderUnavailable("429 Too Many Requests", provider=self.name, status=429)
        return await super().submit(spec)


async def test_metrics_count_429s_provider_errors_and_delivery_failures(
    served: tuple[App, httpx.AsyncClient],
) -> None:
    app, client = served
    limited = RateLimitedOnce()
    app.router = Router([limited, OfflineProvider()])
    app.add_delivery("console", RecordingDelivery(fail_with=DeliveryError("403", retryable=False)))
    before = await scrape(client)
    await app.start_workers()

    job = await run_job(app)

    assert job.status is JobStatus.FAILED and job.error_code == "delivery_failed"
    assert job.provider == "offline"  # failed over after the 429
    after = await scrape(client)
    assert (
        value(after, "imagine_http_429_total", service="bfl")
        - value(before, "imagine_http_429_total", service="bfl")
        == 1
    )
    errors = {"provider": "bfl", "operation": "submit", "kind": "rate_limited"}
    assert (
        value(after, "imagine_provider_errors_total", **errors)
        - value(before, "imagine_provider_errors_total", **errors)
        == 1
    )
    failures = {"platform": "console", "retryable": "false"}
    assert (
        value(after, "imagine_delivery_failures_total", **failures)
        - value(before, "imagine_delivery_failures_total", **failures)
        == 1
    )


async def test_each_job_step_logs_one_json_line_with_job_community_provider_and_duration(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = logging.StreamHandler()  # bound to the captured stderr
    handler.addFilter(redaction_filter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        app.add_delivery("console", RecordingDelivery())
        await app.start_workers()
        job = await run_job(app, community_id="log-c")
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    steps = [line for line in lines if line.get("job_id") == job.id and "step" in line]
    assert [s["step"] for s in steps] == ["queue", "submit", "generate", "deliver"]
    assert {s["community"] for s in steps} == {"log-c"}
    assert [s.get("provider") for s in steps] == [None, "offline", "offline", "offline"]
    assert all(s["duration_ms"] >= 0 for s in steps)
    assert steps[-1]["status"] == "delivered"
