"""The offline provider: a deterministic local renderer, no network, for demos and tests."""

from __future__ import annotations

import hashlib
import io
import random
import textwrap
from collections.abc import Mapping
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from bot.domain.clock import Clock, SystemClock
from bot.domain.models import OUTPUT_FORMATS
from bot.providers.base import (
    GenerationSpec,
    PollResult,
    PollState,
    Submission,
    format_for,
)


class OfflineProvider:
    """Renders a labelled preview from the prompt, size and seed: the same bytes for the same inputs."""

    name = "offline"
    submit_is_idempotent = True
    # Pillow writes every format the bot offers.
    output_formats = OUTPUT_FORMATS

    def __init__(
        self, *, latency: float = 0.0, clock: Clock | None = None, concurrency: int = 64
    ) -> None:
        self._latency = latency
        self._clock = clock or SystemClock()
        self.concurrency = concurrency

    async def submit(self, spec: GenerationSpec) -> Submission:
        return Submission(
            task={
                "id": f"offline-{spec.job_id}",
                "ready_at": self._clock.now() + self._latency,
                "eta": self._latency,
                "prompt": spec.prompt,
                "model_id": spec.model_id,
                "width": spec.width,
                "height": spec.height,
                "seed": spec.seed,
                "count": spec.count,
                "inputs": len(spec.input_images),
                "format": format_for(spec.output_format, self.output_formats),
            },
            cost_usd=0.0,
        )

    async def poll(self, task: Mapping[str, Any]) -> PollResult:
        remaining = float(task["ready_at"]) - self._clock.now()
        if remaining > 0:
            return PollResult(PollState.PENDING, retry_after=remaining, queue_position=0)
        return PollResult(PollState.READY, seed=int(task["seed"]))

    async def fetch(self, task: Mapping[str, Any], result: PollResult) -> list[bytes]:
        return [
            render_preview(
                prompt=str(task["prompt"]),
                model_id=str(task["model_id"]),
                width=int(task["width"]),
                height=int(task["height"]),
                seed=int(task["seed"]) + index,
                fmt=str(task.get("format", "png")),
            )
            for index in range(int(task.get("count", 1)))
        ]

    async def cancel(self, task: Mapping[str, Any]) -> None:
        return None


def render_preview(
    *, prompt: str, model_id: str, width: int, height: int, seed: int, fmt: str = "png"
) -> bytes:
    """An image (PNG, JPEG or WEBP) that depends only on its arguments (no timestamps, no
    metadata)."""
    digest = hashlib.sha256(f"{prompt}\x00{model_id}\x00{seed}".encode()).digest()
    rng = random.Random(digest)
    top = tuple(rng.randrange(30, 220) for _ in range(3))
    bottom = tuple(rng.randrange(30, 220) for _ in range(3))
    mask = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(
        Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), mask
    )
    draw = ImageDraw.Draw(image, "RGBA")
    for _ in range(12):
        r = rng.randrange(min(width, height) // 20 + 1, min(width, height) // 4 + 2)
        x, y = rng.randrange(width), rng.randrange(height)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256), 110)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    size = max(12, min(width, height) // 22)
    font = ImageFont.load_default(size=size)
    banner = f"OFFLINE PREVIEW · {model_id} · seed {seed} · {width}x{height}"
    lines = [banner, "", *textwrap.wrap(prompt, width=max(16, width // (size * 6 // 10)))[:6]]
    y = size
    for line in lines:
        draw.text((size + 2, y + 2), line, fill=(0, 0, 0, 160), font=font)
        draw.text((size, y), line, fill=(255, 255, 255, 255), font=font)
        y += int(size * 1.3)
    out = io.BytesIO()
    if fmt == "jpeg":
        image.save(out, format="JPEG", quality=90)
    elif fmt == "webp":
        image.save(out, format="WEBP", quality=90)
    else:
        image.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()
