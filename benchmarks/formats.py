"""Bytes per delivered 1-megapixel image in each output format, through the whole core: the BFL
fake answers ``output_format`` with a photo-like image in that format, the bot checks, cleans and
stores it, and the delivery port receives what a platform would be sent."""

from __future__ import annotations

import asyncio
import io
import random
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image, ImageFilter

from bot.domain.clock import ManualClock
from bot.domain.models import OUTPUT_FORMATS, Job
from bot.ports import OutImage, Progress
from bot.runtime.app import open_app
from bot.runtime.config import load_settings
from tests.factories import make_request
from tests.fakes.bfl import BflTask, FakeBfl

SIDE = 1024  # one megapixel as the providers count it (1024 x 1024)
# The quality the fake's provider writes its JPEGs at (BFL does not publish its own).
PROVIDER_JPEG_QUALITY = 90


def photo_like(side: int = SIDE, seed: int = 17) -> Image.Image:
    """Smooth shapes at several scales with a little grain: closer to a generated photo than flat
    colour (which flatters PNG) or pure noise (which no format compresses)."""
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((side, side)).convert("RGB")
    for scale, weight in ((16, 0.45), (64, 0.3), (256, 0.15)):
        small = Image.frombytes("RGB", (scale, scale), rng.randbytes(scale * scale * 3))
        layer = small.resize((side, side), Image.Resampling.BICUBIC)
        image = Image.blend(image, layer.filter(ImageFilter.GaussianBlur(side / scale / 4)), weight)
    grain = Image.frombytes("L", (side, side), rng.randbytes(side * side)).convert("RGB")
    return Image.blend(image, grain, 0.04)


class PhotoBfl(FakeBfl):
    """The BFL fake answering with one photo-like image in the format each task asks for."""

    def __init__(self, photo: Image.Image) -> None:
        super().__init__(credits=1e9)
        self.photo = photo

    def _result(self, task: BflTask) -> dict[str, Any]:
        if task.outcome == "Ready" and task.sample is None:
            # ``output_format`` defaults to jpeg (https://docs.bfl.ai/api-reference/models/
            # generate-or-edit-an-image-with-flux2-%5Bpro%5D); BFL makes jpeg and png.
            fmt = str(task.body.get("output_format") or "jpeg")
            out = io.BytesIO()
            if fmt == "png":
                self.photo.save(out, format="PNG")
            else:
                self.photo.save(out, format="JPEG", quality=PROVIDER_JPEG_QUALITY)
            task.sample = self.store_image(out.getvalue(), fmt)
        return super()._result(task)


class _Port:
    def __init__(self) -> None:
        self.images: list[OutImage] = []

    async def progress(self, job: Job, progress: Progress) -> None:
        return None

    async def deliver(self, job: Job, images: Sequence[OutImage]) -> Mapping[str, Any]:
        self.images.extend(images)
        return {"message": job.id}

    async def notify_failure(self, job: Job) -> None:
        return None


async def bytes_per_image() -> dict[str, Any]:
    """``{format: bytes}`` of one delivered 1-megapixel image per format, and each over PNG's."""
    fake = PhotoBfl(photo_like())
    await fake.start()
    sizes: dict[str, int] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="imagine-bench-formats-") as data:
            env = {
                "IMAGINE_DATA_DIR": data,
                "IMAGINE_PROVIDERS": "bfl",
                "BFL_API_KEY": fake.key,
                "BFL_API_BASE": fake.base_url,
            }
            port = _Port()
            settings = load_settings(env, env_file=None)
            async with open_app(settings, clock=ManualClock(time.time())) as app:
                app.add_delivery("console", port)
                await app.start_workers()
                for fmt in OUTPUT_FORMATS:
                    request = make_request(prompt=f"bench {fmt}", output_format=fmt)
                    accepted = await app.service.imagine(
                        request.with_changes(width=SIDE, height=SIDE)
                    )
                    job = await asyncio.wait_for(app.service.wait(accepted.job.id), 60)
                    if not port.images or not job.images:
                        raise RuntimeError(f"{fmt}: not delivered ({job.error_message})")
                    sizes[fmt] = len(port.images.pop().data)
    finally:
        await fake.aclose()
    png = sizes["png"]
    return {
        "megapixels": 1.0,
        "bytes": sizes,
        "over_png": {fmt: round(size / png, 3) for fmt, size in sizes.items()},
    }
