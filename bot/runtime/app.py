"""The composition root: opens every resource once, in one ``async with``, and wires the core."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import httpx

from bot.blobs import open_blobs
from bot.domain.catalog import Catalog, load_catalog
from bot.domain.clock import Clock, SystemClock
from bot.domain.errors import ConfigError
from bot.domain.policy import Policy
from bot.jobs.events import JobEvents
from bot.jobs.pool import Worker, WorkerConfig
from bot.jobs.service import ImagineService
from bot.net.guard import SafeFetcher
from bot.net.httpclient import open_http_client
from bot.net.server import HttpServer
from bot.ops import metrics
from bot.ports import BlobStore, DeliveryPort
from bot.providers.factory import build_providers
from bot.providers.router import Router
from bot.runtime.config import Settings
from bot.runtime.crash import crash_hook
from bot.store import Store, open_store

log = logging.getLogger(__name__)

# With store wake-ups, polling only finds retries whose delay ran out and leases of dead workers.
IDLE_POLL_WITH_WAKEUPS = 5.0


@dataclass
class App:
    settings: Settings
    clock: Clock
    store: Store
    blobs: BlobStore
    http: httpx.AsyncClient
    catalog: Catalog
    router: Router
    events: JobEvents
    policy: Policy
    service: ImagineService
    http_server: HttpServer
    deliveries: dict[str, DeliveryPort] = field(default_factory=dict)
    worker: Worker | None = None
    # True when the store wakes this process's workers for jobs queued by other processes
    # (PostgreSQL LISTEN/NOTIFY); idle workers then re-check the table only as a fallback.
    store_wakes_workers: bool = False

    def add_delivery(self, platform: str, port: DeliveryPort) -> None:
        """Adapters register how their jobs are delivered, before the workers start."""
        self.deliveries[platform] = port

    async def stop_workers(self) -> None:
        """Stop claiming; running jobs finish within the grace period (a quarter of the lease),
        the rest are handed back. Before the adapters close: deliveries still need them."""
        if self.worker is not None:
            await self.worker.stop(grace=self.settings.lease_seconds / 4)

    async def start_workers(self, **overrides: object) -> Worker:
        s = self.settings
        config = WorkerConfig(
            platforms=frozenset(self.deliveries),
            concurrency=s.workers,
            lease_seconds=s.lease_seconds,
            crash_hook=crash_hook(s.crash_at),
            idle_poll=IDLE_POLL_WITH_WAKEUPS if self.store_wakes_workers else 1.0,
        )
        if overrides:
            from dataclasses import replace

            config = replace(config, **overrides)  # type: ignore[arg-type]
        self.worker = Worker(
            store=self.store,
            router=self.router,
            blobs=self.blobs,
            deliveries=self.deliveries,
            events=self.events,
            clock=self.clock,
            catalog=self.catalog,
            config=config,
            policy=self.policy,
            rng=random.Random(),
            input_fetcher=SafeFetcher(self.http),
        )
        await self.worker.start()
        return self.worker


def _prepare_data_dir(settings: Settings) -> None:
    """Create IMAGINE_DATA_DIR, or say in one line why it cannot hold the database and images."""
    folder = settings.data_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError("IMAGINE_DATA_DIR", f"{folder} is a file, not a folder") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError("IMAGINE_DATA_DIR", f"cannot create {folder}: {reason}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError("IMAGINE_DATA_DIR", f"{folder} is not writable by this user")


@asynccontextmanager
async def open_app(settings: Settings, *, clock: Clock | None = None) -> AsyncIterator[App]:
    clock = clock or SystemClock()
    async with AsyncExitStack() as stack:
        _prepare_data_dir(settings)
        # The one outbound HTTP client of this process, for every call the bot itself makes.
        http = await stack.enter_async_context(open_http_client())
        store = await stack.enter_async_context(open_store(settings.effective_database_url))
        blobs = await stack.enter_async_context(open_blobs(settings.effective_blob_url))
        catalog = load_catalog()
        router = Router(build_providers(settings, http, clock), clock=clock)
        events = JobEvents()
        wakes_workers = await store.listen_for_work(events.work_available)
        policy = Policy(settings.policy_defaults())
        service = ImagineService(
            store=store,
            catalog=catalog,
            clock=clock,
            events=events,
            providers=router.names,
            policy=policy,
        )
        server = HttpServer(settings.http_host, settings.http_port)
        stack.push_async_callback(server.aclose)
        if settings.public_url:
            from bot.providers.webhooks import install_webhooks

            install_webhooks(settings, server=server, store=store, router=router, http=http)

        if settings.dashboard_enabled:
            from bot.runtime.dashboard import install_dashboard

            dashboard = install_dashboard(
                settings,
                server=server,
                http=http,
                service=service,
                store=store,
                router=router,
                clock=clock,
            )
            stack.push_async_callback(dashboard.aclose)
        elif settings.discord_sign_in or settings.slack_sign_in:
            log.warning("dashboard off: IMAGINE_SECRET_KEY is not set")

        async def store_ready() -> str | None:
            await store.ping()
            return None

        server.add_readiness_check("store", store_ready)
        if any(name != "offline" for name in router.names):
            # A paid provider's account out of money shows here (the offline renderer has none).
            server.add_readiness_check("providers", router.account_problems)

        async def refresh_queue_metrics() -> None:
            counts = await store.job_counts()
            metrics.set_queue(counts.queued, counts.running)

        server.add_metrics_refresh(refresh_queue_metrics)
        app = App(
            settings=settings,
            clock=clock,
            store=store,
            blobs=blobs,
            http=http,
            catalog=catalog,
            router=router,
            events=events,
            policy=policy,
            service=service,
            http_server=server,
            store_wakes_workers=wakes_workers,
        )
        try:
            yield app
        finally:
            await app.stop_workers()
