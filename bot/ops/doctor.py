"""``imagine-bot doctor``: one line per configured part, saying whether it works."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from bot.blobs import open_blobs
from bot.runtime.config import Settings
from bot.store import open_store

Check = Callable[[Settings], Awaitable[str]]


async def check_store(settings: Settings) -> str:
    async with open_store(settings.effective_database_url) as store:
        await store.ping()
        counts = await store.job_counts()
    return f"reachable, migrations applied, {counts.queued} queued, {counts.running} running"


async def check_blobs(settings: Settings) -> str:
    async with open_blobs(settings.effective_blob_url) as blobs:
        # At the top of the store: a folder of its own would stay behind, empty, in a local store.
        key = f"doctor-{uuid.uuid4().hex}.txt"
        await blobs.put(key, b"ok", "text/plain")
        data = await blobs.get(key)
        await blobs.delete(key)
    if data != b"ok":
        raise RuntimeError("read back different bytes")
    return f"writable ({settings.effective_blob_url})"


CHECKS: dict[str, Check] = {"store": check_store, "images": check_blobs}


def register_check(name: str, check: Check) -> None:
    CHECKS[name] = check


def platform_checks(settings: Settings) -> dict[str, Check]:
    """The ``doctor_check`` of each enabled platform adapter (imported only when enabled)."""
    import importlib

    found: dict[str, Check] = {}
    for name, enabled in (("slack", settings.slack_enabled), ("discord", settings.discord_enabled)):
        if enabled:
            check = getattr(importlib.import_module(f"adapters.{name}"), "doctor_check", None)
            if check is not None:
                found[name] = check
    return found


async def doctor(settings: Settings) -> int:
    print(f"ok    config: providers {', '.join(settings.effective_providers)}")
    from bot.providers.checks import provider_checks

    failed = 0
    checks = {**CHECKS, **provider_checks(settings), **platform_checks(settings)}
    for name, check in checks.items():
        try:
            detail = await check(settings)
        except Exception as exc:
            failed += 1
            print(f"FAIL  {name}: {exc}")
        else:
            print(f"ok    {name}: {detail}")
    return 1 if failed else 0
