"""How jobs and audit entries map to table columns, the same for every backend."""

from __future__ import annotations

import json
from typing import Any

from bot.domain.community import AuditEntry
from bot.domain.models import ImagineRequest, Job, JobStatus, dumps
from bot.store.sql import Row


def job_row_values(job: Job) -> dict[str, Any]:
    """The columns a job is stored in."""
    values: dict[str, Any] = {
        "community_id": job.request.community_id,
        "user_id": job.request.user_id,
        "platform": job.request.platform,
        "dedupe_key": job.request.dedupe_key,
        "request_json": job.request.json_text,
        # The request's image count again, so usage sums need not parse request_json.
        "image_count": job.request.count,
        "variant": job.variant,
        "created_at": job.created_at,
    }
    values.update(job_step_values(job))
    return values


def job_step_values(job: Job) -> dict[str, Any]:
    """The columns a stored step may change (``save_job_step``): all but those the request fixed
    when the job was made, which are never serialized again."""
    return {
        "id": job.id,
        "status": job.status.value,
        "width": job.width,
        "height": job.height,
        "seed": job.seed,
        "provider": job.provider,
        "model_id": job.model_id,
        "provider_task_json": dumps(dict(job.provider_task)) if job.provider_task else None,
        "submit_started_at": job.submit_started_at,
        "attempts": job.attempts,
        "not_before": job.not_before,
        "lease_owner": job.lease_owner,
        "lease_expires_at": job.lease_expires_at,
        "images_json": dumps(list(job.images)) if job.images else "[]",
        "cost_usd": job.cost_usd,
        "error_code": job.error_code,
        "error_message": job.error_message,
        # A boolean column in PostgreSQL; sqlite3 stores True and False as 1 and 0.
        "outcome_sent": bool(job.outcome_sent),
        "delivery_json": dumps(dict(job.delivery)) if job.delivery else "{}",
        "updated_at": job.updated_at,
        "finished_at": job.finished_at,
    }


def job_from_row(row: Row) -> Job:
    task = row["provider_task_json"]
    return Job(
        id=row["id"],
        request=ImagineRequest.from_json(json.loads(row["request_json"])),
        status=JobStatus(row["status"]),
        width=int(row["width"]),
        height=int(row["height"]),
        seed=int(row["seed"]),
        variant=row["variant"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        provider=row["provider"],
        model_id=row["model_id"],
        provider_task=json.loads(task) if task else None,
        submit_started_at=row["submit_started_at"],
        attempts=int(row["attempts"]),
        not_before=float(row["not_before"]),
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        images=tuple(json.loads(row["images_json"])),
        cost_usd=float(row["cost_usd"]),
        error_code=row["error_code"],
        error_message=row["error_message"],
        outcome_sent=bool(row["outcome_sent"]),
        delivery=json.loads(row["delivery_json"]),
        finished_at=row["finished_at"],
    )


def audit_values(entry: AuditEntry) -> dict[str, Any]:
    return {
        "community_id": entry.community_id,
        "at": entry.at,
        "actor_id": entry.actor_id,
        "kind": entry.kind,
        "action": entry.action,
        "detail": entry.detail,
        "channel_id": entry.channel_id,
        "origin": entry.origin,
    }


def audit_from_row(row: Row) -> AuditEntry:
    return AuditEntry(
        id=int(row["id"]),
        community_id=row["community_id"],
        at=float(row["at"]),
        actor_id=row["actor_id"],
        kind=row["kind"],
        action=row["action"],
        detail=row["detail"],
        channel_id=row["channel_id"],
        origin=row["origin"],
    )
