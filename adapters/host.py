"""What an adapter gets from the composition root: its settings, the use cases, and the ports and
shared services it may call. ``bot.runtime.app.App`` is one; an adapter names nothing more of it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import httpx
from aiohttp import web

from bot.domain.catalog import Catalog
from bot.domain.policy import Policy
from bot.jobs.events import JobEvents
from bot.jobs.service import ImagineService
from bot.ports import BlobStore, Clock, DeliveryPort, Store
from bot.runtime.config import Settings


class Routes(Protocol):
    """The bot's own HTTP server, as an adapter extends it."""

    @property
    def app(self) -> web.Application:
        """Where an adapter adds its routes (before the server starts)."""

    def add_readiness_check(
        self, name: str, check: Callable[[], Awaitable[str | None]]
    ) -> None: ...


class Host(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def service(self) -> ImagineService: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def policy(self) -> Policy: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def store(self) -> Store: ...

    @property
    def blobs(self) -> BlobStore: ...

    @property
    def http(self) -> httpx.AsyncClient:
        """The process's one client for outbound calls."""

    @property
    def events(self) -> JobEvents: ...

    @property
    def http_server(self) -> Routes: ...

    def add_delivery(self, platform: str, port: DeliveryPort) -> None:
        """Register how this platform's jobs are delivered, before the workers start."""
