"""The console's /prefer and /history: the same service calls and texts as every platform."""

from __future__ import annotations

from bot.runtime.app import App
from tests.scenarios.test_console_settings import console


async def test_prefer_then_imagine_then_history(app: App) -> None:
    adapter, lines = console(app)
    await app.start_workers()
    await adapter.handle("/prefer suffix in the style of a linocut")
    await adapter.handle("/prefer aspect 16:9")
    assert "suffix: in the style of a linocut" in lines[-1] and "aspect: 16:9" in lines[-1]
    await adapter.handle("/imagine a lighthouse")
    job_id = lines[-1].split()[1].rstrip(":")
    job = await app.service.wait(job_id, timeout=20)
    assert job.request.prompt == "a lighthouse in the style of a linocut"
    assert job.width > job.height
    lines.clear()
    await adapter.handle("/history 5")
    (line,) = [line for line in lines if line.startswith("1. ")]
    assert "a lighthouse in the style of a linocut" in line and f"job {job_id}" in line
    assert ".jpg" in line  # the saved file (JPEG, the bot's default format)
    await adapter.handle(f"/rerun {job_id}")
    assert lines[-1].startswith("job ") and job_id not in lines[-1]


async def test_prefer_show_reset_and_bad_values(app: App) -> None:
    adapter, lines = console(app)
    await adapter.handle("/prefer")
    assert "no preferences" in lines[-1]
    await adapter.handle("/prefer format gif")
    assert lines[-1].startswith("refused:") and "png, jpeg, webp" in lines[-1]
    await adapter.handle("/prefer colour red")
    assert lines[-1].startswith("refused:") and "Unknown preference" in lines[-1]
    await adapter.handle("/prefer model max")
    await adapter.handle("/prefer show")
    assert "model: max" in lines[-1]
    await adapter.handle("/prefer reset")
    assert "cleared" in lines[-1]
    await adapter.handle("/history")
    assert lines[-1] == "You have not made any images yet."
