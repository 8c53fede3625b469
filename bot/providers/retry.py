"""Retries with exponential backoff and full jitter, honouring ``Retry-After``, within a budget.

Only calls that may be repeated safely go through here: polls and downloads, never a submit.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.domain.clock import Clock
from bot.domain.errors import ProviderTimeout, ProviderUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


def full_jitter(attempt: int, rng: random.Random, *, base: float, cap: float) -> float:
    """A uniform delay in ``[0, min(cap, base * 2**(attempt-1))]`` (AWS's "full jitter")."""
    return rng.uniform(0.0, min(cap, base * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base: float = 0.5
    cap: float = 10.0
    # Seconds of waiting this policy may spend in all; past it the last error is raised.
    budget: float = 60.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        """Wait before try ``attempt + 1``: at least Retry-After, plus jitter on top of it."""
        jitter = full_jitter(attempt, rng, base=self.base, cap=self.cap)
        if retry_after is not None:
            return retry_after + jitter * 0.25
        return jitter

    async def run(self, call: Callable[[], Awaitable[T]], *, clock: Clock, rng: random.Random) -> T:
        spent = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call()
            except (ProviderUnavailable, ProviderTimeout) as exc:
                hint = getattr(exc, "retry_after", None)
                wait = self.delay(attempt, rng, hint)
                if attempt >= self.attempts or spent + wait > self.budget:
                    raise
                log.info("%s; retrying in %.1f s (try %d)", exc, wait, attempt + 1)
                spent += wait
                await clock.sleep(wait)
