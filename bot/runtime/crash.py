"""The crash hook of test configurations (``IMAGINE_TEST_CRASH_AT``): the process kills itself with
SIGKILL when a job reaches the named step, as a crash there would (RELIABILITY 21)."""

from __future__ import annotations

import logging
import os
import signal

from bot.domain.errors import ConfigError
from bot.jobs.steps import CRASH_POINTS, CrashHook

log = logging.getLogger(__name__)


def crash_hook(point: str | None) -> CrashHook | None:
    """The worker's hook for ``point`` (one of ``CRASH_POINTS``); None when no point is set."""
    if point is None:
        return None
    if point not in CRASH_POINTS:
        raise ConfigError(
            "IMAGINE_TEST_CRASH_AT", f"{point!r} is not one of {', '.join(CRASH_POINTS)}"
        )

    def kill_at(reached: str) -> None:
        if reached == point:
            log.warning("test crash point %s reached: killing the process", reached)
            os.kill(os.getpid(), signal.SIGKILL)

    return kill_at
