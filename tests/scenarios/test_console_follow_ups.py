"""The result loop on the console: /upscale JOB K, /vary JOB K [strong], /blend IMG IMG [prompt] and
/cancel JOB, through the whole core on the offline provider."""

from __future__ import annotations

import io
import re
from pathlib import Path

from PIL import Image

from bot.domain.models import JobStatus
from bot.runtime.app import App
from tests.scenarios.test_console_settings import console

QUEUED = re.compile(r"^job (?P<id>[0-9a-f]+): queued")


def last_job(lines: list[str]) -> str:
    match = QUEUED.match(lines[-1])
    assert match, lines[-1]
    return match["id"]


def png(path: Path, color: str) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


async def test_upscale_and_vary_act_on_image_k(app: App) -> None:
    adapter, lines = console(app)
    await app.start_workers()
    await adapter.handle("/imagine two moons --n 2 --seed 5")
    parent = await app.service.wait(last_job(lines), timeout=30)
    assert parent.status is JobStatus.DELIVERED and len(parent.images) == 2

    await adapter.handle(f"/upscale {parent.id} 2")
    upscale = await app.service.job(last_job(lines))
    assert upscale.request.input_images == (f"blob:{parent.images[1]}",)
    assert upscale.width * upscale.height > 1.9 * parent.width * parent.height
    assert upscale.seed == 5

    await adapter.handle(f"/vary {parent.id} 2")
    vary = await app.service.job(last_job(lines))
    assert vary.request.input_images == (f"blob:{parent.images[1]}",) and vary.seed != 5

    await adapter.handle(f"/vary {parent.id} 1 strong")
    strong = await app.service.job(last_job(lines))
    assert strong.request.input_images == () and strong.request.action == "vary-strong"

    await adapter.handle(f"/vary {parent.id} 3")
    assert lines[-1] == "refused: That job has 2 images: pick 1 to 2."
    await adapter.handle(f"/upscale {parent.id} sideways")
    assert lines[-1].startswith("refused: 'sideways' is neither")


async def test_blend_sends_every_file_and_one_file_is_refused(app: App, tmp_path: Path) -> None:
    adapter, lines = console(app)
    a, b = png(tmp_path / "a.png", "red"), png(tmp_path / "b.png", "blue")
    await adapter.handle(f"/blend {a} {b} a purple sunset")
    job = await app.service.job(last_job(lines))
    assert job.request.action == "blend" and job.request.prompt == "a purple sunset"
    assert len(job.request.input_images) == 2
    assert all(ref.startswith("blob:inputs/") for ref in job.request.input_images)
    await adapter.handle(f"/blend {a}")
    assert lines[-1] == "refused: /blend takes at least two images."


async def test_cancel_ends_a_queued_job(app: App) -> None:
    adapter, lines = console(app)
    await adapter.handle("/imagine a comet")
    job_id = last_job(lines)
    await adapter.handle(f"/cancel {job_id}")
    assert lines[-1] == f"job {job_id}: cancelled"
    assert (await app.service.job(job_id)).status is JobStatus.CANCELLED
