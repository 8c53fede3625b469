"""Prometheus metrics of the bot, on one registry served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

JOBS = Counter(
    "imagine_jobs_total",
    "Jobs by final status and provider",
    ["status", "provider"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge("imagine_queue_depth", "Jobs waiting for a worker", registry=REGISTRY)
PROVIDER_LATENCY = Histogram(
    "imagine_provider_seconds",
    "Time from submit to result, by provider",
    ["provider"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300),
    registry=REGISTRY,
)
