"""Provider selection and failover: ``IMAGINE_PROVIDERS`` in order, each under its concurrency cap,
skipping a provider whose circuit is open."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from bot.domain.catalog import ProviderModel, Variant
from bot.domain.clock import Clock, SystemClock
from bot.domain.errors import ProviderFailed
from bot.providers.base import Provider
from bot.providers.circuit import CircuitBreaker


class Wakeups:
    """In-process wake-ups keyed by job id: a verified webhook wakes the worker waiting on it."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def wake(self, job_id: str) -> bool:
        """Wake the waiter of ``job_id``; False where none waits in this process."""
        event = self._events.get(job_id)
        if event is None:
            return False
        event.set()
        return True

    def watch(self, job_id: str) -> None:
        self._events.setdefault(job_id, asyncio.Event())

    def forget(self, job_id: str) -> None:
        self._events.pop(job_id, None)

    async def sleep(self, job_id: str, seconds: float, clock: Clock) -> bool:
        """Sleep ``seconds`` on ``clock`` or until woken; True when a wake-up came."""
        event = self._events.setdefault(job_id, asyncio.Event())
        if event.is_set():
            event.clear()
            return True
        sleeper = asyncio.ensure_future(clock.sleep(seconds))
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waiter):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        woken = event.is_set()
        event.clear()
        return woken


class Router:
    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        clock: Clock | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._providers = {p.name: p for p in providers}
        self._order = [p.name for p in providers]
        self._slots = {p.name: asyncio.Semaphore(max(1, p.concurrency)) for p in providers}
        self.clock: Clock = clock or SystemClock()
        self.breaker = breaker or CircuitBreaker(self.clock)
        self.wakeups = Wakeups()
        # The webhook receiver, where ``IMAGINE_PUBLIC_URL`` installed one.
        self.webhooks: Any = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._order)

    def get(self, name: str) -> Provider:
        try:
            return self._providers[name]
        except KeyError:
            raise ProviderFailed(f"provider {name!r} is not configured in this process") from None

    def providers(self) -> list[Provider]:
        return [self._providers[name] for name in self._order]

    async def account_problems(self) -> str | None:
        """A readiness check (``/readyz``): each provider skipped because its account must be
        topped up, with the provider's own words, else None."""
        problems = [
            reason for name in self._order if (reason := self.breaker.reason(name)) is not None
        ]
        return "; ".join(problems) or None

    def slot(self, name: str) -> asyncio.Semaphore:
        """Held from submit until the result is downloaded: the provider's cap on active tasks."""
        return self._slots[name]

    def candidates(
        self, variant: Variant, *, needs_input_images: bool = False
    ) -> list[tuple[Provider, ProviderModel]]:
        """Providers able to run the variant, in failover order, open circuits left out."""
        out: list[tuple[Provider, ProviderModel]] = []
        for name in self._order:
            model = variant.model_for(name)
            if model is None:
                continue
            if needs_input_images and model.extra.get("input_images") is False:
                continue
            if self.breaker.is_open(name):
                continue
            out.append((self._providers[name], model))
        return out
