"""The crash hook a test configuration installs: inert unless set, refuses an unknown point by
name, and kills the process with SIGKILL at its point only."""

from __future__ import annotations

import os
import signal

import pytest

from bot.domain.errors import ConfigError
from bot.jobs.steps import CRASH_POINTS
from bot.runtime.crash import crash_hook


def test_no_point_no_hook() -> None:
    assert crash_hook(None) is None


def test_an_unknown_point_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="IMAGINE_TEST_CRASH_AT: 'after_lunch' is not one of"):
        crash_hook("after_lunch")


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_the_hook_kills_the_process_at_its_point_only(
    monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    kills: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: kills.append((pid, sig)))
    hook = crash_hook(point)
    assert hook is not None
    for other in CRASH_POINTS:
        if other != point:
            hook(other)
    assert kills == []
    hook(point)
    assert kills == [(os.getpid(), signal.SIGKILL)]
