"""Prometheus metrics of the bot, on one registry served at ``/metrics``.

The core calls the small functions below (``job_step``, ``provider_call``, ``refused`` ...) rather
than touching metric objects, so the names and labels live in this one file.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bot.domain.errors import (
    DownloadRefused,
    InvalidImage,
    ProviderError,
    ProviderFailed,
    ProviderModerated,
    ProviderTimeout,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
)
from bot.domain.models import Job, JobStatus

T = TypeVar("T")

REGISTRY = CollectorRegistry()

# Provider calls are quick (submit, poll, download); generation takes seconds to minutes.
_CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_GENERATION_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 120, 300, 600)
_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)

JOBS = Counter(
    "imagine_jobs_total",
    "Jobs entering each status, by provider ('none' before a provider is chosen)",
    ["status", "provider"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "imagine_queue_depth", "Jobs queued and not leased by a worker", registry=REGISTRY
)
JOBS_RUNNING = Gauge("imagine_jobs_running", "Jobs leased by a worker", registry=REGISTRY)
QUEUE_WAIT = Histogram(
    "imagine_queue_wait_seconds",
    "Time from a job being queued to its first submit to a provider",
    buckets=_WAIT_BUCKETS,
    registry=REGISTRY,
)
PROVIDER_LATENCY = Histogram(
    "imagine_provider_seconds",
    "Time from submit to the finished image stored, by provider",
    ["provider"],
    buckets=_GENERATION_BUCKETS,
    registry=REGISTRY,
)
PROVIDER_CALL = Histogram(
    "imagine_provider_call_seconds",
    "Duration of one provider HTTP call, by provider and operation (submit, poll, fetch)",
    ["provider", "operation"],
    buckets=_CALL_BUCKETS,
    registry=REGISTRY,
)
PROVIDER_ERRORS = Counter(
    "imagine_provider_errors_total",
    "Failed provider calls, by provider, operation and kind of error",
    ["provider", "operation", "kind"],
    registry=REGISTRY,
)
HTTP_429 = Counter(
    "imagine_http_429_total",
    "Answers with HTTP 429 (too many requests), by service (a provider or a platform)",
    ["service"],
    registry=REGISTRY,
)
REFUSALS = Counter(
    "imagine_requests_refused_total",
    "Requests refused before a job existed, by kind (rate, quota, banned, invalid, ...)",
    ["kind"],
    registry=REGISTRY,
)
ACCEPTED = Counter(
    "imagine_requests_accepted_total", "Requests stored as a job", ["platform"], registry=REGISTRY
)
SPEND = Counter(
    "imagine_spend_usd_total",
    "Provider spend in US dollars, by community",
    ["community"],
    registry=REGISTRY,
)
DELIVERY_FAILURES = Counter(
    "imagine_delivery_failures_total",
    "Failed deliveries (images or failure notices), by platform and whether they are retried",
    ["platform", "retryable"],
    registry=REGISTRY,
)
STEP_SECONDS = Histogram(
    "imagine_job_step_seconds",
    "Duration of one worker step of a job (submit, wait and download, deliver, notify)",
    ["step"],
    buckets=_WAIT_BUCKETS,
    registry=REGISTRY,
)


def error_kind(exc: BaseException) -> str:
    """A short, bounded label for an error (never its message, which may hold a URL)."""
    status = getattr(exc, "status", None)
    if isinstance(exc, ProviderUnavailable):
        return "rate_limited" if status == 429 else "unavailable"
    kinds: tuple[tuple[type[BaseException], str], ...] = (
        (SubmitOutcomeUnknown, "outcome_unknown"),
        (ProviderTimeout, "timeout"),
        (ProviderModerated, "moderated"),
        (ProviderFailed, "failed"),
        (DownloadRefused, "download_refused"),
        (InvalidImage, "invalid_image"),
        (ProviderError, "error"),
    )
    for cls, kind in kinds:
        if isinstance(exc, cls):
            return kind
    return "internal"


async def provider_call(provider: str, operation: str, call: Awaitable[T]) -> T:
    """Await one provider call, recording its duration and, when it fails, the kind of error."""
    started = time.perf_counter()
    try:
        result = await call
    except Exception as exc:
        PROVIDER_ERRORS.labels(provider, operation, error_kind(exc)).inc()
        if getattr(exc, "status", None) == 429:
            HTTP_429.labels(provider).inc()
        raise
    finally:
        PROVIDER_CALL.labels(provider, operation).observe(time.perf_counter() - started)
    return result


def rate_limited(service: str) -> None:
    """A service answered 429 (call from adapters and providers that handle it themselves)."""
    HTTP_429.labels(service).inc()


def accepted(job: Job) -> None:
    ACCEPTED.labels(job.request.platform).inc()
    JOBS.labels(JobStatus.QUEUED.value, "none").inc()


def refused(kind: str) -> None:
    REFUSALS.labels(kind).inc()


def delivery_failed(platform: str, retryable: bool) -> None:
    DELIVERY_FAILURES.labels(platform, "true" if retryable else "false").inc()


def job_step(old: Job, new: Job, seconds: float) -> str:
    """Record one worker step of a job (``old`` before it, ``new`` after); return the step's name."""
    step = step_name(old, new)
    STEP_SECONDS.labels(step).observe(seconds)
    if new.status is not old.status:
        JOBS.labels(new.status.value, new.provider or "none").inc()
        if old.status is JobStatus.QUEUED and new.status is JobStatus.SUBMITTED:
            QUEUE_WAIT.observe(max(0.0, (new.submit_started_at or new.updated_at) - new.created_at))
            if new.cost_usd:
                SPEND.labels(new.community_id).inc(new.cost_usd)
        if new.status is JobStatus.FETCHED and new.provider and new.submit_started_at:
            PROVIDER_LATENCY.labels(new.provider).observe(
                max(0.0, new.updated_at - new.submit_started_at)
            )
    return step


def step_name(old: Job, new: Job) -> str:
    if old.status is JobStatus.QUEUED and new.status is JobStatus.SUBMITTED:
        return "submit"
    if old.status is JobStatus.SUBMITTED and new.status is JobStatus.FETCHED:
        return "generate"
    if new.status is JobStatus.DELIVERED:
        return "deliver"
    if old.status.is_terminal:
        return "notify"
    if new.status.is_terminal:
        return new.status.value
    return old.status.value


def set_queue(queued: int, running: int) -> None:
    QUEUE_DEPTH.set(queued)
    JOBS_RUNNING.set(running)
