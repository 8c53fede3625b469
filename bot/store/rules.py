"""What the store decides, written once for every backend: admitting a job under the limits,
reading a user's and a community's usage, and changing a community's settings with its audit
line. Each runs the backend's named queries through ``Sql``, inside the transaction the backend
opened for it (``bot.domain.limits`` holds the arithmetic)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bot.domain.community import AuditEntry
from bot.domain.errors import StoreError
from bot.domain.limits import Decision, LimitPlan, Usage, day_start, decide
from bot.domain.models import CommunitySettings, Job, dumps
from bot.store.base import Admission, as_follower
from bot.store.rows import audit_values, job_from_row, job_row_values
from bot.store.sql import Sql

_ADMITTED = Decision(True)


async def admit(
    sql: Sql, job: Job, plan: LimitPlan, *, cache_key: str | None, share_in_flight: bool
) -> Admission:
    """``Store.admit_job`` inside its transaction (see its docstring for the steps)."""
    now = job.created_at
    if job.request.dedupe_key is not None:
        row = await sql.one("get_job_by_dedupe", {"dedupe_key": job.request.dedupe_key})
        if row is not None:
            return Admission(job_from_row(row), False, _ADMITTED)
    usage = await read_usage(sql, plan, now)
    decision = decide(plan, usage, now=now, images=job.request.count, cost_usd=job.cost_usd)
    if decision.new_tat is not None:
        await sql.run("set_rate_tat", {"key": plan.rate_key, "tat": decision.new_tat})
    if not decision.admitted:
        return Admission(job, False, decision)
    if share_in_flight and cache_key is not None:
        params = {"community_id": job.community_id, "cache_key": cache_key}
        leader = await sql.one("find_leader_job", params)
        if leader is not None:
            job = as_follower(job, str(leader[0]))
    if await sql.run("insert_job", job_row_values(job)) != 1:
        # The dedupe key was looked up in this transaction: only a second insert of it gets here.
        raise StoreError(f"job {job.id} was not stored: its dedupe key is taken")
    if cache_key is not None:
        await sql.run(
            "add_cache_key",
            {
                "job_id": job.id,
                "community_id": job.community_id,
                "cache_key": cache_key,
                "created_at": now,
            },
        )
    return Admission(job, True, decision)


async def read_usage(sql: Sql, plan: LimitPlan, now: float) -> Usage:
    """The ``Usage`` of ``plan``'s user and community on the UTC day of ``now``."""
    params = {
        "community_id": plan.community_id,
        "user_id": plan.user_id,
        "day_start": day_start(now),
        "key": plan.rate_key,
    }
    tat = await sql.one("get_rate_tat", params)
    user = await sql.one("user_usage", params)
    community = await sql.one("community_usage", params)
    if user is None or community is None:  # pragma: no cover - aggregates answer one row
        raise StoreError("the usage queries answered no row")
    return Usage(
        rate_tat=float(tat[0]) if tat else None,
        user_images_today=int(user[0]),
        user_in_flight=int(user[1]),
        community_images_today=int(community[0]),
        community_spent_usd=float(community[1]),
    )


async def change_settings(
    sql: Sql,
    community_id: str,
    change: Callable[[CommunitySettings | None], CommunitySettings],
    audit: AuditEntry,
) -> CommunitySettings:
    """``Store.change_settings`` inside its transaction: an error ``change`` raises rolls it back."""
    row = await sql.one("get_settings", {"community_id": community_id})
    current = settings_from_row(row)
    new = change(current)
    await sql.run(
        "save_settings",
        {"community_id": community_id, "settings_json": dumps(new.to_json()), "now": audit.at},
    )
    await sql.run("add_audit", audit_values(audit))
    return new


def settings_from_row(row: Any) -> CommunitySettings | None:
    """A ``get_settings`` row (or None) as settings."""
    return CommunitySettings.from_json(json.loads(row[0])) if row is not None else None
