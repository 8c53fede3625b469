"""A circuit breaker per provider: after repeated refusals the provider is skipped for a while,
then one job probes it again. An exhausted balance opens it at once, for longer, and is kept as
the reason operators see (``imagine-bot doctor``, ``/readyz``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.domain.clock import Clock
from bot.domain.errors import ProviderBalanceExhausted, ProviderUnavailable

log = logging.getLogger(__name__)


@dataclass
class _State:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    # Why the circuit is open where an operator must act (an exhausted balance), else None.
    reason: str | None = None
    hold: float | None = None


class CircuitBreaker:
    def __init__(
        self,
        clock: Clock,
        *,
        threshold: int = 5,
        reset_after: float = 30.0,
        balance_reset_after: float = 300.0,
    ) -> None:
        self._clock = clock
        self.threshold = threshold
        self.reset_after = reset_after
        # An account out of money stays out until someone tops it up: probe it rarely.
        self.balance_reset_after = balance_reset_after
        self._states: dict[str, _State] = {}

    def _state(self, name: str) -> _State:
        return self._states.setdefault(name, _State())

    def is_open(self, name: str) -> bool:
        """True while calls to ``name`` are skipped. Past ``reset_after``, one probe passes."""
        state = self._state(name)
        if state.opened_at is None:
            return False
        if self._clock.monotonic() - state.opened_at >= (state.hold or self.reset_after):
            # One probe per period: the next one waits another ``reset_after``.
            state.opened_at = self._clock.monotonic()
            state.probing = True
            log.info("provider %s: circuit half-open, probing with one job", name)
            return False
        return True

    def state(self, name: str) -> str:
        state = self._state(name)
        if state.opened_at is None:
            return "closed"
        return "half-open" if state.probing else "open"

    def reason(self, name: str) -> str | None:
        """Why ``name`` is skipped where an operator must act (an exhausted balance), else None."""
        state = self._state(name)
        return state.reason if state.opened_at is not None else None

    def success(self, name: str) -> None:
        state = self._state(name)
        if state.opened_at is not None:
            log.info("provider %s: circuit closed again", name)
        self._states[name] = _State()

    def failure(self, name: str, error: BaseException | None = None) -> None:
        """Count one refusal; an exhausted balance (fal's lock, BFL's 402) opens the circuit at once."""
        state = self._state(name)
        if isinstance(error, ProviderBalanceExhausted) or (
            isinstance(error, ProviderUnavailable) and error.status == 402
        ):
            if state.reason is None:
                log.error("provider %s: %s; skipped until the account is topped up", name, error)
            state.failures += 1
            state.opened_at = self._clock.monotonic()
            state.probing = False
            state.reason = str(error)
            state.hold = self.balance_reset_after
            return
        state.failures += 1
        if state.probing or (state.opened_at is None and state.failures >= self.threshold):
            if state.opened_at is None or state.probing:
                log.warning(
                    "provider %s: circuit open after %d failures; skipped for %.0f s",
                    name,
                    state.failures,
                    self.reset_after,
                )
            state.opened_at = self._clock.monotonic()
            state.probing = False
