"""Build the configured providers, each on the shared HTTP client."""

from __future__ import annotations

import random

import httpx

from bot.clock import Clock
from bot.config import Settings
from bot.errors import ConfigError
from bot.providers.base import Provider
from bot.providers.bfl import BflProvider
from bot.providers.fal import FalProvider
from bot.providers.offline import OfflineProvider
from bot.providers.together import TogetherProvider


def _key(settings: Settings, variable: str) -> str:
    value = settings.secret(variable)
    if not value:
        raise ConfigError(variable, "required by IMAGINE_PROVIDERS")
    return value


def build_providers(
    settings: Settings,
    http: httpx.AsyncClient,
    clock: Clock,
    rng: random.Random | None = None,
) -> list[Provider]:
    rng = rng or random.Random()
    providers: list[Provider] = []
    for name in settings.effective_providers:
        if name == "offline":
            providers.append(OfflineProvider(latency=settings.offline_latency, clock=clock))
        elif name == "bfl":
            providers.append(
                BflProvider(
                    http,
                    api_key=_key(settings, "BFL_API_KEY"),
                    base_url=settings.bfl_api_base,
                    clock=clock,
                    rng=rng,
                    download_allow=settings.download_allow,
                    public_url=settings.public_url,
                )
            )
        elif name == "fal":
            providers.append(
                FalProvider(
                    http,
                    api_key=_key(settings, "FAL_KEY"),
                    base_url=settings.fal_queue_base,
                    clock=clock,
                    rng=rng,
                    download_allow=settings.download_allow,
                    public_url=settings.public_url,
                )
            )
        elif name == "together":
            providers.append(
                TogetherProvider(
                    http,
                    api_key=_key(settings, "TOGETHER_API_KEY"),
                    base_url=settings.together_api_base,
                    clock=clock,
                    rng=rng,
                    download_allow=settings.download_allow,
                )
            )
        else:  # pragma: no cover - the settings validator allows only known names
            raise ConfigError("IMAGINE_PROVIDERS", f"unknown provider {name!r}")
    return providers
