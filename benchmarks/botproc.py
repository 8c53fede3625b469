"""The bot under benchmark, as its own process: the real core (``open_app``), its HTTP server and
workers, behind a minimal HTTP adapter standing in for a platform's interaction endpoint.

The adapter does what the Slack and Discord adapters do: acknowledge at once, then hand the command
to ``ImagineService.imagine`` in the background; it delivers by REST to a fake platform.
Configured by the environment (``load_settings``) plus ``BENCH_PLATFORM_URL``.
Prints one JSON line ``{"port": ..., "pid": ...}`` when ready; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from aiohttp import web

from bot.domain.errors import DeliveryError, RequestRejected
from bot.domain.models import ImagineRequest, Job, ReplyTarget
from bot.ops.logs import setup_logging
from bot.ports import OutImage, Progress
from bot.runtime.app import App, open_app
from bot.runtime.config import load_settings

PLATFORM = "bench"


class BenchDelivery:
    """Posts the images to the fake platform (multipart, like a file upload)."""

    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self._http = http
        self._base = base

    async def progress(self, job: Job, progress: Progress) -> None:
        return None

    async def deliver(self, job: Job, images: Sequence[OutImage]) -> Mapping[str, Any]:
        ref = job.request.reply.data["ref"]
        files = [("file", (i.filename, i.data, i.content_type)) for i in images]
        try:
            response = await self._http.post(f"{self._base}/deliver/{ref}", files=files)
        except httpx.HTTPError as exc:
            raise DeliveryError(type(exc).__name__) from None
        if response.status_code != 200:
            raise DeliveryError(f"platform answered {response.status_code}")
        return {"message_id": response.json()["id"]}

    async def notify_failure(self, job: Job) -> None:
        ref = job.request.reply.data["ref"]
        await self._http.post(
            f"{self._base}/failed/{ref}",
            json={"status": job.status.value, "error": job.error_message},
        )


class BenchAdapter:
    def __init__(self, app: App, base: str) -> None:
        self._app = app
        self._base = base
        self._background: set[asyncio.Task[None]] = set()

    def attach(self) -> None:
        self._app.http_server.app.router.add_post("/bench/imagine", self._command)

    async def _command(self, request: web.Request) -> web.Response:
        body = await request.json()
        ref = str(body["ref"])
        imagine = ImagineRequest(
            platform=PLATFORM,
            community_id=str(body.get("community", "bench")),
            channel_id="bench-channel",
            user_id=str(body.get("user", ref)),
            prompt=str(body["prompt"]),
            reply=ReplyTarget(PLATFORM, "bench-channel", data={"ref": ref}),
            variant=body.get("model"),
            width=body.get("width"),
            height=body.get("height"),
            dedupe_key=ref,
            use_cache=False,
        )
        task = asyncio.create_task(self._accept(imagine, ref))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        # Discord's "deferred channel message" (type 5); Slack's ack is an empty 200.
        return web.json_response({"type": 5})

    async def _accept(self, request: ImagineRequest, ref: str) -> None:
        try:
            await self._app.service.imagine(request)
        except RequestRejected as exc:
            await self._app.http.post(
                f"{self._base}/refused/{ref}", json={"code": exc.code, "message": exc.user_message}
            )


def tune(app: App) -> None:
    """Benchmark knobs no operator setting offers: the provider's cap on active tasks (BFL's
    default is 24; the in-flight runs need 500), and the variants' usual generation time (an
    "instant provider" is polled at once)."""
    cap = int(os.environ.get("BENCH_CONCURRENCY", "32"))
    slots: Any = app.router._slots  # the benchmark raises the caps
    for name in list(slots):
        slots[name] = asyncio.Semaphore(cap)
    typical = os.environ.get("BENCH_TYPICAL_SECONDS")
    if typical is not None:
        variants: Any = app.catalog.variants
        for name, variant in list(variants.items()):
            variants[name] = dataclasses.replace(variant, typical_seconds=float(typical))


async def serve(adapter: bool, workers: bool) -> None:
    settings = load_settings(env_file=None)
    setup_logging(settings.log_level, settings.log_format, settings.secret_values())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    base = os.environ["BENCH_PLATFORM_URL"]
    async with open_app(settings) as app:
        app.add_delivery(PLATFORM, BenchDelivery(app.http, base))
        if adapter:
            BenchAdapter(app, base).attach()
        tune(app)
        port = await app.http_server.start() if adapter else 0
        if workers:
            await app.start_workers(concurrency=int(os.environ.get("BENCH_CONCURRENCY", "32")))
        print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-adapter", action="store_true")
    parser.add_argument("--no-workers", action="store_true")
    args = parser.parse_args()
    profile = os.environ.get("BENCH_PROFILE")
    if profile:  # for finding slow paths: python -m pstats <file>
        import cProfile

        cProfile.runctx(
            "asyncio.run(serve(adapter=not args.no_adapter, workers=not args.no_workers))",
            globals(),
            {"args": args},
            profile,
        )
        return
    asyncio.run(serve(adapter=not args.no_adapter, workers=not args.no_workers))


if __name__ == "__main__":
    main()
