"""/quota: what a user has left today, counted from their jobs, with admins exempt from the
per-user limits."""

from __future__ import annotations

from typing import Any

from bot.domain.models import JobStatus
from bot.jobs.quota import Quota
from tests.unit.jobs.conftest import Rig


async def test_a_user_s_jobs_count_until_they_fail(rig: Rig, service_parts: dict[str, Any]) -> None:
    quota = Quota(store=rig.store, clock=rig.clock, policy=service_parts["policy"])
    fresh = await quota.quota("c1", "u1")
    assert (fresh.used_today, fresh.in_flight, fresh.exempt) == (0, 0, False)
    job = await rig.claimed()
    charged = await quota.quota("c1", "u1")
    assert (charged.used_today, charged.in_flight) == (1, 1)
    failed = job.evolve(status=JobStatus.FAILED, outcome_sent=True)
    assert await rig.store.save_job_step(
        failed, worker_id=job.lease_owner or "", expected=job.status
    )
    refunded = await quota.quota("c1", "u1")
    assert (refunded.used_today, refunded.in_flight) == (0, 0)


async def test_platform_admins_are_exempt(rig: Rig, service_parts: dict[str, Any]) -> None:
    quota = Quota(store=rig.store, clock=rig.clock, policy=service_parts["policy"])
    report = await quota.quota("c1", "boss", is_platform_admin=True)
    assert report.exempt
