"""The bot's own HTTP server: health, readiness, metrics, and routes adapters and webhooks add."""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.domain.errors import ConfigError
from bot.ops.metrics import REGISTRY

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[str | None]]
MetricsRefresh = Callable[[], Awaitable[None]]
# A readiness check that has not answered by then counts as "not ready" (a hung database).
CHECK_TIMEOUT = 3.0
# Connections the kernel holds for the server while its loop is busy (aiohttp's default is
# 128): past that a burst's new connections are dropped, and each client tries again only after
# a second, late for Discord's 3-second acknowledgement deadline. Linux caps it at somaxconn.
BACKLOG = 1024


class HttpServer:
    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self.app = web.Application(client_max_size=2 * 1024 * 1024)
        self._checks: dict[str, ReadinessCheck] = {}
        self._refreshers: list[MetricsRefresh] = []
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        """``check`` returns None when ready, else a short reason."""
        self._checks[name] = check

    def add_metrics_refresh(self, refresh: MetricsRefresh) -> None:
        """``refresh`` updates gauges read from elsewhere (queue depth) just before a scrape."""
        self._refreshers.append(refresh)

    async def start(self) -> int:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, backlog=BACKLOG)
        try:
            await site.start()
        except OSError as exc:
            await self.aclose()
            raise _bind_error(self._host, self._port, exc) from None
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else self._port
        log.info("HTTP server listening on %s:%s", self._host, self.port)
        return self.port

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        names = list(self._checks)
        reasons = await asyncio.gather(*(self._run_check(self._checks[n]) for n in names))
        problems = {name: reason for name, reason in zip(names, reasons, strict=True) if reason}
        if problems:
            return web.json_response({"status": "not ready", "problems": problems}, status=503)
        return web.json_response({"status": "ready", "checks": sorted(names)})

    @staticmethod
    async def _run_check(check: ReadinessCheck) -> str | None:
        try:
            return await asyncio.wait_for(check(), CHECK_TIMEOUT)
        except TimeoutError:
            return f"no answer within {CHECK_TIMEOUT:.0f} s"
        except Exception as exc:
            # The type only: an exception's text may carry a URL or a token.
            return type(exc).__name__

    async def _metrics(self, request: web.Request) -> web.Response:
        for refresh in self._refreshers:
            try:
                await asyncio.wait_for(refresh(), CHECK_TIMEOUT)
            except Exception as exc:
                log.warning("refreshing metrics failed: %s", type(exc).__name__)
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _bind_error(host: str, port: int, exc: OSError) -> ConfigError:
    """Why the server could not listen, as one line naming the settings to change."""
    if exc.errno == errno.EADDRINUSE:
        problem = f"{host}:{port} is already in use; stop what listens there or choose another port"
    elif exc.errno == errno.EADDRNOTAVAIL:
        problem = f"{host} is not an address of this machine (use 127.0.0.1 or 0.0.0.0)"
    elif exc.errno == errno.EACCES:
        problem = f"not allowed to listen on {host}:{port} (ports below 1024 need privileges)"
    else:
        problem = f"cannot listen on {host}:{port} ({exc.strerror or type(exc).__name__})"
    return ConfigError("IMAGINE_HTTP_HOST/IMAGINE_HTTP_PORT", problem)
