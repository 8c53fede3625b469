"""The facade the adapters call reaches every use case: one pass through each of its methods."""

from __future__ import annotations

import random
from typing import Any

from bot.domain.community import Actor, AddItem
from bot.domain.community_settings import BLOCKED_TERMS
from bot.domain.models import JobStatus
from bot.jobs.service import ImagineService
from tests.factories import make_request
from tests.unit.jobs.conftest import Rig

OWNER = Actor("owner", is_platform_admin=True)


async def test_every_method_reaches_its_use_case(rig: Rig, service_parts: dict[str, Any]) -> None:
    service = ImagineService(**service_parts, providers=("bfl",), rng=random.Random(2))
    assert service.catalog is service_parts["catalog"]
    accepted = await service.imagine(make_request(seed=9))
    assert (await service.job(accepted.job.id)).status is JobStatus.QUEUED
    assert await service.note_delivery(accepted.job.id, {"m": "1"})
    vary = await service.follow_up(accepted.job.id, "vary", make_request())
    assert vary.job.seed == 10
    cancelled = await service.cancel(vary.job.id, user_id="u1")
    assert cancelled.status is JobStatus.CANCELLED
    waited = await service.wait(vary.job.id, timeout=0)
    assert waited.id == vary.job.id
    assert (await service.quota("c1", "u1")).used_today == 1  # cancelled before a submit: refunded
    assert await service.is_admin("g1", OWNER)
    await service.update_settings("g1", OWNER, AddItem(BLOCKED_TERMS, "wyvern"))
    assert (await service.get_settings("g1")).blocked_terms == ("wyvern",)
    assert await service.blocked_terms("g1", OWNER) == ("wyvern",)
    await service.require_admin("g1", OWNER, "open_dashboard")
    assert [e.action for e in await service.audit_log("g1", OWNER)] == ["block_term"]
