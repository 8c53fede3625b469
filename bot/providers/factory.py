"""Build the configured providers, each on the shared HTTP client."""

from __future__ import annotations

import random
from typing import Any

import httpx

from bot.domain.clock import Clock
from bot.domain.errors import ConfigError
from bot.providers.base import Provider
from bot.providers.bfl import BflProvider
from bot.providers.fal import FalProvider
from bot.providers.offline import OfflineProvider
from bot.providers.together import TogetherProvider
from bot.runtime.config import Settings


def _key(settings: Settings, variable: str) -> str:
    value = settings.secret(variable)
    if not value:
        raise ConfigError(variable, "required by IMAGINE_PROVIDERS")
    return value


# Each keyed provider: its class, base-URL setting, and whether it takes webhooks.
_KEYED: dict[str, tuple[type[BflProvider | FalProvider | TogetherProvider], str, bool]] = {
    "bfl": (BflProvider, "bfl_api_base", True),
    "fal": (FalProvider, "fal_queue_base", True),
    "together": (TogetherProvider, "together_api_base", False),
}


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
        elif name in _KEYED:
            cls, base_field, webhooks = _KEYED[name]
            options: dict[str, Any] = {"public_url": settings.public_url} if webhooks else {}
            providers.append(
                cls(
                    http,
                    api_key=_key(settings, cls.key_variable),
                    base_url=getattr(settings, base_field),
                    clock=clock,
                    rng=rng,
                    download_allow=settings.download_allow,
                    **options,
                )
            )
            if isinstance(providers[-1], FalProvider):
                providers[-1].rest_base = settings.fal_rest_base.rstrip("/")
        else:  # pragma: no cover - the settings validator allows only known names
            raise ConfigError("IMAGINE_PROVIDERS", f"unknown provider {name!r}")
    return providers
