"""Builders of domain values for tests."""

from __future__ import annotations

import io
import itertools
from typing import Any

from PIL import Image

from bot.domain.limits import LimitPlan
from bot.domain.models import ImagineRequest, Job, JobStatus, ReplyTarget

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


def make_plan(**overrides: Any) -> LimitPlan:
    """The limits of community c1's user u1: 5 a minute and nothing else, unless overridden."""
    values: dict[str, Any] = {
        "community_id": "c1",
        "user_id": "u1",
        "rate": 5,
        "period": 60.0,
        "burst": None,
        "daily": None,
        "max_in_flight": None,
        "community_daily": None,
        "community_budget_usd": None,
    }
    values.update(overrides)
    return LimitPlan(**values)


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


def photo_with_gps() -> bytes:
    """A small JPEG carrying a camera make and a GPS position (both must be stripped)."""
    image = Image.new("RGB", (120, 80), (10, 200, 90))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}  # GPS
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, quality=90)
    return out.getvalue()
