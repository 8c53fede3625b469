"""Rate-limit decisions per second: ``Store.admit_job`` (the atomic check-and-enqueue every
/imagine goes through), 16 callers at a time, each user asking 10 times, so that half the requests
are refused by the default per-user limits (5 a minute, 5 in flight)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.domain.limits import LimitDefaults, resolve_plan
from bot.domain.models import CommunitySettings
from bot.store import open_store
from tests.factories import make_job, make_request

CALLERS = 16


async def decisions_per_second(url: str, decisions: int) -> dict[str, Any]:
    defaults = LimitDefaults()
    async with open_store(url) as store:
        admitted = refused = 0
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(decisions):
            queue.put_nowait(i)

        async def caller() -> None:
            nonlocal admitted, refused
            while not queue.empty():
                i = queue.get_nowait()
                community, user = f"c{i % 20}", f"u{i % max(1, decisions // 10)}"
                job = make_job(
                    now=time.time(),
                    request=make_request(community_id=community, user_id=user),
                )
                plan = resolve_plan(CommunitySettings(community), defaults, user_id=user)
                admission = await store.admit_job(job, plan)
                if admission.decision.admitted:
                    admitted += 1
                else:
                    refused += 1

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(CALLERS)))
        seconds = time.perf_counter() - started
    return {
        "decisions": decisions,
        "admitted": admitted,
        "refused": refused,
        "seconds": round(seconds, 2),
        "decisions_per_s": round(decisions / seconds, 1),
    }
