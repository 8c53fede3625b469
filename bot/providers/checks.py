"""``imagine-bot doctor`` lines for the providers: each configured key tried with a cheap
authenticated call (BFL's credits, a fal queue status and upload initiation, Together's model
list)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.domain.clock import SystemClock
from bot.net.httpclient import open_http_client
from bot.providers.factory import build_providers
from bot.runtime.config import Settings

Check = Callable[[Settings], Awaitable[str]]


def _check_for(name: str) -> Check:
    async def check(settings: Settings) -> str:
        async with open_http_client() as http:
            for provider in build_providers(settings, http, SystemClock()):
                if provider.name == name:
                    probe: Callable[[], Awaitable[str]] | None = getattr(
                        provider, "check_key", None
                    )
                    if probe is None:
                        return "no cheap authenticated call exists; not checked"
                    return await probe()
        return "not configured"

    return check


def provider_checks(settings: Settings) -> dict[str, Check]:
    """One check per configured provider that has a key (the offline renderer needs none)."""
    return {
        f"provider {name}": _check_for(name)
        for name in settings.effective_providers
        if name != "offline"
    }
