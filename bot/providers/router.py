"""Provider selection and failover: ``IMAGINE_PROVIDERS`` in order, each under its concurrency cap."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.catalog import ProviderModel, Variant
from bot.errors import ProviderFailed
from bot.providers.base import Provider


class Router:
    def __init__(self, providers: Sequence[Provider]) -> None:
        self._providers = {p.name: p for p in providers}
        self._order = [p.name for p in providers]
        self._slots = {p.name: asyncio.Semaphore(max(1, p.concurrency)) for p in providers}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._order)

    def get(self, name: str) -> Provider:
        try:
            return self._providers[name]
        except KeyError:
            raise ProviderFailed(f"provider {name!r} is not configured in this process") from None

    def slot(self, name: str) -> asyncio.Semaphore:
        """Held from submit until the result is downloaded: the provider's cap on active tasks."""
        return self._slots[name]

    def candidates(
        self, variant: Variant, *, needs_input_images: bool = False
    ) -> list[tuple[Provider, ProviderModel]]:
        """Providers able to run the variant, in failover order."""
        out: list[tuple[Provider, ProviderModel]] = []
        for name in self._order:
            model = variant.model_for(name)
            if model is None:
                continue
            if needs_input_images and model.extra.get("input_images") is False:
                continue
            out.append((self._providers[name], model))
        return out
