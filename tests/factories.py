"""Builders of domain values for tests."""

from __future__ import annotations

import itertools
from typing import Any

from bot.models import ImagineRequest, Job, JobStatus, ReplyTarget

_ids = itertools.count(1)


def make_request(**overrides: Any) -> ImagineRequest:
    values: dict[str, Any] = {
        "platform": "console",
        "community_id": "c1",
        "channel_id": "ch1",
        "user_id": "u1",
        "prompt": "a red fox at dawn",
        "reply": ReplyTarget(platform="console", channel_id="ch1"),
        "variant": "pro",
    }
    values.update(overrides)
    return ImagineRequest(**values)


def make_job(now: float = 1_700_000_000.0, **overrides: Any) -> Job:
    request = overrides.pop("request", None) or make_request()
    number = next(_ids)
    values: dict[str, Any] = {
        "id": f"job{number:06d}",
        "request": request,
        "status": JobStatus.QUEUED,
        "width": 1024,
        "height": 1024,
        "seed": 7,
        "variant": "pro",
        "created_at": now + number * 0.001,
        "updated_at": now,
    }
    values.update(overrides)
    return Job(**values)
