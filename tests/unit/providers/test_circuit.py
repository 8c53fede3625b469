"""The circuit breaker's account rule: an exhausted balance opens the circuit at once, is kept as
the reason operators see, and is probed again only rarely."""

from __future__ import annotations

import asyncio

from bot.domain.clock import ManualClock
from bot.domain.errors import ProviderBalanceExhausted, ProviderUnavailable
from bot.providers.circuit import CircuitBreaker
from bot.providers.offline import OfflineProvider
from bot.providers.router import Router


def test_an_exhausted_balance_opens_the_circuit_at_once_with_its_reason() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(clock, threshold=5, reset_after=30, balance_reset_after=300)
    breaker.failure("fal", ProviderBalanceExhausted("fal: the account's balance is exhausted"))
    assert breaker.is_open("fal")
    assert breaker.reason("fal") == "fal: the account's balance is exhausted"
    clock.advance(31)
    assert breaker.is_open("fal")  # not the ordinary 30 s: an operator must top up first
    clock.advance(300)
    assert not breaker.is_open("fal")  # one probe
    breaker.success("fal")
    assert breaker.reason("fal") is None and breaker.state("fal") == "closed"


def test_a_402_opens_the_circuit_at_once_but_a_429_counts_once() -> None:
    breaker = CircuitBreaker(ManualClock(), threshold=5)
    breaker.failure("bfl", ProviderUnavailable("bfl: no credits (402)", status=402))
    assert breaker.is_open("bfl") and "no credits" in (breaker.reason("bfl") or "")
    breaker.failure("fal", ProviderUnavailable("fal: rate limited (429)", status=429))
    assert not breaker.is_open("fal") and breaker.reason("fal") is None


def test_the_router_reports_accounts_to_top_up_for_readyz() -> None:
    clock = ManualClock()
    router = Router([OfflineProvider(clock=clock)], clock=clock)
    assert asyncio.run(router.account_problems()) is None
    router.breaker.failure("offline", ProviderBalanceExhausted("offline: balance is exhausted"))
    assert asyncio.run(router.account_problems()) == "offline: balance is exhausted"
