"""What the provider fakes share: a recording aiohttp server on 127.0.0.1 (ephemeral port),
scripted faults per route kind, and result images it serves itself (expiring on request)."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from PIL import Image


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    """One scripted misbehaviour, used once (``times`` times) by the next request of its kind.

    ``status``: answer this status (with ``retry_after``, ``body`` or an HTML page);
    ``hang``: wait this long first (a timeout); ``drop``: close the connection without answering;
    ``malformed``: answer 200 with broken JSON; ``trickle``: send a 200 JSON answer one byte
    every ``trickle`` seconds; ``after_accept``: for a submit, create the task
    first (it is paid for), then misbehave; ``location``: send it as the Location header (with
    a 3xx ``status``, a redirect; ``{path}`` in it stands for the request's path).
    """

    status: int | None = None
    retry_after: float | None = None
    body: Any = None
    html: bool = False
    hang: float = 0.0
    drop: bool = False
    malformed: bool = False
    after_accept: bool = False
    trickle: float = 0.0
    location: str | None = None
    times: int = 1


@dataclass
class StoredImage:
    data: bytes
    expires_at: float | None
    fetches: int = 0
    content_type: str = "image/png"


def make_png(width: int, height: int, colour: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    image = Image.new("RGB", (width, height), colour)
    # Some structure, so a real image is not mistaken for a flat black one.
    for x in range(0, width, max(1, width // 8)):
        for y in range(height):
            image.putpixel((x, y), (250, 250, 250))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def make_image(
    width: int, height: int, colour: tuple[int, int, int] = (40, 120, 200), fmt: str = "png"
) -> bytes:
    """A test image in ``fmt`` ("png", "jpeg" or "webp"), as a provider answering
    ``output_format`` would make it."""
    if fmt == "png":
        return make_png(width, height, colour)
    with Image.open(io.BytesIO(make_png(width, height, colour))) as image:
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG" if fmt == "jpeg" else "WEBP", quality=90)
    return out.getvalue()


def content_type_of(fmt: str) -> str:
    return {"jpeg": "image/jpeg", "webp": "image/webp"}.get(fmt, "image/png")


HTML_ERROR = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>cloudflare</p></body></html>"
)


class FakeServer:
    """Base of the provider fakes."""

    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._record_middleware])
        self.requests: list[Recorded] = []
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.host = "127.0.0.1"
        self.images: dict[str, StoredImage] = {}
        self._ids = itertools.count(1)
        # Seconds a result URL stays valid (None: for ever), and its image size.
        self.result_ttl: float | None = None
        self.image_size: tuple[int, int] | None = None
        # Where result URLs point (default: this server). Set to another origin to test the
        # download allow-list.
        self.result_base: str | None = None
        # Seconds a generation takes (wall clock).
        self.generation_seconds = 0.0
        self.webhook_calls: list[tuple[str, int]] = []
        # Result downloads without a User-Agent are refused (403) where the provider's CDN does.
        self.require_user_agent = False
        self._background: set[asyncio.Task[Any]] = set()
        self.app.router.add_get("/results/{token}", self._serve_result)

    # Life cycle ---------------------------------------------------------------------------

    async def start(self) -> FakeServer:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        server: Any = site._server
        self.port = int(server.sockets[0].getsockname()[1])
        return self

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    # Scripting ----------------------------------------------------------------------------

    def fail(self, kind: str, *faults: Fault) -> None:
        """Queue faults for the next requests of ``kind`` (``submit``, ``poll``, ``result``...)."""
        for fault in faults:
            for _ in range(max(1, fault.times)):
                self._faults[kind].append(fault)

    def take_fault(self, kind: str, *, after_accept: bool = False) -> Fault | None:
        queue = self._faults.get(kind)
        if not queue or queue[0].after_accept != after_accept:
            return None
        return queue.popleft()

    async def apply(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.hang:
            await asyncio.sleep(fault.hang)
        if fault.drop:
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError
        if fault.trickle:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            for byte in b'{"status": "Pending", "id": "' + b"x" * 200 + b'"}':
                await response.write(bytes([byte]))
                await asyncio.sleep(fault.trickle)
            await response.write_eof()
            return response
        if fault.malformed:
            return web.Response(body=b'{"id": "abc", "polling', content_type="application/json")
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.location is not None:
            headers["Location"] = fault.location.replace("{path}", request.path)
        status = fault.status or 500
        if fault.html:
            return web.Response(
                status=status, text=HTML_ERROR, content_type="text/html", headers=headers
            )
        body = fault.body if fault.body is not None else {"detail": f"scripted {status}"}
        return web.json_response(body, status=status, headers=headers)

    # Recording -----------------------------------------------------------------------------

    @web.middleware
    async def _record_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read() if request.can_read_body else b""
        self.requests.append(
            Recorded(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=body,
            )
        )
        response: web.StreamResponse = await handler(request)
        return response

    def recorded(self, method: str | None = None, path_prefix: str = "") -> list[Recorded]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and r.path.startswith(path_prefix)
        ]

    # Results -------------------------------------------------------------------------------

    def next_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):04d}-{int(time.time() * 1000) % 100000:05d}"

    def store_image(self, data: bytes, fmt: str = "png") -> str:
        extension = {"jpeg": "jpg"}.get(fmt, fmt)
        token = f"img{next(self._ids):05d}.{extension}"
        expires = time.monotonic() + self.result_ttl if self.result_ttl is not None else None
        self.images[token] = StoredImage(data, expires, content_type=content_type_of(fmt))
        return f"{self.result_base or self.origin}/results/{token}"

    async def _serve_result(self, request: web.Request) -> web.StreamResponse:
        fault = self.take_fault("result")
        if fault is not None:
            return await self.apply(request, fault)
        if self.require_user_agent and not request.headers.get("User-Agent"):
            return web.Response(status=403, text="blank User-Agent")
        stored = self.images.get(request.match_info["token"])
        if stored is None:
            return web.Response(status=404, text="not found")
        if stored.expires_at is not None and time.monotonic() > stored.expires_at:
            # Like an expired signed blob URL.
            return web.Response(
                status=403,
                text="<Error><Code>AuthenticationFailed</Code></Error>",
                content_type="application/xml",
            )
        stored.fetches += 1
        return web.Response(body=stored.data, content_type=stored.content_type)

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class Sink:
    """A TCP server that records every connection and answers nothing useful (an SSRF target)."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Sink:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno")
        await writer.drain()
        writer.close()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"
