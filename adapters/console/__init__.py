"""The console adapter: the whole /imagine flow on stdin/stdout, offline by default."""

from __future__ import annotations

from adapters.console.adapter import ConsoleAdapter, ConsoleDelivery
from adapters.host import Host
from bot.runtime.config import Settings


def create_adapter(app: Host, *, gateway: bool = True) -> ConsoleAdapter:
    return ConsoleAdapter(app)


async def doctor_check(settings: Settings) -> str:
    return "stdin and stdout, nothing to check"


__all__ = ["ConsoleAdapter", "ConsoleDelivery", "create_adapter", "doctor_check"]
