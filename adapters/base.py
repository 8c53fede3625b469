"""What every adapter package offers the command line: create, attach, run, close and doctor.

A package (``adapters.console``, ``adapters.discord``, ``adapters.slack``) meets ``Platform``: a
``create_adapter`` that builds its ``Adapter`` and a ``doctor_check`` for ``imagine-bot doctor``.
The packages are loaded by name, so a process imports only the platform libraries it uses.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Literal, Protocol, cast

from adapters.host import Host
from bot.runtime.config import Settings

PlatformName = Literal["console", "discord", "slack"]


class Adapter(Protocol):
    def attach(self) -> None:
        """Register the delivery port (and, with a gateway, HTTP routes and readiness checks)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Take requests until ``stop`` is set; set ``stop`` when the adapter cannot go on."""

    async def aclose(self) -> None:
        """Finish acknowledged work and release connections."""


class Platform(Protocol):
    """An adapter package, as a module: mypy checks each one against this below."""

    def create_adapter(self, app: Host, *, gateway: bool = True) -> Adapter: ...

    async def doctor_check(self, settings: Settings) -> str: ...


def load_platform(name: PlatformName) -> Platform:
    return cast(Platform, importlib.import_module(f"adapters.{name}"))


if TYPE_CHECKING:  # the conformance check; never imported at run time
    import adapters.console
    import adapters.discord
    import adapters.slack

    _PLATFORMS: tuple[Platform, ...] = (adapters.console, adapters.discord, adapters.slack)
