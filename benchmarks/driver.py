"""The benchmark's side of the wire: the fake provider and fake platform on 127.0.0.1, the bot
process under test, the command sender, and the seed's baseline loop.

Everything here runs in the driver process; the bot runs in its own process (``botproc``), so its
event loop is measured as it would run in production. Times are ``time.monotonic()``, which is the
same clock in every process of the machine.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import requests
from aiohttp import web
from PIL import Image

from tests.fakes.bfl import BflTask, FakeBfl

BFL_KEY = "bench-bfl-key-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[1]
_GEN = re.compile(r"gen=([0-9.]+)")


def make_image(width: int, height: int, target_bytes: int | None = None) -> bytes:
    """A PNG with a gradient and noise, roughly ``target_bytes`` large (photos compress badly)."""
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    rng = random.Random(width * 7919 + height)
    noise = Image.frombytes("L", (width, height), rng.randbytes(width * height)).convert("RGB")
    amount = 0.2
    while True:
        out = io.BytesIO()
        Image.blend(base, noise, amount).save(out, format="PNG", compress_level=1)
        data = out.getvalue()
        if target_bytes is None or len(data) >= target_bytes * 0.95 or amount >= 1.0:
            return data
        amount = min(1.0, amount * 1.5)


class BenchBfl(FakeBfl):
    """The BFL fake, with a generation time per task read from its prompt (``gen=<seconds>``)
    and one shared result image of a chosen size."""

    def __init__(self, image: bytes) -> None:
        super().__init__(BFL_KEY, credits=1e12)
        self._image = image
        self._image_urls: dict[str, str] = {}

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        response = await super()._submit(request)
        if isinstance(response, web.Response) and response.status == 200 and response.body:
            task = self.tasks[json.loads(bytes(response.body))["id"]]  # type: ignore[arg-type]
            match = _GEN.search(str(task.body.get("prompt", "")))
            if match:
                task.ready_at = task.created + float(match.group(1))
        return response

    def _result(self, task: BflTask) -> dict[str, Any]:
        if task.outcome == "Ready" and task.sample is None:
            # The image in the format the task asked for, as BFL answers: ``output_format``
            # defaults to jpeg (docs.bfl.ai, generate-or-edit-an-image-with-flux2-[pro]).
            fmt = str(task.body.get("output_format") or "jpeg")
            if fmt not in self._image_urls:
                data = self._image
                if fmt == "jpeg":
                    out = io.BytesIO()
                    Image.open(io.BytesIO(data)).convert("RGB").save(out, "JPEG", quality=90)
                    data = out.getvalue()
                self._image_urls[fmt] = self.store_image(data, fmt)
            task.sample = self._image_urls[fmt]
        return super()._result(task)

    def task_for(self, ref: str) -> BflTask | None:
        for task in self.tasks.values():
            if f"ref={ref} " in str(task.body.get("prompt", "")) + " ":
                return task
        return None


@dataclass
class Arrival:
    at: float
    kind: str  # deliver | failed | refused
    nbytes: int = 0
    detail: str = ""


class FakePlatform:
    """Receives deliveries (multipart uploads), failure notices and refusals; records arrival."""

    def __init__(self) -> None:
        self.arrivals: dict[str, Arrival] = {}
        self._waiters: dict[str, asyncio.Event] = {}
        self.app = web.Application(client_max_size=256 * 1024 * 1024)
        self.app.router.add_post("/deliver/{ref}", self._deliver)
        self.app.router.add_post("/failed/{ref}", self._other)
        self.app.router.add_post("/refused/{ref}", self._other)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def waiter(self, ref: str) -> asyncio.Event:
        return self._waiters.setdefault(ref, asyncio.Event())

    def _arrive(self, ref: str, arrival: Arrival) -> None:
        self.arrivals.setdefault(ref, arrival)
        self.waiter(ref).set()

    async def _deliver(self, request: web.Request) -> web.Response:
        body = await request.read()
        self._arrive(request.match_info["ref"], Arrival(time.monotonic(), "deliver", len(body)))
        return web.json_response({"id": f"m-{request.match_info['ref']}"})

    async def _other(self, request: web.Request) -> web.Response:
        body = await request.text()
        kind = request.path.split("/")[1]
        self._arrive(request.match_info["ref"], Arrival(time.monotonic(), kind, detail=body[:200]))
        return web.json_response({"ok": True})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BotProcess:
    proc: subprocess.Popen[str]
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def peak_rss_mb(self) -> float:
        return _status_kb(self.pid, "VmHWM") / 1024

    def rss_mb(self) -> float:
        return _status_kb(self.pid, "VmRSS") / 1024


def _status_kb(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return float(line.split()[1])
    return 0.0


@asynccontextmanager
async def bot_process(
    env: dict[str, str],
    *args: str,
    ready_timeout: float = 60.0,
    module: str = "benchmarks.botproc",
) -> Any:
    """Start ``python -m benchmarks.botproc`` (or ``module``) with ``env`` (over a clean
    environment)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGINE_", "BFL_", "FAL_"))}
    full.update(env)
    full["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), ready_timeout)
        if not line:
            raise RuntimeError(f"bot process failed to start: {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
        info = json.loads(line)
        yield BotProcess(proc, int(info["port"]), int(info["pid"]))
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)


@dataclass
class CommandResult:
    ref: str
    sent: float
    acked: float
    arrival: Arrival | None = None
    generation: float | None = None
    polls: int = 0

    @property
    def ack_ms(self) -> float:
        return (self.acked - self.sent) * 1000

    @property
    def end_to_end(self) -> float | None:
        return None if self.arrival is None else self.arrival.at - self.sent

    @property
    def added(self) -> float | None:
        e2e = self.end_to_end
        if e2e is None or self.generation is None:
            return None
        return e2e - self.generation


async def send_commands(
    bot_url: str,
    platform: FakePlatform,
    refs: list[str],
    prompt: Callable[[str], str],
    *,
    model: str = "pro",
    size: tuple[int, int] = (1024, 1024),
    community: Callable[[str], str] = lambda ref: "bench",
    wait: bool = True,
    timeout: float = 600.0,
) -> list[CommandResult]:
    """Send every command at once (each from its own user); wait for each outcome to arrive."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=600)
    ) as session:

        async def one(ref: str) -> CommandResult:
            body = {
                "ref": ref,
                "prompt": prompt(ref),
                "user": f"user-{ref}",
                "community": community(ref),
                "model": model,
                "width": size[0],
                "height": size[1],
            }
            sent = time.monotonic()
            async with session.post(f"{bot_url}/bench/imagine", json=body) as response:
                await response.read()
                acked = time.monotonic()
                response.raise_for_status()
            result = CommandResult(ref, sent, acked)
            if wait:
                await asyncio.wait_for(platform.waiter(ref).wait(), timeout)
                result.arrival = platform.arrivals[ref]
            return result

        return list(await asyncio.gather(*(one(ref) for ref in refs)))


def attach_provider_times(results: list[CommandResult], fake: BenchBfl) -> None:
    by_ref: dict[str, BflTask] = {}
    for task in fake.tasks.values():
        match = re.search(r"ref=(\S+)", str(task.body.get("prompt", "")))
        if match:
            by_ref[match.group(1)] = task
    for result in results:
        task = by_ref.get(result.ref)
        if task is not None:
            result.generation = task.ready_at - task.created
            result.polls = task.polls


# The seed's loop -------------------------------------------------------------------------------


@dataclass
class BaselineResult:
    ref: str
    sent: float
    acked: float
    done: float
    generation: float
    polls: int

    @property
    def added(self) -> float:
        return self.done - self.sent - self.generation


def _baseline_job(
    bfl_url: str, platform_url: str, ref: str, prompt: str, size: tuple[int, int]
) -> BaselineResult:
    """What the seed did: a blocking submit, a fixed 1-second sleep between polls, the download,
    then the post (no validation, no storage)."""
    headers = {"x-key": BFL_KEY}
    sent = time.monotonic()
    submitted = requests.post(
        f"{bfl_url}/v1/flux-2-pro",
        json={"prompt": prompt, "width": size[0], "height": size[1]},
        headers=headers,
        timeout=60,
    ).json()
    acked = time.monotonic()
    polls = 0
    while True:
        time.sleep(1)
        polls += 1
        result = requests.get(submitted["polling_url"], headers=headers, timeout=60).json()
        if result["status"] == "Ready":
            break
        if result["status"] not in ("Pending",):
            raise RuntimeError(f"baseline: {result['status']}")
    image = requests.get(result["result"]["sample"], timeout=60).content
    requests.post(f"{platform_url}/deliver/{ref}", files={"file": ("image.png", image)}, timeout=60)
    done = time.monotonic()
    generation = float(result["result"]["end_time"]) - float(result["result"]["start_time"])
    return BaselineResult(ref, sent, acked, done, generation, polls)


async def run_baseline(
    fake: BenchBfl,
    platform: FakePlatform,
    refs: list[str],
    prompt: Callable[[str], str],
    size: tuple[int, int] = (1024, 1024),
) -> list[BaselineResult]:
    """Every command on its own thread (generous to the seed, whose handler blocked its loop)."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=max(1, len(refs))) as pool:
        futures = [
            loop.run_in_executor(
                pool, _baseline_job, fake.origin, platform.url, ref, prompt(ref), size
            )
            for ref in refs
        ]
        return list(await asyncio.gather(*futures))


# Small helpers --------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[rank]


@dataclass
class Phase:
    """Wall time and CPU time of the driver, for the report's notes."""

    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


@contextmanager
def quiet_threads() -> Iterator[None]:
    """Threads of the baseline print nothing; exceptions surface through their futures."""
    previous = threading.excepthook
    threading.excepthook = lambda args: None
    try:
        yield
    finally:
        threading.excepthook = previous
