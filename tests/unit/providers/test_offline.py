"""The offline renderer makes the formats the bot offers, the same bytes for the same inputs."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.domain.catalog import load_catalog
from bot.domain.clock import ManualClock
from bot.providers.base import GenerationSpec, PollState
from bot.providers.offline import OfflineProvider


@pytest.mark.parametrize(("fmt", "pillow"), [("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")])
async def test_offline_renders_each_format_deterministically(fmt: str, pillow: str) -> None:
    variant = load_catalog().variants["pro"]
    model = variant.model_for("offline")
    assert model is not None
    spec = GenerationSpec(
        job_id="j1",
        prompt="a lighthouse",
        variant=variant,
        model=model,
        width=320,
        height=240,
        seed=3,
        output_format=fmt,
    )
    provider = OfflineProvider(clock=ManualClock())
    submission = await provider.submit(spec)
    result = await provider.poll(submission.task)
    assert result.state is PollState.READY
    first = await provider.fetch(submission.task, result)
    again = await provider.fetch((await provider.submit(spec)).task, result)
    assert first == again
    with Image.open(io.BytesIO(first[0])) as image:
        assert (image.format, image.size) == (pillow, (320, 240))
