"""Build the configured providers, each on the shared HTTP client."""

from __future__ import annotations

import httpx

from bot.clock import Clock
from bot.config import Settings
from bot.providers.base import Provider
from bot.providers.offline import OfflineProvider


def build_providers(settings: Settings, http: httpx.AsyncClient, clock: Clock) -> list[Provider]:
    providers: list[Provider] = []
    for name in settings.effective_providers:
        if name == "offline":
            providers.append(OfflineProvider(latency=settings.offline_latency, clock=clock))
        else:
            raise NotImplementedError(f"provider {name} is not available yet")
    return providers
