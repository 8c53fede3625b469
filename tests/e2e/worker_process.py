"""One worker process for the multi-process tests: ``python -m tests.e2e.worker_process``.

It is ``imagine-bot worker`` with two test doubles at the edges, both recording into tables of the
test's PostgreSQL schema so the test sees what every process did:

- the platform ``recorder``: each post (image or failure notice) is a row in ``platform_posts``.
  Like a platform message with an idempotency key (Discord's ``nonce`` + ``enforce_nonce``), a
  repeated post of one job shows one message; the table keeps every attempt so the test can see
  who posted what;
- the provider: the offline renderer behind a wrapper that writes a row in ``provider_tasks`` before
  it creates a task. It declares its submit not idempotent, like a paid provider, so the worker must
  never create a second task for a job.

Everything between them (the app, the store, the worker, leases, LISTEN/NOTIFY) is the real code.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from bot.domain.clock import Clock
from bot.domain.models import Job
from bot.ops.logs import setup_logging
from bot.ports import OutImage, Progress
from bot.providers.base import GenerationSpec, Submission
from bot.providers.offline import OfflineProvider
from bot.runtime import app as app_module
from bot.runtime.app import open_app
from bot.runtime.config import Settings, load_settings

PLATFORM = "recorder"
RECORDING_TABLES = """
CREATE TABLE IF NOT EXISTS platform_posts (
    job_id TEXT NOT NULL, pid INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT,
    at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS provider_tasks (
    job_id TEXT NOT NULL, pid INTEGER NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
"""


class RecordingPlatform:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def progress(self, job: Job, progress: Progress) -> None:
        return None

    async def deliver(self, job: Job, images: Sequence[OutImage]) -> Mapping[str, Any]:
        sizes = ",".join(f"{i.width}x{i.height}:{len(i.data)}" for i in images)
        await self._pool.execute(
            "INSERT INTO platform_posts (job_id, pid, kind, detail) VALUES ($1, $2, 'image', $3)",
            job.id,
            os.getpid(),
            sizes,
        )
        return {"message": f"recorder:{job.id}"}

    async def notify_failure(self, job: Job) -> None:
        await self._pool.execute(
            "INSERT INTO platform_posts (job_id, pid, kind, detail) VALUES ($1, $2, 'error', $3)",
            job.id,
            os.getpid(),
            job.error_code,
        )


class RecordingProvider(OfflineProvider):
    submit_is_idempotent = False

    def __init__(self, pool: asyncpg.Pool, *, latency: float, clock: Clock) -> None:
        super().__init__(latency=latency, clock=clock)
        self._pool = pool

    async def submit(self, spec: GenerationSpec) -> Submission:
        await self._pool.execute(
            "INSERT INTO provider_tasks (job_id, pid) VALUES ($1, $2)", spec.job_id, os.getpid()
        )
        return await super().submit(spec)


async def main() -> int:
    settings = load_settings(env_file=None)
    setup_logging(settings.log_level, settings.log_format, settings.secret_values())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        await pool.execute(RECORDING_TABLES)

        def providers(s: Settings, http: object, clock: Clock) -> list[RecordingProvider]:
            return [RecordingProvider(pool, latency=s.offline_latency, clock=clock)]

        # open_app is the composition root; this is the one seam where the test swaps the provider.
        app_module.build_providers = providers  # type: ignore[assignment]
        async with open_app(settings) as app:
            app.add_delivery(PLATFORM, RecordingPlatform(pool))
            await app.start_workers()
            print(f"worker {os.getpid()} ready", flush=True)
            await stop.wait()
    finally:
        await pool.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
