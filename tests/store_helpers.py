"""Store operations only tests need, built on the ``Store`` port so they work on every backend:
putting a job or a community's settings straight into the store, and claiming one job."""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain.community import AuditEntry
from bot.domain.limits import LimitPlan
from bot.domain.models import CommunitySettings, Job
from bot.store import Store


async def enqueue_job(store: Store, job: Job) -> tuple[Job, bool]:
    """Store ``job`` as admission does when no limit applies; with its dedupe key already
    stored, answer the earlier job and False."""
    unlimited = LimitPlan(
        community_id=job.community_id,
        user_id=job.request.user_id,
        rate=None,
        period=None,
        burst=None,
        daily=None,
        max_in_flight=None,
        community_daily=None,
        community_budget_usd=None,
    )
    admission = await store.admit_job(job, unlimited)
    return admission.job, admission.created


async def claim_next_job(
    store: Store, worker_id: str, now: float, lease_seconds: float, platforms: Iterable[str]
) -> Job | None:
    """Lease the one job the store's fair order gives next, if any."""
    jobs = await store.claim_jobs(worker_id, now, lease_seconds, platforms, 1)
    return jobs[0] if jobs else None


async def save_settings(store: Store, settings: CommunitySettings, now: float) -> None:
    """Store a community's settings as given (a test's setup), with an audit line saying so."""
    audit = AuditEntry(settings.community_id, now, "test", "change", "test setup")
    await store.change_settings(settings.community_id, lambda _: settings, audit)
